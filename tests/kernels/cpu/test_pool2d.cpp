// Pooling kernels against naive references written from PyTorch's definitions: output
// sizes with ceil_mode, max pooling with its indices, average pooling with both
// count_include_pad rules, adaptive bins, and the adjoint pairs of the backward kernels.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/pool2d.h"
#include "tests/test_util.h"

namespace {

using dmix::kernels::cpu::Pool2dGeometry;
using dmix::testing::uniform_values;
using dmix::kernels::cpu::pool2d_output_size;

struct PoolConfig {
  const char* name;
  int64_t planes, H, W, kh, kw, sh, sw, ph, pw;
  bool ceil_mode;
};

std::vector<PoolConfig> pool_configs() {
  return {
      {"2x2 stride 2", 3, 6, 8, 2, 2, 2, 2, 0, 0, false},
      {"2x2 stride 2 odd input, ceil", 3, 5, 7, 2, 2, 2, 2, 0, 0, true},
      {"3x3 stride 2 pad 1", 2, 7, 6, 3, 3, 2, 2, 1, 1, false},
      {"3x3 stride 2 pad 1 ceil", 2, 8, 6, 3, 3, 2, 2, 1, 1, true},
      {"2x2 stride 2 pad 1 ceil (last window dropped)", 2, 5, 5, 2, 2, 2, 2, 1, 1, true},
      {"3x3 stride 2 ceil (window past the border)", 2, 6, 6, 3, 3, 2, 2, 0, 0, true},
      {"rectangular 3x2 stride (1,2) pad (1,0)", 2, 5, 7, 3, 2, 1, 2, 1, 0, false},
      {"stride 1 overlapping", 1, 4, 5, 2, 3, 1, 1, 0, 1, true},
  };
}

Pool2dGeometry geometry(const PoolConfig& c) {
  Pool2dGeometry g;
  g.planes = c.planes, g.H = c.H, g.W = c.W, g.kernel_h = c.kh, g.kernel_w = c.kw;
  g.stride_h = c.sh, g.stride_w = c.sw, g.pad_h = c.ph, g.pad_w = c.pw;
  g.out_h = pool2d_output_size(c.H, c.kh, c.sh, c.ph, c.ceil_mode);
  g.out_w = pool2d_output_size(c.W, c.kw, c.sw, c.pw, c.ceil_mode);
  return g;
}

// Max over each window, visiting every kernel cell and skipping the padded ones.
void reference_max(const Pool2dGeometry& g, const std::vector<double>& x, std::vector<double>& y,
                   std::vector<int64_t>& idx) {
  y.assign(g.planes * g.out_h * g.out_w, 0.0);
  idx.assign(y.size(), -1);
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        double best = -std::numeric_limits<double>::infinity();
        int64_t at = -1;
        for (int64_t i = 0; i < g.kernel_h; ++i)
          for (int64_t j = 0; j < g.kernel_w; ++j) {
            const int64_t ih = oh * g.stride_h - g.pad_h + i, iw = ow * g.stride_w - g.pad_w + j;
            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
            const double v = x[(p * g.H + ih) * g.W + iw];
            if (at < 0 || v > best) best = v, at = ih * g.W + iw;
          }
        const int64_t o = (p * g.out_h + oh) * g.out_w + ow;
        y[o] = best;
        idx[o] = at;
      }
}

// PyTorch's average: the divisor counts kernel cells inside [-pad, H+pad) x [-pad, W+pad)
// with count_include_pad, else cells inside the input.
std::vector<double> reference_avg(const Pool2dGeometry& g, bool count_include_pad, const std::vector<double>& x) {
  std::vector<double> y(g.planes * g.out_h * g.out_w, 0.0);
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        double total = 0;
        int64_t in_padded = 0, in_input = 0;
        for (int64_t i = 0; i < g.kernel_h; ++i)
          for (int64_t j = 0; j < g.kernel_w; ++j) {
            const int64_t ih = oh * g.stride_h - g.pad_h + i, iw = ow * g.stride_w - g.pad_w + j;
            if (ih < g.H + g.pad_h && iw < g.W + g.pad_w) ++in_padded;
            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
            ++in_input;
            total += x[(p * g.H + ih) * g.W + iw];
          }
        y[(p * g.out_h + oh) * g.out_w + ow] = total / double(count_include_pad ? in_padded : in_input);
      }
  return y;
}

