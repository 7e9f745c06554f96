// Op-table rows of conv2d, conv2d_backward_input and conv2d_backward_weight against a naive
// seven-loop convolution (the runner adds gradcheck and gradgradcheck, which exercise the
// backward formulas made of the other two ops).
#include <array>
#include <string>

#include "tests/engine/op_table.h"
#include "tests/engine/ops/conv_options.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

struct Geometry {
  Shape x, w;  // input (N, C, H, W) and weight (K, C/groups, R, S)
  Conv2dOptions opt;
  int64_t out_h() const {
    return (x[2] + 2 * opt.padding[0] - opt.dilation[0] * (w[2] - 1) - 1) / opt.stride[0] + 1;
  }
  int64_t out_w() const {
    return (x[3] + 2 * opt.padding[1] - opt.dilation[1] * (w[3] - 1) - 1) / opt.stride[1] + 1;
  }
  Shape y() const { return {x[0], w[0], out_h(), out_w()}; }
};

// Calls f(x index, w index, y index) for every tap that lands inside the input.
template <class F>
void for_each_tap(const Geometry& g, F&& f) {
  const int64_t N = g.x[0], C = g.x[1], H = g.x[2], W = g.x[3], K = g.w[0], Cg = g.w[1], R = g.w[2], S = g.w[3];
  const int64_t P = g.out_h(), Q = g.out_w(), Kg = K / g.opt.groups;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t r = 0; r < R; ++r)
          for (int64_t s = 0; s < S; ++s)
            for (int64_t oh = 0; oh < P; ++oh)
              for (int64_t ow = 0; ow < Q; ++ow) {
                const int64_t ih = oh * g.opt.stride[0] - g.opt.padding[0] + r * g.opt.dilation[0];
                const int64_t iw = ow * g.opt.stride[1] - g.opt.padding[1] + s * g.opt.dilation[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t ci = (k / Kg) * Cg + c;
                f(((n * C + ci) * H + ih) * W + iw, ((k * Cg + c) * R + r) * S + s, ((n * K + k) * P + oh) * Q + ow);
              }
}

// cuDNN (the default CUDA path) times its algorithms and may take FFT or Winograd, whose f32
// rounding is up to ~100 times a direct sum's: the allowance test_conv_pool.cpp gives it.
void allow_vendor_algorithms(OpCase& c) {
  c.gpu_tolerance = 1e-4;
  c.gpu_grad_tolerance = 1e-4;
}

OpCase conv2d_case(const std::string& name, Geometry g, bool bias) {
  OpCase c;
  c.name = "conv2d " + name;
  c.inputs = {InputSpec::uniform(g.x), InputSpec::uniform(g.w)};
  if (bias) c.inputs.push_back(InputSpec::uniform({g.w[0]}));
  c.fn = [g](const TensorList& in) { return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), g.opt); };
  c.reference = [g](const Inputs& in) {
    std::vector<double> y(static_cast<size_t>(shape_numel(g.y())), 0.0);
    const int64_t PQ = g.out_h() * g.out_w();
    if (in.size() > 2)
      for (size_t i = 0; i < y.size(); ++i) y[i] = in[2][(static_cast<int64_t>(i) / PQ) % g.w[0]];
    for_each_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += in[1][wi] * in[0][xi]; });
    return y;
  };
  allow_vendor_algorithms(c);
  return c;
}

OpCase backward_input_case(const std::string& name, const Geometry& g) {
  OpCase c;
  c.name = "conv2d_backward_input " + name;
  c.inputs = {InputSpec::uniform(g.y()), InputSpec::uniform(g.w)};
  c.fn = [g](const TensorList& in) { return conv2d_backward_input(in[0], in[1], g.x, g.opt); };
  c.reference = [g](const Inputs& in) {
    std::vector<double> gx(static_cast<size_t>(shape_numel(g.x)), 0.0);
    for_each_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) { gx[xi] += in[1][wi] * in[0][yi]; });
    return gx;
  };
  allow_vendor_algorithms(c);
  return c;
}

