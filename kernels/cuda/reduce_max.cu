// Maximum along a dim with its arg max, and the one-hot scatter of indices, on the GPU.
//
// Algorithm (max_along): every thread keeps a candidate (value, index) over its share of
// a line, replacing it only by a strictly better value (greater, or the first NaN), so
// within a thread the first index wins. Candidates are then combined pairwise by
//   better value wins; on a tie (equal values, or both NaN) the smaller index wins,
// which is associative and commutative, so the result is exactly the CPU's sequential
// answer (first maximum; first NaN if there is one), whatever the order of combination.
// Launch shapes as in softmax.cu: inner == 1 gives contiguous lines, one warp per line
// (one block per line beyond kWarpLineMax values), combined with warp shuffles;
// inner > 1 gives tiles of 32 neighbouring lines (coalesced rows) whose n values are split
// over 8 thread rows and combined through shared memory.
// one_hot_along writes every output element once: 1 where the line's index equals i.
//
// Cost: max_along reads x once (outer*n*inner compares) and writes the outer*inner
// results; one_hot_along writes outer*n*inner elements and reads each index n times
// (from cache).
#include "kernels/cuda/check.h"
#include "kernels/cuda/reduce_max.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kBlock = 256;
constexpr int kWarpsPerBlock = kBlock / kWarp;
constexpr int64_t kWarpLineMax = 1024;
constexpr int kTileK = 32;
constexpr int kTileRows = kBlock / kTileK;
constexpr int64_t kMaxBlocks = 65535;

template <class T> __device__ __forceinline__ bool better(T v, T best) { return v > best || (v != v && best == best); }

template <class T> struct Candidate {
  T value;
  int64_t index;
};

template <class T> __device__ __forceinline__ Candidate<T> pick(const Candidate<T>& a, const Candidate<T>& b) {
  if (better(b.value, a.value)) return b;
  if (better(a.value, b.value)) return a;
  return b.index < a.index ? b : a;
}

template <class T> __device__ __forceinline__ Candidate<T> warp_pick(Candidate<T> c) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    Candidate<T> other;
    other.value = __shfl_xor_sync(0xffffffffu, c.value, offset);
    other.index = __shfl_xor_sync(0xffffffffu, c.index, offset);
    c = pick(c, other);
  }
  return c;
}

// One line per group of kGroup threads (a warp, or the whole block).
template <class T, int kGroup>
__global__ void __launch_bounds__(kBlock) contiguous_max_kernel(const T* __restrict__ x, int64_t lines, int64_t n,
                                                                T* __restrict__ values,
                                                                int64_t* __restrict__ indices) {
  __shared__ T scratch_value[kWarpsPerBlock];
  __shared__ int64_t scratch_index[kWarpsPerBlock];
  constexpr int kGroupsPerBlock = kBlock / kGroup;
  const int lane = threadIdx.x % kGroup;
  for (int64_t line = int64_t(blockIdx.x) * kGroupsPerBlock + threadIdx.x / kGroup; line < lines;
       line += int64_t(gridDim.x) * kGroupsPerBlock) {
    const T* xr = x + line * n;
    // Threads with no values start from element 0, which is always a candidate.
    Candidate<T> best{xr[0], 0};
    for (int64_t i = lane; i < n; i += kGroup)
      if (better(xr[i], best.value)) best = {xr[i], i};
    best = warp_pick(best);
    if (kGroup > kWarp) {
      if (threadIdx.x % kWarp == 0) {
        scratch_value[threadIdx.x / kWarp] = best.value;
        scratch_index[threadIdx.x / kWarp] = best.index;
      }
      __syncthreads();
      best = {scratch_value[0], scratch_index[0]};
      for (int w = 1; w < kGroup / kWarp; ++w) best = pick(best, Candidate<T>{scratch_value[w], scratch_index[w]});
      __syncthreads();
    }
    if (lane == 0) {
      if (values) values[line] = best.value;
      indices[line] = best.index;
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kBlock) strided_max_kernel(const T* __restrict__ x, int64_t outer, int64_t n,
                                                             int64_t inner, T* __restrict__ values,
                                                             int64_t* __restrict__ indices) {
  __shared__ T scratch_value[kTileRows][kTileK + 1];
  __shared__ int64_t scratch_index[kTileRows][kTileK + 1];
  const int tx = threadIdx.x % kTileK, ty = threadIdx.x / kTileK;
  const int64_t k_tiles = (inner + kTileK - 1) / kTileK;
  for (int64_t tile = blockIdx.x; tile < outer * k_tiles; tile += gridDim.x) {
    const int64_t o = tile / k_tiles, k = (tile % k_tiles) * kTileK + tx;
    const bool active = k < inner;
    const T* xb = x + o * n * inner + k;
    Candidate<T> best{active ? xb[0] : T(0), 0};
    if (active)
      for (int64_t i = ty; i < n; i += kTileRows)
        if (better(xb[i * inner], best.value)) best = {xb[i * inner], i};
    scratch_value[ty][tx] = best.value;
    scratch_index[ty][tx] = best.index;
    __syncthreads();
    if (active && ty == 0) {
      for (int row = 1; row < kTileRows; ++row)
        best = pick(best, Candidate<T>{scratch_value[row][tx], scratch_index[row][tx]});
      if (values) values[o * inner + k] = best.value;
      indices[o * inner + k] = best.index;
    }
    __syncthreads();
  }
}

template <class T>
__global__ void one_hot_kernel(const int64_t* __restrict__ indices, int64_t n, int64_t inner, int64_t total,
                               T* __restrict__ out) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = e % inner, line = e / inner;
    const int64_t o = line / n, i = line % n;
    out[e] = indices[o * inner + k] == i ? T(1) : T(0);
  }
}

