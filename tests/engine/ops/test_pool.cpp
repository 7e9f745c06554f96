// max_pool2d, avg_pool2d, adaptive_avg_pool2d and global_avg_pool2d: op-table rows against
// naive loops written from PyTorch's definitions, rows for the backward ops themselves
// (reached through autograd::grad, so the runner's gradcheck covers their backwards), and
// focused cases for gradient routing and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

// Output size by enumeration over windows starting at i*s in padded coordinates (padded
// length L). Floor mode takes the windows that fit in L. Ceil mode takes one more window
// while the previous one stopped short of L, unless that window would start in the right
// padding.
int64_t naive_out(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  const int64_t L = in + 2 * p;
  int64_t n = 0;
  for (int64_t i = 0;; ++i) {
    const bool take = ceil_mode ? (i == 0 || (i - 1) * s + k < L) && i * s < in + p : i * s + k <= L;
    if (!take) return n;
    ++n;
  }
}

struct PoolGeometry {
  Shape x;
  Pool2dOptions o;
  int64_t kh() const { return o.kernel[0]; }
  int64_t kw() const { return o.kernel[1]; }
  int64_t sh() const { return o.stride[0] ? o.stride[0] : o.kernel[0]; }
  int64_t sw() const { return o.stride[1] ? o.stride[1] : o.kernel[1]; }
  int64_t oh() const { return naive_out(x[2], kh(), sh(), o.padding[0], o.ceil_mode); }
  int64_t ow() const { return naive_out(x[3], kw(), sw(), o.padding[1], o.ceil_mode); }
  Shape y() const { return {x[0], x[1], oh(), ow()}; }
};

// Calls f(plane, output index within the plane, list of (in-input index) cells, padded-count).
template <class F>
void for_each_window(const PoolGeometry& g, F&& f) {
  const int64_t H = g.x[2], W = g.x[3];
  for (int64_t p = 0; p < g.x[0] * g.x[1]; ++p)
    for (int64_t i = 0; i < g.oh(); ++i)
      for (int64_t j = 0; j < g.ow(); ++j) {
        std::vector<int64_t> cells;
        int64_t padded = 0;
        for (int64_t a = 0; a < g.kh(); ++a)
          for (int64_t b = 0; b < g.kw(); ++b) {
            const int64_t ih = i * g.sh() - g.o.padding[0] + a, iw = j * g.sw() - g.o.padding[1] + b;
            if (ih < H + g.o.padding[0] && iw < W + g.o.padding[1]) ++padded;
            if (ih >= 0 && ih < H && iw >= 0 && iw < W) cells.push_back(ih * W + iw);
          }
        f(p, i * g.ow() + j, cells, padded);
      }
}

// The first in-input arg max of each window, as plane-flat indices.
std::vector<int64_t> naive_argmax(const PoolGeometry& g, const std::vector<double>& x) {
  std::vector<int64_t> at(static_cast<size_t>(shape_numel(g.y())));
  const int64_t HW = g.x[2] * g.x[3], out = g.oh() * g.ow();
  for_each_window(g, [&](int64_t p, int64_t o, const std::vector<int64_t>& cells, int64_t) {
    int64_t best = cells[0];
    for (int64_t c : cells)
      if (x[p * HW + c] > x[p * HW + best]) best = c;
    at[p * out + o] = best;
  });
  return at;
}

OpCase max_pool_case(const std::string& name, PoolGeometry g) {
  OpCase c;
  c.name = "max_pool2d " + name;
  c.inputs = {InputSpec::distinct(g.x)};
  c.fn = [g](const TensorList& in) { return max_pool2d(in[0], g.o); };
  c.reference = [g](const Inputs& in) {
    const auto at = naive_argmax(g, in[0]);
    std::vector<double> y(at.size());
    const int64_t HW = g.x[2] * g.x[3], out = g.oh() * g.ow();
    for (size_t i = 0; i < y.size(); ++i) y[i] = in[0][(static_cast<int64_t>(i) / out) * HW + at[i]];
    return y;
  };
  return c;
}

