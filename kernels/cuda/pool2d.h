// 2-D pooling on a CUDA device: the twins of kernels/cpu/pool2d.h (same geometry, same
// PyTorch semantics for padding, ceil_mode, count_include_pad and adaptive bins), plus
// the device. Every pointer, indices included, is device memory of `device`; the work is
// queued on that device's stream.
//
// The results equal the CPU kernels' bit for bit: every output (and every input
// gradient) is summed by one thread in the order the CPU adds the same terms.
// T = float, double.
#pragma once
#include <cstdint>

#include "kernels/cpu/pool2d.h"

namespace dmix::kernels::cuda {

using cpu::Pool2dGeometry;

// y = max over each window (padding never wins); indices = flat ih*W + iw of the first
// maximum within the plane. A NaN counts as the maximum (the first NaN wins).
template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* indices, int device);
// gx = the adjoint of the gather below: gx[plane][i] = sum of gy[o] over the outputs o
// whose index is i. Unlike the CPU's scatter it takes the geometry: each input cell
// collects from the outputs whose window covers it (no atomics, no races).
template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* gy, const int64_t* indices, T* gx, int device);
// y[o] = x[plane][indices[o]]; out_size = out_h*out_w, in_size = H*W per plane.
template <class T>
void max_pool2d_gather(int64_t planes, int64_t in_size, int64_t out_size, const T* x, const int64_t* indices, T* y,
                       int device);

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const T* x, T* y, int device);
template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const T* gy, T* gx, int device);

template <class T>
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t out_h, int64_t out_w, const T* x, T* y,
                                 int device);
template <class T>
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t out_h, int64_t out_w, const T* gy,
                                  T* gx, int device);

}  // namespace dmix::kernels::cuda
