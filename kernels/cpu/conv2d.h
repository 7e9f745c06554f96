// 2-D convolution kernels on contiguous NCHW buffers: the forward pass and its two
// adjoints (gradient with respect to the input and to the weight).
//   x: (N, C, H, W)   w: (K, C/groups, R, S)   y: (N, K, out_h, out_w)
//   y[n,k,oh,ow] = bias[k] + sum_{c,r,s} w[k,c,r,s] * x[n, g*C/groups + c, oh*stride_h - pad_h + r*dilation_h,
//                                                        ow*stride_w - pad_w + s*dilation_w]
// where g = k / (K/groups) and x is zero outside the image.
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

struct Conv2dGeometry {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input
  int64_t K = 1, R = 1, S = 1;         // output channels, kernel rows, kernel columns
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;

  // Valid only when the dilated kernel fits the padded input (the op checks that).
  int64_t out_h() const { return (H + 2 * pad_h - dilation_h * (R - 1) - 1) / stride_h + 1; }
  int64_t out_w() const { return (W + 2 * pad_w - dilation_w * (S - 1) - 1) / stride_w + 1; }
};

// y = conv(x, w) + bias; bias (K values) may be null.
template <class T> void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y);
// gx = d<conv(x, w), gy>/dx (overwrites gx).
template <class T> void conv2d_backward_input(const Conv2dGeometry& g, const T* gy, const T* w, T* gx);
// gw = d<conv(x, w), gy>/dw (overwrites gw).
template <class T> void conv2d_backward_weight(const Conv2dGeometry& g, const T* gy, const T* x, T* gw);

}  // namespace dmix::kernels::cpu
