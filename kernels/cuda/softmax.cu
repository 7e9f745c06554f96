// Softmax and log-softmax along one dim on the GPU, numerically stable.
//
// Algorithm: as on the CPU (kernels/cpu/softmax.cpp), each line of n values is shifted by
// its maximum before exponentiating, the sum of exponentials is accumulated in double,
// and then
//   softmax:     y = exp(x - max) * (1 / sum)
//   log_softmax: y = x - (max + log sum)
// Two launch shapes, by where the line lies in memory:
//  - inner == 1 (the last dim; logits of a classifier): a line is contiguous. A group of
//    threads takes a line, each thread striding over it (consecutive threads read
//    consecutive addresses), and the group combines its partial max and sum with warp
//    shuffles: one warp per line up to kWarpLineMax values, a whole block beyond.
//  - inner > 1 (e.g. over the channels of NCHW): a block of 32 x 8 threads takes a tile
//    of 32 neighbouring lines (consecutive k, so every row of the tile is one coalesced
//    128-byte read); the 8 thread rows split the n values, and the tile's partial max and
//    sum are combined through shared memory.
// Every partial is combined in a fixed order that depends only on the sizes, so the
// result is deterministic (it may differ from the CPU's in the last bits: another order).
// A NaN anywhere in a line makes the whole line NaN, as on the CPU.
//
// Cost: per element one exp and a few flops; x is read three times (the second and third
// read mostly from L1/L2 for lines that fit), y written once and read back once for softmax.
#include <cmath>

#include "kernels/cuda/check.h"
#include "kernels/cuda/softmax.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kBlock = 256;
constexpr int kWarpsPerBlock = kBlock / kWarp;
// Lines up to this long get one warp each (at most 32 values per thread).
constexpr int64_t kWarpLineMax = 1024;
// Strided layout: a tile is kTileK lines wide, and kTileRows thread rows share its n values.
constexpr int kTileK = 32;
constexpr int kTileRows = kBlock / kTileK;
// Grid-stride loops do the rest beyond this many blocks.
constexpr int64_t kMaxBlocks = 65535;

__device__ __forceinline__ float exp_of(float v) { return expf(v); }
__device__ __forceinline__ double exp_of(double v) { return exp(v); }

// Maximum that propagates NaN and gives the same answer whichever way round it is called,
// so every lane of a butterfly reduction agrees.
template <class T> __device__ __forceinline__ T nan_max(T a, T b) { return (a > b || a != a) ? a : b; }

struct MaxOp {
  template <class T> __device__ T operator()(T a, T b) const { return nan_max(a, b); }
};
struct SumOp {
  __device__ double operator()(double a, double b) const { return a + b; }
};

// Combines v over the kGroup threads of a line: a warp (kGroup == 32) or the whole block
// (kGroup == kBlock, all threads of the block must call it). Every thread gets the result.
template <int kGroup, class V, class Op>
__device__ V group_reduce(V v, Op op, V* scratch) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  if (kGroup == kWarp) return v;
  if (threadIdx.x % kWarp == 0) scratch[threadIdx.x / kWarp] = v;
  __syncthreads();
  V r = scratch[0];
#pragma unroll
  for (int w = 1; w < kGroup / kWarp; ++w) r = op(r, scratch[w]);
  __syncthreads();  // scratch is reused by the next call
  return r;
}

template <class T, bool Log, int kGroup>
__global__ void __launch_bounds__(kBlock) contiguous_lines_kernel(const T* __restrict__ x, int64_t lines, int64_t n,
                                                                  T* __restrict__ y) {
  __shared__ T max_scratch[kWarpsPerBlock];
  __shared__ double sum_scratch[kWarpsPerBlock];
  constexpr int kGroupsPerBlock = kBlock / kGroup;
  const int lane = threadIdx.x % kGroup;
  // All threads of a group (for kGroup == kBlock: of the block) run the same iterations.
  for (int64_t line = int64_t(blockIdx.x) * kGroupsPerBlock + threadIdx.x / kGroup; line < lines;
       line += int64_t(gridDim.x) * kGroupsPerBlock) {
    const T* xr = x + line * n;
    T* yr = y + line * n;
    T mx = xr[0];  // part of the line, so a safe start for threads with no values
    for (int64_t i = lane; i < n; i += kGroup) mx = nan_max(mx, xr[i]);
    mx = group_reduce<kGroup>(mx, MaxOp{}, max_scratch);
    double s = 0;
    for (int64_t i = lane; i < n; i += kGroup) {
      const T e = exp_of(xr[i] - mx);
      if (!Log) yr[i] = e;
      s += static_cast<double>(e);
    }
    s = group_reduce<kGroup>(s, SumOp{}, sum_scratch);
    if (Log) {
      const T lse = static_cast<T>(static_cast<double>(mx) + log(s));
      for (int64_t i = lane; i < n; i += kGroup) yr[i] = xr[i] - lse;
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t i = lane; i < n; i += kGroup) yr[i] *= inv;  // this thread wrote yr[i] above
    }
  }
}