// The gradient of <max_pool2d(x), v> with respect to x as a function of v (x constant):
// max_pool2d_backward as an op, whose own backward is the gather by the same indices.
OpCase max_pool_backward_case(const std::string& name, PoolGeometry g) {
  OpCase c;
  c.name = "max_pool2d_backward " + name;
  InputSpec x = InputSpec::distinct(g.x);
  x.differentiable = false;
  c.inputs = {x, InputSpec::uniform(g.y())};
  c.fn = [g](const TensorList& in) {
    autograd::EnableGradGuard enable;
    Tensor xx = in[0].detach().set_requires_grad(true);
    return autograd::grad({sum(mul(max_pool2d(xx, g.o), in[1]))}, {xx}, {}, /*create_graph=*/true)[0];
  };
  c.reference = [g](const Inputs& in) {
    const auto at = naive_argmax(g, in[0]);
    std::vector<double> gx(in[0].size(), 0.0);
    const int64_t HW = g.x[2] * g.x[3], out = g.oh() * g.ow();
    for (size_t i = 0; i < at.size(); ++i) gx[(static_cast<int64_t>(i) / out) * HW + at[i]] += in[1][i];
    return gx;
  };
  return c;
}

std::vector<double> naive_avg(const PoolGeometry& g, const std::vector<double>& x) {
  std::vector<double> y(static_cast<size_t>(shape_numel(g.y())));
  const int64_t HW = g.x[2] * g.x[3], out = g.oh() * g.ow();
  for_each_window(g, [&](int64_t p, int64_t o, const std::vector<int64_t>& cells, int64_t padded) {
    double total = 0;
    for (int64_t c : cells) total += x[p * HW + c];
    y[p * out + o] = total / static_cast<double>(g.o.count_include_pad ? padded : static_cast<int64_t>(cells.size()));
  });
  return y;
}

OpCase avg_pool_case(const std::string& name, PoolGeometry g) {
  OpCase c;
  c.name = "avg_pool2d " + name;
  c.inputs = {InputSpec::uniform(g.x)};
  c.fn = [g](const TensorList& in) { return avg_pool2d(in[0], g.o); };
  c.reference = [g](const Inputs& in) { return naive_avg(g, in[0]); };
  return c;
}

OpCase avg_pool_backward_case(const std::string& name, PoolGeometry g) {
  OpCase c;
  c.name = "avg_pool2d_backward " + name;
  c.inputs = {InputSpec::constant_uniform(g.x), InputSpec::uniform(g.y())};
  c.fn = [g](const TensorList& in) {
    autograd::EnableGradGuard enable;
    Tensor xx = in[0].detach().set_requires_grad(true);
    return autograd::grad({sum(mul(avg_pool2d(xx, g.o), in[1]))}, {xx}, {}, /*create_graph=*/true)[0];
  };
  c.reference = [g](const Inputs& in) {
    std::vector<double> gx(in[0].size(), 0.0);
    const int64_t HW = g.x[2] * g.x[3], out = g.oh() * g.ow();
    for_each_window(g, [&](int64_t p, int64_t o, const std::vector<int64_t>& cells, int64_t padded) {
      const double d = g.o.count_include_pad ? static_cast<double>(padded) : static_cast<double>(cells.size());
      for (int64_t cell : cells) gx[p * HW + cell] += in[1][p * out + o] / d;
    });
    return gx;
  };
  return c;
}

// PyTorch's adaptive bins [floor(i*H/o), ceil((i+1)*H/o)), computed in floating point.
struct Bins {
  int64_t planes, H, W, oh, ow;
  template <class F>
  void each(F&& f) const {
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          const auto h0 = static_cast<int64_t>(std::floor(double(i * H) / double(oh)));
          const auto h1 = static_cast<int64_t>(std::ceil(double((i + 1) * H) / double(oh)));
          const auto w0 = static_cast<int64_t>(std::floor(double(j * W) / double(ow)));
          const auto w1 = static_cast<int64_t>(std::ceil(double((j + 1) * W) / double(ow)));
          f(p, i * ow + j, h0, h1, w0, w1);
        }
  }
};

OpCase adaptive_case(Shape x, int64_t oh, int64_t ow) {
  OpCase c;
  c.name = "adaptive_avg_pool2d " + shape_str(x) + " -> " + std::to_string(oh) + "x" + std::to_string(ow);
  c.inputs = {InputSpec::uniform(x)};
  c.fn = [oh, ow](const TensorList& in) { return adaptive_avg_pool2d(in[0], oh, ow); };
  c.reference = [x, oh, ow](const Inputs& in) {
    std::vector<double> y(static_cast<size_t>(x[0] * x[1] * oh * ow));
    Bins{x[0] * x[1], x[2], x[3], oh, ow}.each([&](int64_t p, int64_t o, int64_t h0, int64_t h1, int64_t w0,
                                                   int64_t w1) {
      double total = 0;
      for (int64_t i = h0; i < h1; ++i)
        for (int64_t j = w0; j < w1; ++j) total += in[0][(p * x[2] + i) * x[3] + j];
      y[p * oh * ow + o] = total / static_cast<double>((h1 - h0) * (w1 - w0));
    });
    return y;
  };
  return c;
}