unsigned grid_for(int64_t work_items) {
  return static_cast<unsigned>(work_items < 1 ? 1 : (work_items > kMaxBlocks ? kMaxBlocks : work_items));
}

template <class T>
void max_along_impl(const T* x, int64_t outer, int64_t n, int64_t inner, T* values, int64_t* indices, int device) {
  if (outer <= 0 || inner <= 0) return;
  check(n >= 1, "cuda max_along", "reduction over an empty dim (n = ", n, ")");
  check_device(device, "cuda max_along");
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  if (inner == 1) {
    if (n <= kWarpLineMax)
      contiguous_max_kernel<T, kWarp>
          <<<grid_for((outer + kWarpsPerBlock - 1) / kWarpsPerBlock), kBlock, 0, s>>>(x, outer, n, values, indices);
    else
      contiguous_max_kernel<T, kBlock><<<grid_for(outer), kBlock, 0, s>>>(x, outer, n, values, indices);
  } else {
    strided_max_kernel<T><<<grid_for(outer * ((inner + kTileK - 1) / kTileK)), kBlock, 0, s>>>(x, outer, n, inner,
                                                                                                 values, indices);
  }
  check_launch("cuda max_along");
}

template <class T>
void one_hot_impl(const int64_t* indices, int64_t outer, int64_t n, int64_t inner, T* out, int device) {
  const int64_t total = outer * n * inner;
  if (total <= 0) return;
  check_device(device, "cuda one_hot_along");
  DeviceGuard guard(device);
  one_hot_kernel<T><<<grid_for((total + kBlock - 1) / kBlock), kBlock, 0, stream(device)>>>(indices, n, inner, total,
                                                                                             out);
  check_launch("cuda one_hot_along");
}

}  // namespace

void max_along(const float* x, int64_t outer, int64_t n, int64_t inner, float* values, int64_t* indices, int device) {
  max_along_impl(x, outer, n, inner, values, indices, device);
}
void max_along(const double* x, int64_t outer, int64_t n, int64_t inner, double* values, int64_t* indices,
               int device) {
  max_along_impl(x, outer, n, inner, values, indices, device);
}
void one_hot_along(const int64_t* indices, int64_t outer, int64_t n, int64_t inner, float* out, int device) {
  one_hot_impl(indices, outer, n, inner, out, device);
}
void one_hot_along(const int64_t* indices, int64_t outer, int64_t n, int64_t inner, double* out, int device) {
  one_hot_impl(indices, outer, n, inner, out, device);
}

}  // namespace dmix::kernels::cuda