std::vector<double> reference_adaptive(int64_t planes, int64_t H, int64_t W, int64_t oh_n, int64_t ow_n,
                                       const std::vector<double>& x) {
  std::vector<double> y(planes * oh_n * ow_n);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < oh_n; ++oh)
      for (int64_t ow = 0; ow < ow_n; ++ow) {
        const int64_t h0 = int64_t(std::floor(double(oh * H) / oh_n));
        const int64_t h1 = int64_t(std::ceil(double((oh + 1) * H) / oh_n));
        const int64_t w0 = int64_t(std::floor(double(ow * W) / ow_n));
        const int64_t w1 = int64_t(std::ceil(double((ow + 1) * W) / ow_n));
        double total = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) total += x[(p * H + ih) * W + iw];
        y[(p * oh_n + oh) * ow_n + ow] = total / double((h1 - h0) * (w1 - w0));
      }
  return y;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

template <class A, class B>
double max_abs_diff(const std::vector<A>& a, const std::vector<B>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
  return worst;
}

}  // namespace

TEST_CASE("pool2d_output_size follows PyTorch, including ceil_mode's dropped last window") {
  CHECK(pool2d_output_size(6, 2, 2, 0, false) == 3);
  CHECK(pool2d_output_size(5, 2, 2, 0, false) == 2);
  CHECK(pool2d_output_size(5, 2, 2, 0, true) == 3);
  CHECK(pool2d_output_size(32, 3, 2, 1, false) == 16);
  CHECK(pool2d_output_size(112, 3, 2, 1, false) == 56);
  CHECK(pool2d_output_size(8, 3, 2, 1, true) == 5);
  CHECK(pool2d_output_size(5, 2, 2, 1, true) == 3);  // a 4th window would start in the padding
  CHECK(pool2d_output_size(6, 3, 2, 0, true) == 3);
  CHECK(pool2d_output_size(2, 3, 1, 0, false) == 0);  // kernel larger than the input
}

TEST_CASE("max_pool2d kernels: values, indices, scatter and gather") {
  for (const PoolConfig& c : pool_configs()) {
    CAPTURE(std::string(c.name));
    const Pool2dGeometry g = geometry(c);
    const int64_t in_size = g.H * g.W, out_size = g.out_h * g.out_w;
    const auto x = uniform_values(size_t(g.planes * in_size), 5);
    std::vector<double> want_y;
    std::vector<int64_t> want_idx;
    reference_max(g, x, want_y, want_idx);

    std::vector<double> y(want_y.size());
    std::vector<int64_t> idx(want_y.size());
    dmix::kernels::cpu::max_pool2d_forward<double>(g, x.data(), y.data(), idx.data());
    CHECK(max_abs_diff(y, want_y) == 0.0);
    CHECK(idx == want_idx);

    std::vector<float> xf(x.begin(), x.end()), yf(y.size());
    std::vector<int64_t> idxf(y.size());
    dmix::kernels::cpu::max_pool2d_forward<float>(g, xf.data(), yf.data(), idxf.data());
    CHECK(max_abs_diff(yf, want_y) < 1e-7);
    CHECK(idxf == want_idx);

    // scatter and gather are adjoint: <scatter(gy), v> = <gy, gather(v)>.
    const auto gy = uniform_values(y.size(), 6);
    const auto v = uniform_values(x.size(), 7);
    std::vector<double> gx(x.size(), 99.0), gathered(y.size());
    dmix::kernels::cpu::max_pool2d_scatter<double>(g.planes, in_size, out_size, gy.data(), idx.data(), gx.data());
    dmix::kernels::cpu::max_pool2d_gather<double>(g.planes, in_size, out_size, v.data(), idx.data(),
                                                  gathered.data());
    CHECK(dot(gx, v) == doctest::Approx(dot(gy, gathered)).epsilon(1e-12));
    std::vector<double> want_gx(x.size(), 0.0);
    for (int64_t p = 0; p < g.planes; ++p)
      for (int64_t o = 0; o < out_size; ++o) want_gx[p * in_size + idx[p * out_size + o]] += gy[p * out_size + o];
    CHECK(max_abs_diff(gx, want_gx) < 1e-15);
  }
}

