// Op-table rows of max_pool2d, avg_pool2d, adaptive_avg_pool2d and global_avg_pool2d against
// naive loops written from PyTorch's definitions, and rows for the backward ops themselves
// (reached through autograd::grad, so the runner's gradcheck covers their backwards).
#include <cmath>
#include <string>
#include <vector>

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

OpCase max_pool_case(const std::string& name, const PoolGeometry& g) {
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
OpCase max_pool_backward_case(const std::string& name, const PoolGeometry& g) {
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

OpCase avg_pool_case(const std::string& name, const PoolGeometry& g) {
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

OpCase global_case(const Shape& x) {
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

// PC-DARTS's pools (nas/operations.h): 3x3, padding 1, stride 1 and 2, the average excluding the padding.
OpCaseRegistrar reg_darts_avg(avg_pool_case("3x3 stride 1 pad 1 exclude pad (PC-DARTS)",
                                            {{2, 2, 5, 6}, Pool2dOptions{{3, 3}, {1, 1}, {1, 1}, false, false}}));
OpCaseRegistrar reg_darts_max(max_pool_case("3x3 stride 1 pad 1 (PC-DARTS)",
                                            {{2, 2, 5, 6}, Pool2dOptions{{3, 3}, {1, 1}, {1, 1}}}));

OpCaseRegistrar reg_adaptive_a(adaptive_case({2, 3, 7, 5}, 3, 2));
OpCaseRegistrar reg_adaptive_b(adaptive_case({2, 2, 6, 6}, 4, 4));
OpCaseRegistrar reg_adaptive_c(adaptive_case({1, 2, 5, 9}, 1, 1));
OpCaseRegistrar reg_adaptive_up(adaptive_case({1, 2, 3, 2}, 5, 3));
OpCaseRegistrar reg_adaptive_bwd(adaptive_backward_case({2, 2, 7, 5}, 3, 2));

OpCaseRegistrar reg_global(global_case({2, 3, 5, 4}));
OpCaseRegistrar reg_global_1x1(global_case({3, 2, 1, 1}));

}  // namespace
