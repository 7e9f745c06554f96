// Max pooling on the GPU: the forward pass with arg max indices, its adjoint (the
// backward pass) and the adjoint's adjoint (a gather), with the CPU kernels' semantics
// (kernels/cpu/maxpool2d.cpp): padding never wins, ties go to the first maximum in
// row-major window order, a NaN is taken as the maximum.
//
// Algorithm, one thread per element written:
//  - forward: per output, a loop over its window clipped to the input.
//  - backward: per input cell, a loop over the outputs whose window covers the cell
//    (rows (ih + pad - kernel) / stride + 1 .. (ih + pad) / stride, the same for columns),
//    adding the gradient of those whose arg max is this cell. The CPU scatters instead
//    (gx[index[o]] += gy[o] in output order); collecting in the same output order gives
//    the same sums bit for bit, with no atomics and no write conflicts.
//  - gather: per output, one read at its index.
// Consecutive threads handle consecutive elements of a plane: coalesced writes and,
// for stride 1, coalesced reads.
//
// Cost: forward kernel_h*kernel_w reads per output; backward about
// (kernel_h/stride_h)*(kernel_w/stride_w) index reads per input cell; gather one
// index and one value per output.
#include <cstdint>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/pool2d.h"
#include "kernels/cuda/pool2d_windows.cuh"

namespace dmix::kernels::cuda {
namespace {

using namespace pool;  // the shared window arithmetic and launch (pool2d_windows.cuh)

template <class T>
__global__ void max_pool2d_forward_kernel(Pool2dGeometry g, const T* __restrict__ x, T* __restrict__ y,
                                          int64_t* __restrict__ indices, int64_t total) {
  const int64_t out_size = g.out_h * g.out_w, in_size = g.H * g.W;
  for (int64_t i : GridStride(total)) {
    const PlaneIndex o = plane_index(i, out_size, g.out_w);
    const int64_t oh = o.row, ow = o.col;
    const int64_t h0 = max64(oh * g.stride_h - g.pad_h, 0);
    const int64_t h1 = min64(oh * g.stride_h - g.pad_h + g.kernel_h, g.H);
    const int64_t w0 = max64(ow * g.stride_w - g.pad_w, 0);
    const int64_t w1 = min64(ow * g.stride_w - g.pad_w + g.kernel_w, g.W);
    const T* xp = x + o.plane * in_size;
    T best = -INFINITY;
    int64_t best_index = h0 * g.W + w0;
    bool found_nan = false;
    for (int64_t ih = h0; ih < h1 && !found_nan; ++ih) {
      for (int64_t iw = w0; iw < w1; ++iw) {
        const T v = xp[ih * g.W + iw];
        if (isnan(v)) {
          best = v;
          best_index = ih * g.W + iw;
          found_nan = true;
          break;
        }
        if (v > best) {
          best = v;
          best_index = ih * g.W + iw;
        }
      }
    }
    y[i] = best;
    indices[i] = best_index;
  }
}

template <class T>
__global__ void max_pool2d_backward_kernel(Pool2dGeometry g, const T* __restrict__ gy,
                                           const int64_t* __restrict__ indices, T* __restrict__ gx, int64_t total) {
  const int64_t out_size = g.out_h * g.out_w, in_size = g.H * g.W;
  for (int64_t i : GridStride(total)) {
    const PlaneIndex cell = plane_index(i, in_size, g.W);
    const int64_t* ip = indices + cell.plane * out_size;
    const T* gyp = gy + cell.plane * out_size;
    T total_grad = T(0);
    for_each_covering_output(g, cell.row, cell.col, [&](int64_t oh, int64_t ow) {
      const int64_t o = oh * g.out_w + ow;
      if (ip[o] == cell.offset) total_grad += gyp[o];
    });
    gx[i] = total_grad;
  }
}

template <class T>
__global__ void max_pool2d_gather_kernel(int64_t in_size, int64_t out_size, const T* __restrict__ x,
                                         const int64_t* __restrict__ indices, T* __restrict__ y, int64_t total) {
  for (int64_t i : GridStride(total)) y[i] = x[(i / out_size) * in_size + indices[i]];
}

}  // namespace

template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* indices, int device) {
  launch_per_element("cuda max_pool2d_forward", device, g.planes * g.out_h * g.out_w, max_pool2d_forward_kernel<T>, g,
                     x, y, indices);
}

template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* gy, const int64_t* indices, T* gx, int device) {
  launch_per_element("cuda max_pool2d_backward", device, g.planes * g.H * g.W, max_pool2d_backward_kernel<T>, g, gy,
                     indices, gx);
}

template <class T>
void max_pool2d_gather(int64_t planes, int64_t in_size, int64_t out_size, const T* x, const int64_t* indices, T* y,
                       int device) {
  launch_per_element("cuda max_pool2d_gather", device, planes * out_size, max_pool2d_gather_kernel<T>, in_size,
                     out_size, x, indices, y);
}

template void max_pool2d_forward<float>(const Pool2dGeometry&, const float*, float*, int64_t*, int);
template void max_pool2d_forward<double>(const Pool2dGeometry&, const double*, double*, int64_t*, int);
template void max_pool2d_backward<float>(const Pool2dGeometry&, const float*, const int64_t*, float*, int);
template void max_pool2d_backward<double>(const Pool2dGeometry&, const double*, const int64_t*, double*, int);
template void max_pool2d_gather<float>(int64_t, int64_t, int64_t, const float*, const int64_t*, float*, int);
template void max_pool2d_gather<double>(int64_t, int64_t, int64_t, const double*, const int64_t*, double*, int);

}  // namespace dmix::kernels::cuda
