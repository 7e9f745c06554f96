// What the pooling kernels (maxpool2d.cu, avgpool2d.cu) share: the window arithmetic,
// written as the CPU kernels compute it (kernels/cpu/maxpool2d.cpp, avgpool2d.cpp), and
// the launch of one thread per element written.
#pragma once
#include <cstdint>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/pool2d.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda::pool {

__device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Element i of a stack of planes, each `size` elements in rows of `width`: its plane, its
// offset within the plane, and that offset's row and column.
struct PlaneIndex {
  int64_t plane, offset, row, col;
};
__device__ __forceinline__ PlaneIndex plane_index(int64_t i, int64_t size, int64_t width) {
  const int64_t plane = i / size, offset = i - plane * size;
  const int64_t row = offset / width;
  return {plane, offset, row, offset - row * width};
}

// The outputs along one axis whose window [o*stride - pad, o*stride - pad + kernel)
// covers input position i (0 <= i < in): [first, last], empty when first > last. Every
// window clipped to the input is a part of its unclipped window, so these are all the
// outputs that can read position i.
struct Covering {
  int64_t first, last;
};
__device__ __forceinline__ Covering covering(int64_t i, int64_t kernel, int64_t stride, int64_t pad, int64_t out) {
  const int64_t shifted = i + pad;
  const int64_t first = shifted < kernel ? 0 : (shifted - kernel) / stride + 1;
  const int64_t last = min64(shifted / stride, out - 1);
  return {first, last};
}

// Calls visit(oh, ow) for every output whose window covers input cell (ih, iw), in
// output order (rows, then columns within a row).
template <class Visit>
__device__ __forceinline__ void for_each_covering_output(const Pool2dGeometry& g, int64_t ih, int64_t iw,
                                                         Visit&& visit) {
  const Covering rows = covering(ih, g.kernel_h, g.stride_h, g.pad_h, g.out_h);
  const Covering cols = covering(iw, g.kernel_w, g.stride_w, g.pad_w, g.out_w);
  for (int64_t oh = rows.first; oh <= rows.last; ++oh)
    for (int64_t ow = cols.first; ow <= cols.last; ++ow) visit(oh, ow);
}

// Adaptive bin i of `out` over `in` positions covers [floor(i*in/out), ceil((i+1)*in/out)).
__device__ __forceinline__ int64_t bin_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
__device__ __forceinline__ int64_t bin_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

// Checks the device, then runs kernel<<<blocks_for(total), kThreads>>>(args..., total) on
// its stream: a grid-stride kernel writing `total` elements. Nothing runs when total is 0.
template <class... Params, class... Args>
void launch_per_element(const char* op, int device, int64_t total, void (*kernel)(Params...), const Args&... args) {
  check_device(device, op);
  if (total == 0) return;
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  kernel<<<blocks_for(total), kThreads, 0, st>>>(args..., total);
  check_launch(op);
}

}  // namespace dmix::kernels::cuda::pool
