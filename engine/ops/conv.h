// 2-D convolution (NCHW input, weight (K, C/groups, R, S)) with stride, padding,
// dilation and groups, and its two adjoints. Each of the three is an op whose backward
// is made of the other two, so convolutions can be differentiated any number of times.
#pragma once
#include <array>
#include <cstdint>

#include "engine/tensor.h"

namespace dmix {

struct Conv2dOptions {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
};

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dOptions& opt = {});
// d<conv2d(x, w), g>/dx: shape input_shape.
Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dOptions& opt);
// d<conv2d(x, w), g>/dw: shape weight_shape.
Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dOptions& opt);

}  // namespace dmix