OpCase backward_weight_case(const std::string& name, const Geometry& g) {
  OpCase c;
  c.name = "conv2d_backward_weight " + name;
  c.inputs = {InputSpec::uniform(g.y()), InputSpec::uniform(g.x)};
  c.fn = [g](const TensorList& in) { return conv2d_backward_weight(in[0], in[1], g.w, g.opt); };
  c.reference = [g](const Inputs& in) {
    std::vector<double> gw(static_cast<size_t>(shape_numel(g.w)), 0.0);
    for_each_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) { gw[wi] += in[1][xi] * in[0][yi]; });
    return gw;
  };
  allow_vendor_algorithms(c);
  return c;
}

OpCaseRegistrar reg_conv_3x3_bias(conv2d_case("3x3 pad 1 bias", {{2, 3, 5, 5}, {4, 3, 3, 3}, conv_options({1, 1}, {1, 1})},
                                              true));
OpCaseRegistrar reg_conv_stride(conv2d_case("stride 2 no bias", {{2, 2, 7, 6}, {3, 2, 3, 3}, conv_options({2, 2}, {1, 1})},
                                            false));
OpCaseRegistrar reg_conv_dilation(conv2d_case("dilation 2",
                                              {{2, 2, 7, 7}, {2, 2, 3, 3}, conv_options({1, 1}, {2, 2}, {2, 2})}, false));
OpCaseRegistrar reg_conv_groups(conv2d_case("groups 2 bias",
                                            {{2, 4, 5, 6}, {4, 2, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1}, 2)}, true));
OpCaseRegistrar reg_conv_depthwise(conv2d_case("depthwise stride 2",
                                               {{2, 3, 7, 6}, {3, 1, 3, 3}, conv_options({2, 2}, {1, 1}, {1, 1}, 3)},
                                               true));
OpCaseRegistrar reg_conv_1x1(conv2d_case("1x1 bias", {{2, 4, 5, 5}, {3, 4, 1, 1}, conv_options({1, 1}, {0, 0})}, true));
OpCaseRegistrar reg_conv_rect(conv2d_case("rectangular 2x3 stride (2,1) pad (1,0)",
                                          {{2, 2, 6, 7}, {3, 2, 2, 3}, conv_options({2, 1}, {1, 0})}, false));

// PC-DARTS's dil_conv_5x5 at stride 2: depthwise 5x5, dilation 2, padding 4 (nas/operations.h).
OpCaseRegistrar reg_conv_darts_dil(conv2d_case("depthwise 5x5 stride 2 pad 4 dilation 2 (PC-DARTS)",
                                               {{2, 2, 9, 8}, {2, 1, 5, 5}, conv_options({2, 2}, {4, 4}, {2, 2}, 2)},
                                               false));

OpCaseRegistrar reg_bwd_in(backward_input_case("3x3 stride 2 pad 1",
                                               {{2, 3, 6, 6}, {4, 3, 3, 3}, conv_options({2, 2}, {1, 1})}));
OpCaseRegistrar reg_bwd_in_groups(backward_input_case(
    "groups 2 dilation 2", {{2, 4, 7, 6}, {2, 2, 3, 3}, conv_options({1, 1}, {2, 1}, {2, 2}, 2)}));
OpCaseRegistrar reg_bwd_in_depthwise(backward_input_case(
    "depthwise", {{2, 3, 5, 5}, {3, 1, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1}, 3)}));
OpCaseRegistrar reg_bwd_w(backward_weight_case("3x3 pad 1", {{2, 3, 6, 5}, {4, 3, 3, 3}, conv_options({1, 1}, {1, 1})}));
OpCaseRegistrar reg_bwd_w_stride(backward_weight_case(
    "stride 2 groups 2", {{2, 4, 7, 7}, {2, 2, 3, 3}, conv_options({2, 2}, {1, 1}, {1, 1}, 2)}));
OpCaseRegistrar reg_bwd_w_depthwise(backward_weight_case(
    "depthwise dilation 2", {{2, 2, 7, 6}, {2, 1, 3, 3}, conv_options({1, 1}, {2, 2}, {2, 2}, 2)}));

}  // namespace
