// Copy kernels on a CUDA device: strided row copies (cat / narrow / pad / bias
// broadcast), the channel shuffle permutation, and row gathers / scatter-adds along one
// dim (index_select / index_add). The twins of kernels/cpu/gather.cpp.
//
// Algorithm: one thread per output element, grid-stride. A thread splits its flat
// output index into (row, column) -- or (outer, channel, plane) -- with integer
// division, then reads the one source element that lands there. Consecutive threads
// write consecutive addresses and, within a contiguous run, read consecutive addresses,
// so both sides coalesce. Index arithmetic is 32-bit whenever the output has fewer
// than 2^31 elements (64-bit division costs several times more); source offsets are
// always formed in 64 bits.
//
// index_add without atomics: each thread owns one element y[o, r, c] of the
// destination and walks the whole index, adding src[o, k, c] for every k with
// index[k] == r, in increasing k. That is the CPU kernel's order, so the sums are
// bit-identical to it and to themselves from run to run, for every dtype (float
// atomics would add in arrival order). The index read is the same address for all
// threads of a warp that share a destination row (a broadcast from L1).
//
// Cost: copies move every element once (one read, one write); index_add reads the
// index outer * y_size * inner * m times from cache and src once, and adds each source
// element once -- linear in the tensor for the batch-sized indices dmix gathers with
// (mixing permutations, channel selections); a sort-based scatter would be the tool
// for indices with thousands of distinct rows.
#include "kernels/cuda/gather.h"

#include <cstdint>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

// Flat index type: I = uint32_t below 2^31 elements (so i + stride never wraps), else int64_t.
template <class I>
__device__ __forceinline__ I first_index() {
  return static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x;
}
template <class I>
__device__ __forceinline__ I grid_stride() {
  return static_cast<I>(gridDim.x) * blockDim.x;
}

template <class T, class I>
__global__ void copy_rows_kernel(const T* __restrict__ src, int64_t src_stride, T* __restrict__ dst,
                                 int64_t dst_stride, I cols, I total) {
  for (I i = first_index<I>(); i < total; i += grid_stride<I>()) {
    const I r = i / cols, c = i - r * cols;
    dst[static_cast<int64_t>(r) * dst_stride + c] = src[static_cast<int64_t>(r) * src_stride + c];
  }
}

template <class T, class I>
__global__ void channel_shuffle_kernel(const T* __restrict__ x, I groups, I per_group, I plane, T* __restrict__ y,
                                       I total) {
  const I channels = groups * per_group;
  for (I i = first_index<I>(); i < total; i += grid_stride<I>()) {
    const I row = i / plane, p = i - row * plane;
    const I b = row / channels, out_channel = row - b * channels;
    // out_channel = j * groups + g came from in_channel = g * per_group + j.
    const I j = out_channel / groups, g = out_channel - j * groups;
    y[i] = x[(b * channels + g * per_group + j) * plane + p];
  }
}

template <class T, class I>
__global__ void index_select_kernel(const T* __restrict__ x, int64_t x_size, I inner, const int64_t* __restrict__ index,
                                    I m, T* __restrict__ y, I total) {
  for (I i = first_index<I>(); i < total; i += grid_stride<I>()) {
    const I row = i / inner, c = i - row * inner;
    const I o = row / m, k = row - o * m;
    y[i] = x[(static_cast<int64_t>(o) * x_size + index[k]) * inner + c];
  }
}

template <class T, class I>
__global__ void index_add_kernel(const T* __restrict__ src, I m, I inner, const int64_t* __restrict__ index, I y_size,
                                 T* __restrict__ y, I total) {
  for (I i = first_index<I>(); i < total; i += grid_stride<I>()) {
    const I row = i / inner, c = i - row * inner;
    const I o = row / y_size;
    const int64_t r = static_cast<int64_t>(row - o * y_size);
    const T* src_column = src + static_cast<int64_t>(o) * m * inner + c;
    T acc = y[i];
    for (I k = 0; k < m; ++k)
      if (index[k] == r) acc += src_column[static_cast<int64_t>(k) * inner];
    y[i] = acc;
  }
}

bool fits_32_bits(int64_t total) { return total < (int64_t(1) << 31); }

}  // namespace