// Combines v over the kTileRows thread rows that share column tx; every thread gets its
// column's result. All threads of the block must call it.
template <class V, class Op>
__device__ V column_reduce(V v, Op op, V (*scratch)[kTileK + 1]) {
  const int tx = threadIdx.x % kTileK, ty = threadIdx.x / kTileK;
  scratch[ty][tx] = v;
  __syncthreads();
  V r = scratch[0][tx];
#pragma unroll
  for (int row = 1; row < kTileRows; ++row) r = op(r, scratch[row][tx]);
  __syncthreads();
  return r;
}

template <class T, bool Log>
__global__ void __launch_bounds__(kBlock) strided_lines_kernel(const T* __restrict__ x, int64_t outer, int64_t n,
                                                               int64_t inner, T* __restrict__ y) {
  __shared__ T max_scratch[kTileRows][kTileK + 1];
  __shared__ double sum_scratch[kTileRows][kTileK + 1];
  const int tx = threadIdx.x % kTileK, ty = threadIdx.x / kTileK;
  const int64_t k_tiles = (inner + kTileK - 1) / kTileK;
  for (int64_t tile = blockIdx.x; tile < outer * k_tiles; tile += gridDim.x) {
    const int64_t o = tile / k_tiles, k = (tile % k_tiles) * kTileK + tx;
    // Threads past the last line still take part in the block's reductions.
    const bool active = k < inner;
    const T* xb = x + o * n * inner + k;
    T* yb = y + o * n * inner + k;
    T mx = active ? xb[0] : T(0);
    if (active)
      for (int64_t i = ty; i < n; i += kTileRows) mx = nan_max(mx, xb[i * inner]);
    mx = column_reduce(mx, MaxOp{}, max_scratch);
    double s = 0;
    if (active)
      for (int64_t i = ty; i < n; i += kTileRows) {
        const T e = exp_of(xb[i * inner] - mx);
        if (!Log) yb[i * inner] = e;
        s += static_cast<double>(e);
      }
    s = column_reduce(s, SumOp{}, sum_scratch);
    if (!active) continue;
    if (Log) {
      const T lse = static_cast<T>(static_cast<double>(mx) + log(s));
      for (int64_t i = ty; i < n; i += kTileRows) yb[i * inner] = xb[i * inner] - lse;
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t i = ty; i < n; i += kTileRows) yb[i * inner] *= inv;
    }
  }
}

unsigned grid_for(int64_t work_items) {
  return static_cast<unsigned>(work_items < 1 ? 1 : (work_items > kMaxBlocks ? kMaxBlocks : work_items));
}

template <class T, bool Log>
void normalise(const char* name, const T* x, int64_t outer, int64_t n, int64_t inner, T* y, int device) {
  if (outer <= 0 || n <= 0 || inner <= 0) return;
  check_device(device, name);
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  if (inner == 1) {
    if (n <= kWarpLineMax) {
      contiguous_lines_kernel<T, Log, kWarp>
          <<<grid_for((outer + kWarpsPerBlock - 1) / kWarpsPerBlock), kBlock, 0, s>>>(x, outer, n, y);
    } else {
      contiguous_lines_kernel<T, Log, kBlock><<<grid_for(outer), kBlock, 0, s>>>(x, outer, n, y);
    }
  } else {
    strided_lines_kernel<T, Log><<<grid_for(outer * ((inner + kTileK - 1) / kTileK)), kBlock, 0, s>>>(x, outer, n,
                                                                                                        inner, y);
  }
  check_launch(name);
}

}  // namespace

void softmax(const float* x, int64_t outer, int64_t n, int64_t inner, float* y, int device) {
  normalise<float, false>("cuda softmax", x, outer, n, inner, y, device);
}
void softmax(const double* x, int64_t outer, int64_t n, int64_t inner, double* y, int device) {
  normalise<double, false>("cuda softmax", x, outer, n, inner, y, device);
}
void log_softmax(const float* x, int64_t outer, int64_t n, int64_t inner, float* y, int device) {
  normalise<float, true>("cuda log_softmax", x, outer, n, inner, y, device);
}
void log_softmax(const double* x, int64_t outer, int64_t n, int64_t inner, double* y, int device) {
  normalise<double, true>("cuda log_softmax", x, outer, n, inner, y, device);
}

}  // namespace dmix::kernels::cuda