OpCase adaptive_backward_case(Shape x, int64_t oh, int64_t ow) {
  OpCase c;
  c.name = "adaptive_avg_pool2d_backward " + shape_str(x) + " -> " + std::to_string(oh) + "x" + std::to_string(ow);
  c.inputs = {InputSpec::constant_uniform(x), InputSpec::uniform({x[0], x[1], oh, ow})};
  c.fn = [oh, ow](const TensorList& in) {
    autograd::EnableGradGuard enable;
    Tensor xx = in[0].detach().set_requires_grad(true);
    return autograd::grad({sum(mul(adaptive_avg_pool2d(xx, oh, ow), in[1]))}, {xx}, {}, /*create_graph=*/true)[0];
  };
  c.reference = [x, oh, ow](const Inputs& in) {
    std::vector<double> gx(in[0].size(), 0.0);
    Bins{x[0] * x[1], x[2], x[3], oh, ow}.each([&](int64_t p, int64_t o, int64_t h0, int64_t h1, int64_t w0,
                                                   int64_t w1) {
      const double share = in[1][p * oh * ow + o] / static_cast<double>((h1 - h0) * (w1 - w0));
      for (int64_t i = h0; i < h1; ++i)
        for (int64_t j = w0; j < w1; ++j) gx[(p * x[2] + i) * x[3] + j] += share;
    });
    return gx;
  };
  return c;
}

OpCase global_case(Shape x) {
  OpCase c;
  c.name = "global_avg_pool2d " + shape_str(x);
  c.inputs = {InputSpec::uniform(x)};
  c.fn = [](const TensorList& in) { return global_avg_pool2d(in[0]); };
  c.reference = [x](const Inputs& in) {
    const int64_t HW = x[2] * x[3];
    std::vector<double> y(static_cast<size_t>(x[0] * x[1]), 0.0);
    for (size_t i = 0; i < in[0].size(); ++i) y[i / HW] += in[0][i] / static_cast<double>(HW);
    return y;
  };
  return c;
}

OpCaseRegistrar reg_max_2x2(max_pool_case("2x2", {{2, 3, 6, 6}, Pool2dOptions{{2, 2}}}));
OpCaseRegistrar reg_max_3x3_ceil(max_pool_case("3x3 stride 2 pad 1 ceil",
                                                {{2, 2, 8, 7}, Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true}}));
OpCaseRegistrar reg_max_rect(max_pool_case("3x2 stride (2,1) pad (1,0)", {{1, 3, 7, 5}, Pool2dOptions{{3, 2}, {2, 1}, {1, 0}}}));
OpCaseRegistrar reg_max_odd_ceil(max_pool_case("2x2 odd input ceil",
                                                {{2, 2, 5, 7}, Pool2dOptions{{2, 2}, {0, 0}, {0, 0}, true}}));
OpCaseRegistrar reg_max_bwd(max_pool_backward_case("3x3 stride 2 pad 1", {{2, 2, 7, 6}, Pool2dOptions{{3, 3}, {2, 2}, {1, 1}}}));
OpCaseRegistrar reg_max_bwd_overlap(max_pool_backward_case("2x2 stride 1 (overlapping windows)",
                                                           {{1, 2, 5, 5}, Pool2dOptions{{2, 2}, {1, 1}}}));

OpCaseRegistrar reg_avg_2x2(avg_pool_case("2x2", {{2, 3, 6, 6}, Pool2dOptions{{2, 2}}}));
OpCaseRegistrar reg_avg_pad_ceil(avg_pool_case("3x3 stride 2 pad 1 ceil count_include_pad",
                                               {{2, 2, 8, 7}, Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true, true}}));
OpCaseRegistrar reg_avg_pad_ceil_exclude(avg_pool_case("3x3 stride 2 pad 1 ceil exclude pad",
                                                       {{2, 2, 8, 7}, Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true, false}}));
OpCaseRegistrar reg_avg_past_border(avg_pool_case("3x3 stride 2 ceil window past the border",
                                                  {{1, 2, 6, 6}, Pool2dOptions{{3, 3}, {2, 2}, {0, 0}, true, true}}));
