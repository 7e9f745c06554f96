// 2-D pooling kernels over contiguous NCHW buffers: every (n, c) plane is pooled on its
// own, so a buffer is `planes` = N*C planes of H x W in, out_h x out_w out.
// Semantics are PyTorch's (padding, ceil_mode, count_include_pad, adaptive bins).
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

struct Pool2dGeometry {
  int64_t planes = 1;  // N * C
  int64_t H = 1, W = 1;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t out_h = 1, out_w = 1;  // from pool2d_output_size
};

// PyTorch's pooling output size: floor (or ceil) of the window count, where with
// ceil_mode a last window that would start in the right/bottom padding is dropped.
inline int64_t pool2d_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, bool ceil_mode) {
  const int64_t span = in + 2 * pad - kernel + (ceil_mode ? stride - 1 : 0);
  // span may be negative (kernel larger than the padded input): round toward -inf.
  int64_t out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// y = max over each window (padding never wins); indices = flat ih*W + iw of the first
// maximum within the input plane. NaN propagates (a NaN is taken as the maximum).
template <class T> void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* indices);
// gx = 0, then gx[plane][indices[o]] += gy[o]: the adjoint of the gather below.
// out_size = out_h*out_w per plane, in_size = H*W per plane.
template <class T>
void max_pool2d_scatter(int64_t planes, int64_t in_size, int64_t out_size, const T* gy, const int64_t* indices, T* gx);
// y[o] = x[plane][indices[o]]: the adjoint of the scatter.
template <class T>
void max_pool2d_gather(int64_t planes, int64_t in_size, int64_t out_size, const T* x, const int64_t* indices, T* y);

// y = window mean. count_include_pad: divide by the window clipped to the padded border
// (padding cells count, cells past the padding never); otherwise by the in-input cells.
template <class T> void avg_pool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const T* x, T* y);
// The adjoint: gx = 0, then every window spreads gy / divisor over its in-input cells.
template <class T> void avg_pool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const T* gy, T* gx);

// Adaptive average: output bin i covers rows [floor(i*H/out_h), ceil((i+1)*H/out_h)), same for columns.
template <class T>
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t out_h, int64_t out_w, const T* x, T* y);
template <class T>
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t out_h, int64_t out_w, const T* gy,
                                  T* gx);

}  // namespace dmix::kernels::cpu