template <class T>
void copy_rows(const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t rows, int64_t cols, int device) {
  const char* op = "cuda::copy_rows";
  check_device(device, op);
  check(rows >= 0 && cols >= 0 && src_stride >= 0 && dst_stride >= cols, op, "bad layout: rows ", rows, ", cols ",
        cols, ", src_stride ", src_stride, ", dst_stride ", dst_stride);
  const int64_t total = rows * cols;
  if (total == 0) return;
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (fits_32_bits(total))
    copy_rows_kernel<T, uint32_t><<<blocks_for(total), kThreads, 0, st>>>(src, src_stride, dst, dst_stride,
                                                                            uint32_t(cols), uint32_t(total));
  else
    copy_rows_kernel<T, int64_t><<<blocks_for(total), kThreads, 0, st>>>(src, src_stride, dst, dst_stride, cols, total);
  check_launch(op);
}

template <class T>
void channel_shuffle(const T* x, int64_t n, int64_t groups, int64_t per_group, int64_t plane, T* y, int device) {
  const char* op = "cuda::channel_shuffle";
  check_device(device, op);
  check(n >= 0 && groups >= 1 && per_group >= 0 && plane >= 0, op, "bad sizes: n ", n, ", groups ", groups,
        ", per_group ", per_group, ", plane ", plane);
  const int64_t total = n * groups * per_group * plane;
  if (total == 0) return;
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (fits_32_bits(total))
    channel_shuffle_kernel<T, uint32_t><<<blocks_for(total), kThreads, 0, st>>>(
        x, uint32_t(groups), uint32_t(per_group), uint32_t(plane), y, uint32_t(total));
  else
    channel_shuffle_kernel<T, int64_t><<<blocks_for(total), kThreads, 0, st>>>(x, groups, per_group, plane, y, total);
  check_launch(op);
}

template <class T>
void index_select(const T* x, int64_t outer, int64_t x_size, int64_t inner, const int64_t* index, int64_t m, T* y,
                  int device) {
  const char* op = "cuda::index_select";
  check_device(device, op);
  check(outer >= 0 && x_size >= 0 && inner >= 0 && m >= 0, op, "bad sizes: outer ", outer, ", x_size ", x_size,
        ", inner ", inner, ", m ", m);
  const int64_t total = outer * m * inner;
  if (total == 0) return;
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (fits_32_bits(total))
    index_select_kernel<T, uint32_t><<<blocks_for(total), kThreads, 0, st>>>(x, x_size, uint32_t(inner), index,
                                                                               uint32_t(m), y, uint32_t(total));
  else
    index_select_kernel<T, int64_t><<<blocks_for(total), kThreads, 0, st>>>(x, x_size, inner, index, m, y, total);
  check_launch(op);
}

template <class T>
void index_add(const T* src, int64_t outer, int64_t m, int64_t inner, const int64_t* index, int64_t y_size, T* y,
               int device) {
  const char* op = "cuda::index_add";
  check_device(device, op);
  check(outer >= 0 && m >= 0 && inner >= 0 && y_size >= 0, op, "bad sizes: outer ", outer, ", m ", m, ", inner ",
        inner, ", y_size ", y_size);
  const int64_t total = outer * y_size * inner;
  if (total == 0 || m == 0) return;
  // The source (outer * m * inner) is read with 64-bit offsets; the flat index type
  // must hold the destination and the loop bound m.
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (fits_32_bits(total) && fits_32_bits(m))
    index_add_kernel<T, uint32_t><<<blocks_for(total), kThreads, 0, st>>>(src, uint32_t(m), uint32_t(inner), index,
                                                                            uint32_t(y_size), y, uint32_t(total));
  else
    index_add_kernel<T, int64_t><<<blocks_for(total), kThreads, 0, st>>>(src, m, inner, index, y_size, y, total);
  check_launch(op);
}

template void copy_rows<float>(const float*, int64_t, float*, int64_t, int64_t, int64_t, int);
template void channel_shuffle<float>(const float*, int64_t, int64_t, int64_t, int64_t, float*, int);
template void index_select<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t, float*, int);
template void index_add<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t, float*, int);
template void copy_rows<double>(const double*, int64_t, double*, int64_t, int64_t, int64_t, int);
template void channel_shuffle<double>(const double*, int64_t, int64_t, int64_t, int64_t, double*, int);
template void index_select<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*, int);
template void index_add<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*, int);
template void copy_rows<int64_t>(const int64_t*, int64_t, int64_t*, int64_t, int64_t, int64_t, int);
template void channel_shuffle<int64_t>(const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t*, int);
template void index_select<int64_t>(const int64_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, int64_t*, int);
template void index_add<int64_t>(const int64_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, int64_t*, int);
template void copy_rows<uint8_t>(const uint8_t*, int64_t, uint8_t*, int64_t, int64_t, int64_t, int);
template void channel_shuffle<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, int64_t, uint8_t*, int);
template void index_select<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, uint8_t*, int);
template void index_add<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, uint8_t*, int);

}  // namespace dmix::kernels::cuda
