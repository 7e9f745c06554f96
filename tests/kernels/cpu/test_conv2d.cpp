// The im2col + GEMM convolution kernels (and their direct depthwise loops) against naive
// seven-loop references, in f64 and f32, over strides, padding, dilation, groups,
// depthwise, 1x1, odd and rectangular shapes, and batches smaller than the thread count.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "tests/test_util.h"

namespace {

using dmix::kernels::cpu::Conv2dGeometry;
using dmix::testing::uniform_values;

struct Config {
  const char* name;
  Conv2dGeometry g;
};

Conv2dGeometry geometry(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                        int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h,
                        int64_t dil_w, int64_t groups) {
  Conv2dGeometry g;
  g.N = N, g.C = C, g.H = H, g.W = W, g.K = K, g.R = R, g.S = S;
  g.stride_h = stride_h, g.stride_w = stride_w, g.pad_h = pad_h, g.pad_w = pad_w;
  g.dilation_h = dil_h, g.dilation_w = dil_w, g.groups = groups;
  return g;
}

std::vector<Config> configs() {
  return {
      {"3x3 pad 1", geometry(2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
      {"stride 2", geometry(3, 4, 9, 8, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1)},
      {"dilation 2", geometry(2, 3, 9, 9, 2, 3, 3, 1, 1, 2, 2, 2, 2, 1)},
      {"groups 2", geometry(2, 4, 6, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2)},
      {"groups 3 stride 2", geometry(3, 6, 9, 7, 3, 3, 3, 2, 2, 1, 0, 1, 1, 3)},
      {"depthwise", geometry(2, 5, 7, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5)},
      {"depthwise x2 5x5 stride 2 dilation 2", geometry(2, 3, 11, 10, 6, 5, 5, 2, 2, 4, 4, 2, 2, 3)},
      {"depthwise 3x3, rows wider than a register block", geometry(2, 4, 18, 20, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4)},
      {"depthwise 5x5 dilation 2, wide rows", geometry(2, 3, 17, 35, 3, 5, 5, 1, 1, 4, 4, 2, 2, 3)},
      {"depthwise 1x1 with padding beyond the kernel", geometry(2, 3, 5, 18, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3)},
      {"depthwise 2x4 stride (1,2) wide", geometry(2, 2, 9, 40, 4, 2, 4, 1, 2, 1, 2, 1, 1, 2)},
      {"single input channel", geometry(3, 1, 9, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
      {"1x1", geometry(3, 8, 5, 5, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
      {"1x1 stride 2", geometry(2, 6, 7, 7, 3, 1, 1, 2, 2, 0, 0, 1, 1, 1)},
      {"1x1 pad 1", geometry(2, 3, 4, 5, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1)},
      {"rectangular", geometry(2, 3, 8, 11, 4, 2, 3, 1, 2, 0, 1, 1, 1, 1)},
      {"odd: 5x2 stride 3 pad 2 dilation (1,3)", geometry(2, 2, 13, 12, 3, 5, 2, 3, 1, 2, 2, 1, 3, 1)},
      {"one image (threads share the GEMM)", geometry(1, 6, 10, 10, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
      {"one image 1x1", geometry(1, 16, 6, 6, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
      {"one image depthwise", geometry(1, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4)},
      {"wider (GEMM blocking)", geometry(5, 24, 12, 12, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
      {"several row bands (64 channels, 3x3)", geometry(2, 64, 40, 40, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
      {"several row bands, 5x5 stride 2 groups 2", geometry(2, 96, 60, 59, 4, 5, 5, 2, 2, 2, 2, 1, 1, 2)},
      {"kernel covers the whole padded input", geometry(2, 2, 3, 3, 2, 5, 5, 1, 1, 1, 1, 1, 1, 1)},
      // Under 256 output pixels, several images share one GEMM (a ragged last chunk too).
      {"small images grouped, 3x3 pad 1", geometry(9, 5, 5, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
      {"small images grouped, 1x1", geometry(11, 6, 4, 4, 5, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
      {"small images grouped, groups 2 stride 2", geometry(13, 4, 7, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2)},
      {"small images grouped, 1x1 stride 2", geometry(10, 6, 8, 8, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1)},
  };
}

int64_t weight_size(const Conv2dGeometry& g) { return g.K * (g.C / g.groups) * g.R * g.S; }
int64_t input_size(const Conv2dGeometry& g) { return g.N * g.C * g.H * g.W; }
int64_t output_size(const Conv2dGeometry& g) { return g.N * g.K * g.out_h() * g.out_w(); }

// Calls f(n, k, c, oh, ow, ih, iw, x index, w index, y index) for every in-image tap:
// the seven loops every reference below shares.
template <class F>
void for_each_tap(const Conv2dGeometry& g, F&& f) {
  const int64_t P = g.out_h(), Q = g.out_w(), Cg = g.C / g.groups, Kg = g.K / g.groups;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t r = 0; r < g.R; ++r)
          for (int64_t s = 0; s < g.S; ++s)
            for (int64_t oh = 0; oh < P; ++oh)
              for (int64_t ow = 0; ow < Q; ++ow) {
                const int64_t ih = oh * g.stride_h - g.pad_h + r * g.dilation_h;
                const int64_t iw = ow * g.stride_w - g.pad_w + s * g.dilation_w;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                const int64_t ci = (k / Kg) * Cg + c;
                f(((n * g.C + ci) * g.H + ih) * g.W + iw, ((k * Cg + c) * g.R + r) * g.S + s,
                  ((n * g.K + k) * P + oh) * Q + ow);
              }
}

std::vector<double> reference_forward(const Conv2dGeometry& g, const std::vector<double>& x,
                                      const std::vector<double>& w, const std::vector<double>& bias) {
  std::vector<double> y(output_size(g), 0.0);
  const int64_t PQ = g.out_h() * g.out_w();
  if (!bias.empty())
    for (int64_t i = 0; i < output_size(g); ++i) y[i] = bias[(i / PQ) % g.K];
  for_each_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += w[wi] * x[xi]; });
  return y;
}

std::vector<double> reference_backward_input(const Conv2dGeometry& g, const std::vector<double>& gy,
                                             const std::vector<double>& w) {
  std::vector<double> gx(input_size(g), 0.0);
  for_each_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) { gx[xi] += w[wi] * gy[yi]; });
  return gx;
}

std::vector<double> reference_backward_weight(const Conv2dGeometry& g, const std::vector<double>& gy,
                                              const std::vector<double>& x) {
  std::vector<double> gw(weight_size(g), 0.0);
  for_each_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) { gw[wi] += x[xi] * gy[yi]; });
  return gw;
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// max |got - want| relative to max(1, max |want|).
template <class T>
double relative_error(const std::vector<T>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0.0, scale = 1.0;
  for (double v : want) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::abs(double(got[i]) - want[i]);
    if (!(e <= worst)) worst = e;  // NaN counts as the worst
  }
  return worst / scale;
}

template <class T>
void check_config(const Config& cfg, double tolerance) {
  const Conv2dGeometry& g = cfg.g;
  const auto x = uniform_values(size_t(input_size(g)), 1);
  const auto w = uniform_values(size_t(weight_size(g)), 2);
  const auto bias = uniform_values(size_t(g.K), 3);
  const auto gy = uniform_values(size_t(output_size(g)), 4);

  std::vector<T> y(output_size(g), T(123));
  dmix::kernels::cpu::conv2d_forward<T>(g, cast<T>(x).data(), cast<T>(w).data(), nullptr, y.data());
  CHECK(relative_error(y, reference_forward(g, x, w, {})) < tolerance);

  dmix::kernels::cpu::conv2d_forward<T>(g, cast<T>(x).data(), cast<T>(w).data(), cast<T>(bias).data(), y.data());
  CHECK(relative_error(y, reference_forward(g, x, w, bias)) < tolerance);

  std::vector<T> gx(input_size(g), T(123));  // stale contents must be overwritten
  dmix::kernels::cpu::conv2d_backward_input<T>(g, cast<T>(gy).data(), cast<T>(w).data(), gx.data());
  CHECK(relative_error(gx, reference_backward_input(g, gy, w)) < tolerance);

  std::vector<T> gw(weight_size(g), T(123));
  dmix::kernels::cpu::conv2d_backward_weight<T>(g, cast<T>(gy).data(), cast<T>(x).data(), gw.data());
  CHECK(relative_error(gw, reference_backward_weight(g, gy, x)) < tolerance);
}

}  // namespace

TEST_CASE("conv2d kernels match the seven-loop reference in f64") {
  for (const Config& cfg : configs()) {
    CAPTURE(std::string(cfg.name));
    check_config<double>(cfg, 1e-12);
  }
}

TEST_CASE("conv2d kernels match the seven-loop reference in f32") {
  for (const Config& cfg : configs()) {
    CAPTURE(std::string(cfg.name));
    check_config<float>(cfg, 1e-5);
  }
}

TEST_CASE("conv2d kernel adjoints: <conv(x,w), gy> = <x, backward_input> = <w, backward_weight>") {
  for (const Config& cfg : configs()) {
    CAPTURE(std::string(cfg.name));
    const Conv2dGeometry& g = cfg.g;
    const auto x = uniform_values(size_t(input_size(g)), 11);
    const auto w = uniform_values(size_t(weight_size(g)), 12);
    const auto gy = uniform_values(size_t(output_size(g)), 13);
    std::vector<double> y(output_size(g)), gx(input_size(g)), gw(weight_size(g));
    dmix::kernels::cpu::conv2d_forward<double>(g, x.data(), w.data(), nullptr, y.data());
    dmix::kernels::cpu::conv2d_backward_input<double>(g, gy.data(), w.data(), gx.data());
    dmix::kernels::cpu::conv2d_backward_weight<double>(g, gy.data(), x.data(), gw.data());
    double y_gy = 0, x_gx = 0, w_gw = 0;
    for (size_t i = 0; i < y.size(); ++i) y_gy += y[i] * gy[i];
    for (size_t i = 0; i < x.size(); ++i) x_gx += x[i] * gx[i];
    for (size_t i = 0; i < w.size(); ++i) w_gw += w[i] * gw[i];
    CHECK(x_gx == doctest::Approx(y_gy).epsilon(1e-12));
    CHECK(w_gw == doctest::Approx(y_gy).epsilon(1e-12));
  }
}

TEST_CASE("conv2d kernels give the reference for 1, 2 and 3 threads (chunking follows the thread count)") {
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    for (const Config& cfg : configs()) {
      CAPTURE(threads);
      CAPTURE(std::string(cfg.name));
      check_config<double>(cfg, 1e-12);
    }
  }
  omp_set_num_threads(saved);
}

TEST_CASE("conv2d kernels called from inside an OpenMP parallel region (nested callers)") {
  // Each thread convolves its own batch; the kernels must then run on the calling thread.
  const Conv2dGeometry g = geometry(3, 8, 9, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  const auto x = uniform_values(size_t(input_size(g)), 21);
  const auto w = uniform_values(size_t(weight_size(g)), 22);
  const auto gy = uniform_values(size_t(output_size(g)), 23);
  const auto want_y = reference_forward(g, x, w, {});
  const auto want_gx = reference_backward_input(g, gy, w);
  const auto want_gw = reference_backward_weight(g, gy, x);
  constexpr int kCallers = 2;
  std::vector<double> errors(3 * kCallers, 1.0);
#pragma omp parallel for num_threads(kCallers) schedule(static)
  for (int t = 0; t < kCallers; ++t) {
    std::vector<double> y(output_size(g)), gx(input_size(g)), gw(weight_size(g));
    dmix::kernels::cpu::conv2d_forward<double>(g, x.data(), w.data(), nullptr, y.data());
    dmix::kernels::cpu::conv2d_backward_input<double>(g, gy.data(), w.data(), gx.data());
    dmix::kernels::cpu::conv2d_backward_weight<double>(g, gy.data(), x.data(), gw.data());
    double e[3] = {0, 0, 0};
    for (size_t i = 0; i < y.size(); ++i) e[0] = std::max(e[0], std::abs(y[i] - want_y[i]));
    for (size_t i = 0; i < gx.size(); ++i) e[1] = std::max(e[1], std::abs(gx[i] - want_gx[i]));
    for (size_t i = 0; i < gw.size(); ++i) e[2] = std::max(e[2], std::abs(gw[i] - want_gw[i]));
    for (int k = 0; k < 3; ++k) errors[3 * t + k] = e[k];
  }
  for (double e : errors) CHECK(e < 1e-12);
}