OpCaseRegistrar reg_avg_shortcut(avg_pool_case("2x2 ceil odd input (PyramidNet shortcut)",
                                               {{2, 2, 5, 7}, Pool2dOptions{{2, 2}, {2, 2}, {0, 0}, true}}));
OpCaseRegistrar reg_avg_rect(avg_pool_case("3x2 stride (1,2) pad (1,0) exclude pad",
                                           {{2, 2, 5, 6}, Pool2dOptions{{3, 2}, {1, 2}, {1, 0}, false, false}}));
OpCaseRegistrar reg_avg_bwd(avg_pool_backward_case("3x3 stride 2 pad 1 ceil",
                                                   {{2, 2, 8, 7}, Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true, true}}));
OpCaseRegistrar reg_avg_bwd_exclude(avg_pool_backward_case("3x3 stride 2 pad 1 exclude pad",
                                                           {{1, 2, 7, 6}, Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, false, false}}));

OpCaseRegistrar reg_adaptive_a(adaptive_case({2, 3, 7, 5}, 3, 2));
OpCaseRegistrar reg_adaptive_b(adaptive_case({2, 2, 6, 6}, 4, 4));
OpCaseRegistrar reg_adaptive_c(adaptive_case({1, 2, 5, 9}, 1, 1));
OpCaseRegistrar reg_adaptive_up(adaptive_case({1, 2, 3, 2}, 5, 3));
OpCaseRegistrar reg_adaptive_bwd(adaptive_backward_case({2, 2, 7, 5}, 3, 2));

OpCaseRegistrar reg_global(global_case({2, 3, 5, 4}));
OpCaseRegistrar reg_global_1x1(global_case({3, 2, 1, 1}));

}  // namespace

TEST_CASE("pool output sizes follow PyTorch's ceil_mode rule") {
  const Tensor x = Tensor::zeros({1, 1, 5, 5});
  CHECK(max_pool2d(x, Pool2dOptions{{2, 2}}).shape() == Shape{1, 1, 2, 2});
  CHECK(max_pool2d(x, Pool2dOptions{{2, 2}, {0, 0}, {0, 0}, true}).shape() == Shape{1, 1, 3, 3});
  // A 4th window would start at 5 = H, inside the right padding only: dropped.
  CHECK(avg_pool2d(x, Pool2dOptions{{2, 2}, {2, 2}, {1, 1}, true}).shape() == Shape{1, 1, 3, 3});
  CHECK(max_pool2d(Tensor::zeros({1, 1, 112, 112}), Pool2dOptions{{3, 3}, {2, 2}, {1, 1}}).shape() == Shape{1, 1, 56, 56});
}

TEST_CASE("avg_pool2d divisors match PyTorch on a ones input") {
  // Ones make every output the fraction of its divisor that lies inside the input.
  const Tensor ones = Tensor::ones({1, 1, 3, 3}, DType::f64);
  // kernel 2, stride 2, pad 1, ceil: windows [-1,1), [1,3); corner window has 1 real cell of 4.
  const auto with_pad = avg_pool2d(ones, Pool2dOptions{{2, 2}, {2, 2}, {1, 1}, true, true}).to_vector<double>();
  CHECK(with_pad == std::vector<double>{0.25, 0.5, 0.5, 1.0});
  const auto without_pad = avg_pool2d(ones, Pool2dOptions{{2, 2}, {2, 2}, {1, 1}, true, false}).to_vector<double>();
  CHECK(without_pad == std::vector<double>{1.0, 1.0, 1.0, 1.0});
  // kernel 2, stride 2, no pad, ceil on 3: the last window [2, 4) reaches past the input
  // (no padding there), so even count_include_pad divides by the 1 real cell.
  const auto past = avg_pool2d(ones, Pool2dOptions{{2, 2}, {2, 2}, {0, 0}, true, true}).to_vector<double>();
  CHECK(past == std::vector<double>{1.0, 1.0, 1.0, 1.0});
}

