// Average pooling on the GPU, fixed windows and adaptive bins, with the adjoints of both,
// following the CPU kernels (kernels/cpu/avgpool2d.cpp): a fixed window starting at
// o*stride - pad is clipped to the padded border [-pad, in + pad) (that size divides
// with count_include_pad) and then to the input (that size divides otherwise); adaptive
// bin i covers [floor(i*in/out), ceil((i+1)*in/out)).
//
// Algorithm, one thread per element written:
//  - forward: per output, the sum over its window in row-major order, then one division.
//  - backward: per input cell, the sum of gy[o] / divisor(o) over the outputs whose
//    window (or bin) covers the cell, in output order. The CPU spreads each output's
//    share over its window in output order instead; every cell then receives the same
//    shares in the same order, so the results agree bit for bit, with no atomics.
// Consecutive threads handle consecutive elements of a plane (coalesced writes).
//
// Cost: kernel_h*kernel_w reads per output (forward); about
// (kernel_h/stride_h)*(kernel_w/stride_w) reads per input cell (backward). Adaptive bins
// likewise, with the bin sizes in place of the kernel.
#include <cstdint>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/pool2d.h"
#include "kernels/cuda/pool2d_windows.cuh"

namespace dmix::kernels::cuda {
namespace {

using namespace pool;  // the shared window arithmetic and launch (pool2d_windows.cuh)

// One fixed window: in-input rows/cols [h0, h1) x [w0, w1) and its divisor.
struct Window {
  int64_t h0, h1, w0, w1, divisor;
};

__device__ __forceinline__ Window avg_window(const Pool2dGeometry& g, bool count_include_pad, int64_t oh,
                                             int64_t ow) {
  int64_t h0 = oh * g.stride_h - g.pad_h, w0 = ow * g.stride_w - g.pad_w;
  int64_t h1 = min64(h0 + g.kernel_h, g.H + g.pad_h), w1 = min64(w0 + g.kernel_w, g.W + g.pad_w);
  const int64_t padded_size = (h1 - h0) * (w1 - w0);
  h0 = max64(h0, 0);
  w0 = max64(w0, 0);
  h1 = min64(h1, g.H);
  w1 = min64(w1, g.W);
  const int64_t divisor = count_include_pad ? padded_size : (h1 - h0) * (w1 - w0);
  return {h0, h1, w0, w1, max64(divisor, 1)};
}

template <class T>
__global__ void avg_pool2d_forward_kernel(Pool2dGeometry g, bool count_include_pad, const T* __restrict__ x,
                                          T* __restrict__ y, int64_t total) {
  const int64_t out_size = g.out_h * g.out_w, in_size = g.H * g.W;
  for (int64_t i : GridStride(total)) {
    const PlaneIndex o = plane_index(i, out_size, g.out_w);
    const Window win = avg_window(g, count_include_pad, o.row, o.col);
    const T* xp = x + o.plane * in_size;
    T sum = T(0);
    for (int64_t ih = win.h0; ih < win.h1; ++ih)
      for (int64_t iw = win.w0; iw < win.w1; ++iw) sum += xp[ih * g.W + iw];
    y[i] = sum / T(win.divisor);
  }
}

template <class T>
__global__ void avg_pool2d_backward_kernel(Pool2dGeometry g, bool count_include_pad, const T* __restrict__ gy,
                                           T* __restrict__ gx, int64_t total) {
  const int64_t out_size = g.out_h * g.out_w, in_size = g.H * g.W;
  for (int64_t i : GridStride(total)) {
    const PlaneIndex cell = plane_index(i, in_size, g.W);
    const T* gyp = gy + cell.plane * out_size;
    T sum = T(0);
    for_each_covering_output(g, cell.row, cell.col, [&](int64_t oh, int64_t ow) {
      sum += gyp[oh * g.out_w + ow] / T(avg_window(g, count_include_pad, oh, ow).divisor);
    });
    gx[i] = sum;
  }
}

template <class T>
__global__ void adaptive_avg_pool2d_forward_kernel(int64_t H, int64_t W, int64_t out_h, int64_t out_w,
                                                   const T* __restrict__ x, T* __restrict__ y, int64_t total) {
  const int64_t out_size = out_h * out_w;
  for (int64_t i : GridStride(total)) {
    const PlaneIndex o = plane_index(i, out_size, out_w);
    const int64_t h0 = bin_start(o.row, H, out_h), h1 = bin_end(o.row, H, out_h);
    const int64_t w0 = bin_start(o.col, W, out_w), w1 = bin_end(o.col, W, out_w);
    const T* xp = x + o.plane * H * W;
    T sum = T(0);
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) sum += xp[ih * W + iw];
    y[i] = sum / T((h1 - h0) * (w1 - w0));
  }
}

// The bins along one axis that contain position i: from floor(i*out/in) (the first
// whose end passes i) while their start is at most i.
template <class T>
__global__ void adaptive_avg_pool2d_backward_kernel(int64_t H, int64_t W, int64_t out_h, int64_t out_w,
                                                    const T* __restrict__ gy, T* __restrict__ gx, int64_t total) {
  const int64_t in_size = H * W;
  for (int64_t i : GridStride(total)) {
    const PlaneIndex cell = plane_index(i, in_size, W);
    const int64_t ih = cell.row, iw = cell.col;
    const T* gyp = gy + cell.plane * out_h * out_w;
    T sum = T(0);
    for (int64_t oh = (ih * out_h) / H; oh < out_h && bin_start(oh, H, out_h) <= ih; ++oh) {
      const int64_t rows = bin_end(oh, H, out_h) - bin_start(oh, H, out_h);
      for (int64_t ow = (iw * out_w) / W; ow < out_w && bin_start(ow, W, out_w) <= iw; ++ow) {
        const int64_t cols = bin_end(ow, W, out_w) - bin_start(ow, W, out_w);
        sum += gyp[oh * out_w + ow] / T(rows * cols);
      }
    }
    gx[i] = sum;
  }
}

}  // namespace

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const T* x, T* y, int device) {
  launch_per_element("cuda avg_pool2d_forward", device, g.planes * g.out_h * g.out_w, avg_pool2d_forward_kernel<T>, g,
                     count_include_pad, x, y);
}