TEST_CASE("max_pool2d kernel keeps the first of tied maxima and propagates NaN") {
  Pool2dGeometry g;
  g.planes = 1, g.H = 2, g.W = 4, g.kernel_h = 2, g.kernel_w = 2, g.stride_h = 2, g.stride_w = 2;
  g.out_h = 1, g.out_w = 2;
  const std::vector<float> x = {1, 3, 5, std::nanf(""),  //
                                3, 2, 7, 9};
  std::vector<float> y(2);
  std::vector<int64_t> idx(2);
  dmix::kernels::cpu::max_pool2d_forward<float>(g, x.data(), y.data(), idx.data());
  CHECK(y[0] == 3.0f);
  CHECK(idx[0] == 1);
  CHECK(std::isnan(y[1]));
  CHECK(idx[1] == 3);
}

TEST_CASE("avg_pool2d kernels: both divisor rules and the adjoint backward") {
  for (const PoolConfig& c : pool_configs()) {
    for (bool include_pad : {true, false}) {
      CAPTURE(std::string(c.name));
      CAPTURE(include_pad);
      const Pool2dGeometry g = geometry(c);
      const auto x = uniform_values(size_t(g.planes * g.H * g.W), 8);
      const auto want = reference_avg(g, include_pad, x);
      std::vector<double> y(want.size());
      dmix::kernels::cpu::avg_pool2d_forward<double>(g, include_pad, x.data(), y.data());
      CHECK(max_abs_diff(y, want) < 1e-14);

      std::vector<float> xf(x.begin(), x.end()), yf(y.size());
      dmix::kernels::cpu::avg_pool2d_forward<float>(g, include_pad, xf.data(), yf.data());
      CHECK(max_abs_diff(yf, want) < 1e-6);

      const auto gy = uniform_values(y.size(), 9);
      std::vector<double> gx(x.size(), 99.0);
      dmix::kernels::cpu::avg_pool2d_backward<double>(g, include_pad, gy.data(), gx.data());
      CHECK(dot(gx, x) == doctest::Approx(dot(gy, y)).epsilon(1e-12));
    }
  }
}

TEST_CASE("adaptive_avg_pool2d kernels: PyTorch's bins and the adjoint backward") {
  struct Case {
    int64_t H, W, oh, ow;
  };
  for (const Case c : {Case{7, 5, 3, 2}, Case{6, 6, 4, 4}, Case{5, 9, 1, 1}, Case{4, 4, 4, 4}, Case{3, 5, 5, 7}}) {
    CAPTURE(c.H);
    CAPTURE(c.W);
    CAPTURE(c.oh);
    CAPTURE(c.ow);
    const int64_t planes = 3;
    const auto x = uniform_values(size_t(planes * c.H * c.W), 10);
    const auto want = reference_adaptive(planes, c.H, c.W, c.oh, c.ow, x);
    std::vector<double> y(want.size());
    dmix::kernels::cpu::adaptive_avg_pool2d_forward<double>(planes, c.H, c.W, c.oh, c.ow, x.data(), y.data());
    CHECK(max_abs_diff(y, want) < 1e-14);

    const auto gy = uniform_values(y.size(), 11);
    std::vector<double> gx(x.size(), 99.0);
    dmix::kernels::cpu::adaptive_avg_pool2d_backward<double>(planes, c.H, c.W, c.oh, c.ow, gy.data(), gx.data());
    CHECK(dot(gx, x) == doctest::Approx(dot(gy, y)).epsilon(1e-12));
  }
}