TEST_CASE("max_pool2d routes the gradient to the first maximum of each window only") {
  const std::vector<double> v = {1, 5, 2, 0,  //
                                 3, 4, 7, 7,  //
                                 0, 0, 1, 1,  //
                                 0, 9, 1, 1};
  Tensor x = Tensor::from_vector(v, {1, 1, 4, 4}).set_requires_grad(true);
  Tensor y = max_pool2d(x, Pool2dOptions{{2, 2}});
  CHECK(y.to_vector<double>() == std::vector<double>{5, 7, 9, 1});
  const auto g = autograd::grad({sum(y)}, {x})[0].to_vector<double>();
  CHECK(g == std::vector<double>{0, 1, 0, 0,  //
                                 0, 0, 1, 0,  //
                                 0, 0, 1, 0,  //
                                 0, 1, 0, 0});
}

TEST_CASE("pooling rejects bad shapes and options with messages naming the op") {
  const Tensor x = Tensor::zeros({2, 3, 4, 4});
  CHECK_THROWS_WITH_AS(max_pool2d(x, Pool2dOptions{{5, 5}}),
                       doctest::Contains("max_pool2d: kernel 5x5 is larger than the padded input 4x4"), Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, Pool2dOptions{{2, 2}, {2, 2}, {2, 2}}),
                       doctest::Contains("avg_pool2d: padding must be at most half the kernel"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({3, 4, 4}), Pool2dOptions{{2, 2}}), doctest::Contains("max_pool2d"), Error);
  CHECK_THROWS_AS(avg_pool2d(x, Pool2dOptions{{0, 2}}), Error);
  CHECK_THROWS_AS(avg_pool2d(x, Pool2dOptions{{2, 2}, {-1, 1}}), Error);
  CHECK_THROWS_WITH_AS(adaptive_avg_pool2d(x, 0, 2), doctest::Contains("adaptive_avg_pool2d"), Error);
  CHECK_THROWS_WITH_AS(global_avg_pool2d(Tensor::zeros({2, 3})), doctest::Contains("global_avg_pool2d"), Error);
  CHECK_THROWS_AS(max_pool2d(Tensor::zeros({1, 1, 4, 4}, DType::i64), Pool2dOptions{{2, 2}}), Error);
}

TEST_CASE("max_pool2d's backward pair is closed: the gather's backward is the scatter again") {
  // g1 = scatter(v) at the arg max; g2 = d<g1, r>/dv = gather(r); d<g2, w>/dr = scatter(w).
  std::vector<double> xs(2 * 2 * 5 * 5);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(1.7 * static_cast<double>(i));  // no ties
  const Tensor x = Tensor::from_vector(xs, {2, 2, 5, 5}).set_requires_grad(true);
  const Pool2dOptions o = Pool2dOptions{{3, 3}, {2, 2}, {1, 1}};
  const Shape out = max_pool2d(x.detach(), o).shape();
  auto filled = [](const Shape& s, double step) {
    std::vector<double> v(static_cast<size_t>(shape_numel(s)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::cos(step * static_cast<double>(i));
    return Tensor::from_vector(v, s);
  };
  const Tensor v = filled(out, 0.3).set_requires_grad(true);
  const Tensor r = filled(x.shape(), 0.7).set_requires_grad(true);
  const Tensor w = filled(out, 1.1);

  const Tensor g1 = autograd::grad({sum(mul(max_pool2d(x, o), v))}, {x}, {}, true)[0];
  const Tensor g2 = autograd::grad({sum(mul(g1, r))}, {v}, {}, true)[0];
  const Tensor g3 = autograd::grad({sum(mul(g2, w))}, {r})[0];
  const Tensor want = autograd::grad({sum(mul(max_pool2d(x, o), w))}, {x})[0];
  CHECK(g3.to_vector<double>() == want.to_vector<double>());
  CHECK(g3.grad_fn() == nullptr);
}

TEST_CASE("avg_pool2d's backward pair is closed: the adjoint's backward is avg_pool2d again") {
  const Pool2dOptions o = Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true, false};
  std::vector<double> xs(2 * 3 * 7 * 6);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.9 * static_cast<double>(i));
  const Tensor x = Tensor::from_vector(xs, {2, 3, 7, 6}).set_requires_grad(true);
  const Shape out = avg_pool2d(x.detach(), o).shape();
  const Tensor v = Tensor::ones(out, DType::f64).set_requires_grad(true);
  const Tensor g1 = autograd::grad({sum(mul(avg_pool2d(x, o), v))}, {x}, {}, true)[0];
  const Tensor r = Tensor::from_vector(xs, x.shape());
  const Tensor g2 = autograd::grad({sum(mul(g1, r))}, {v})[0];
  const auto got = g2.to_vector<double>();
  const auto want = avg_pool2d(r, o).to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-14));
}