template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const T* gy, T* gx, int device) {
  launch_per_element("cuda avg_pool2d_backward", device, g.planes * g.H * g.W, avg_pool2d_backward_kernel<T>, g,
                     count_include_pad, gy, gx);
}

template <class T>
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t out_h, int64_t out_w, const T* x, T* y,
                                 int device) {
  launch_per_element("cuda adaptive_avg_pool2d_forward", device, planes * out_h * out_w,
                     adaptive_avg_pool2d_forward_kernel<T>, H, W, out_h, out_w, x, y);
}

template <class T>
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t out_h, int64_t out_w, const T* gy,
                                  T* gx, int device) {
  launch_per_element("cuda adaptive_avg_pool2d_backward", device, planes * H * W,
                     adaptive_avg_pool2d_backward_kernel<T>, H, W, out_h, out_w, gy, gx);
}

template void avg_pool2d_forward<float>(const Pool2dGeometry&, bool, const float*, float*, int);
template void avg_pool2d_forward<double>(const Pool2dGeometry&, bool, const double*, double*, int);
template void avg_pool2d_backward<float>(const Pool2dGeometry&, bool, const float*, float*, int);
template void avg_pool2d_backward<double>(const Pool2dGeometry&, bool, const double*, double*, int);
template void adaptive_avg_pool2d_forward<float>(int64_t, int64_t, int64_t, int64_t, int64_t, const float*, float*,
                                                 int);
template void adaptive_avg_pool2d_forward<double>(int64_t, int64_t, int64_t, int64_t, int64_t, const double*,
                                                  double*, int);
template void adaptive_avg_pool2d_backward<float>(int64_t, int64_t, int64_t, int64_t, int64_t, const float*, float*,
                                                  int);
template void adaptive_avg_pool2d_backward<double>(int64_t, int64_t, int64_t, int64_t, int64_t, const double*,
                                                   double*, int);

}  // namespace dmix::kernels::cuda
