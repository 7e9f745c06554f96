// Sum over chosen dims of a contiguous tensor on a CUDA device; the twin of
// kernels/cpu/reduce_sum.cpp.
//
// The dims are first coalesced (size-1 dims dropped, neighbours of the same kind
// merged) into alternating groups of kept (K) and reduced (R) dims. Then:
//   (R) and (K, R)  row sums       a warp per row (a block for long rows); each thread
//                                  accumulates 16-byte vector loads, then a shuffle tree
//   (R, K), (K, R, K) column sums  a block reads a 32-column tile, 8 rows at a time, so
//                                  a warp reads 32 consecutive elements (coalesced);
//                                  the 8 row lanes are added in shared memory
//   (R, K, R)       per-channel    a block per channel walks its N row pieces of H*W
//                                  (NCHW -> C: bias and batch-norm gradients)
//   anything else   general        a warp (or block) per output, mapping each reduced
//                                  index to an offset with div/mod per dim
// When these give too few blocks to fill the GPU (one long row, few wide columns, few
// channels), the reduced extent is cut into a fixed number of chunks: pass 1 writes one
// partial sum per (output, chunk) to a scratch buffer, pass 2 sums the partials of each
// output in chunk order. The chunk count depends only on the sizes, and each partial is
// a fixed tree over a fixed assignment of elements to threads, so the result is the
// same on every run and every GPU (no atomics). It can differ from the CPU's sequential
// order in the last bits, never by more than summation-order rounding.
//
// Cost: one read of every input element and one write per output (plus a read and
// write of the few partials when chunked); memory bound.
#include "kernels/cuda/reduce_sum.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"
#include "kernels/error.h"

namespace dmix::kernels::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kColumnTile = 32;                    // columns per block in column sums
constexpr int kColumnLanes = kThreads / kColumnTile;  // rows read at once by a block
constexpr int kMaxGroups = 8;                      // kept (or reduced) groups in the general path
constexpr int64_t kMaxGrid = 65535;
static_assert(kThreads % kWarp == 0 && kThreads == kColumnTile * kColumnLanes, "block layout");

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// std::min and std::max are host functions; kernels use these.
__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
unsigned grid_for(int64_t blocks) { return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxGrid)); }

// V elements of T loaded as one 16-byte vector.
template <class T, int V> struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;  // complete in lane 0
}

// Sum over all kThreads threads of the block (every thread must call it); complete in
// thread 0. `shared` holds kThreads / 32 values.
template <class T>
__device__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_sum(v);
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = threadIdx.x < kThreads / kWarp ? shared[threadIdx.x] : T(0);
  if (warp == 0) v = warp_sum(v);
  __syncthreads();  // the caller may call again and overwrite `shared`
  return v;
}

// Group of G threads (a warp, or the whole block): complete in the group's lane 0.
template <int G, class T>
__device__ T group_sum(T v, T* shared) {
  if constexpr (G == kWarp) {
    return warp_sum(v);
  } else {
    static_assert(G == kThreads, "a group is a warp or the block");
    return block_sum(v, shared);
  }
}

// This thread's share (lane, lane + stride, ...) of p[0, count): scalar loads until p
// is 16-byte aligned, then vectors, then the scalar tail.
template <class T>
__device__ T segment_sum(const T* p, int64_t count, int lane, int stride) {
  constexpr int V = 16 / sizeof(T);
  const int misalign = static_cast<int>((reinterpret_cast<uintptr_t>(p) / sizeof(T)) % V);
  const int64_t head = min64(misalign ? V - misalign : 0, count);
  T acc = 0;
  if (lane < head) acc += p[lane];
  const int64_t packs = (count - head) / V;
  const auto* pv = reinterpret_cast<const Vec<T, V>*>(p + head);
  for (int64_t i = lane; i < packs; i += stride) {
    const Vec<T, V> x = pv[i];
#pragma unroll
    for (int j = 0; j < V; ++j) acc += x.v[j];
  }
  for (int64_t i = head + packs * V + lane; i < count; i += stride) acc += p[i];
  return acc;
}

// out[s] for s = r * chunks + c: the sum of in[r * len + c * chunk_len, ...) over
// min(chunk_len, len - c * chunk_len) elements. chunks == 1 gives plain row sums.
template <int G, class T>
__global__ void __launch_bounds__(kThreads)
    row_sums_kernel(const T* in, int64_t rows, int64_t len, int64_t chunks, int64_t chunk_len, T* out) {
  __shared__ T shared[kThreads / kWarp];
  constexpr int per_block = kThreads / G;
  const int group = threadIdx.x / G, lane = threadIdx.x % G;
  const int64_t segments = rows * chunks;
  // The loop bound is the same for the whole block, so block-wide groups stay in step.
  for (int64_t first = int64_t(blockIdx.x) * per_block; first < segments; first += int64_t(gridDim.x) * per_block) {
    const int64_t s = first + group;
    T acc = 0;
    if (s < segments) {
      const int64_t r = s / chunks, begin = (s % chunks) * chunk_len;
      acc = segment_sum(in + r * len + begin, min64(chunk_len, len - begin), lane, G);
    }
    acc = group_sum<G>(acc, shared);
    if (lane == 0 && s < segments) out[s] = acc;
  }
}

// in is (outer, rows, cols); out[(o * chunks + c) * cols + k] is the sum over the rows
// of chunk c (chunk_rows rows each) of column k. Block (x, c) handles 32-column tiles.
template <class T>
__global__ void __launch_bounds__(kThreads)
    column_sums_kernel(const T* in, int64_t outer, int64_t rows, int64_t cols, int64_t chunks, int64_t chunk_rows,
                       T* out) {
  __shared__ T partial[kColumnLanes][kColumnTile + 1];
  const int tx = threadIdx.x % kColumnTile, ty = threadIdx.x / kColumnTile;
  const int64_t tiles_per_outer = ceil_div(cols, kColumnTile);
  const int64_t tiles = outer * tiles_per_outer;
  const int64_t chunk = blockIdx.y;
  const int64_t r0 = chunk * chunk_rows, r1 = min64(rows, r0 + chunk_rows);
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t o = t / tiles_per_outer;
    const int64_t k = (t % tiles_per_outer) * kColumnTile + tx;
    T acc = 0;
    if (k < cols) {
      const T* p = in + o * rows * cols + k;
#pragma unroll 4
      for (int64_t r = r0 + ty; r < r1; r += kColumnLanes) acc += p[r * cols];
    }
    partial[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && k < cols) {
      T sum = 0;
#pragma unroll
      for (int j = 0; j < kColumnLanes; ++j) sum += partial[j][tx];
      out[(o * chunks + chunk) * cols + k] = sum;
    }
    __syncthreads();  // `partial` is rewritten for the next tile
  }
}

// in is (outer, channels, inner). Channel k's elements, numbered t = n * inner + i,
// are cut into chunks of chunk_len; out[k * chunks + c] is the sum of chunk c.
template <class T>
__global__ void __launch_bounds__(kThreads)
    channel_sums_kernel(const T* in, int64_t outer, int64_t channels, int64_t inner, int64_t chunks,
                        int64_t chunk_len, T* out) {
  __shared__ T shared[kThreads / kWarp];
  const int64_t per_channel = outer * inner;
  const int64_t segments = channels * chunks;
  for (int64_t s = blockIdx.x; s < segments; s += gridDim.x) {
    const int64_t k = s / chunks;
    const int64_t t0 = (s % chunks) * chunk_len, t1 = min64(per_channel, t0 + chunk_len);
    T acc = 0;
    if (inner >= kThreads / 2) {
      // Long rows: the whole block sweeps each row piece with vector loads.
      for (int64_t n = t0 / inner; n * inner < t1; ++n) {
        const int64_t i0 = max64(t0 - n * inner, 0), i1 = min64(t1 - n * inner, inner);
        acc += segment_sum(in + (n * channels + k) * inner + i0, i1 - i0, threadIdx.x, kThreads);
      }
    } else {
      // Short rows (7x7 feature maps): walk t with (n, i) carried along, no division per element.
      const int64_t t = t0 + threadIdx.x;
      int64_t n = t / inner, i = t % inner;
      const int64_t dn = kThreads / inner, di = kThreads % inner;
      for (int64_t u = t; u < t1; u += kThreads) {
        acc += in[(n * channels + k) * inner + i];
        n += dn;
        i += di;
        if (i >= inner) {
          i -= inner;
          ++n;
        }
      }
    }
    acc = block_sum(acc, shared);
    if (threadIdx.x == 0) out[s] = acc;
  }
}

// Kept and reduced dims (sizes and element strides) of the general path.
struct GeneralLayout {
  int kept_ndim = 0, reduced_ndim = 0;
  int64_t kept_size[kMaxGroups], kept_stride[kMaxGroups];
  int64_t reduced_size[kMaxGroups], reduced_stride[kMaxGroups];
};

__device__ __forceinline__ int64_t offset_of(int64_t index, int ndim, const int64_t* size, const int64_t* stride) {
  int64_t offset = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    offset += (index % size[d]) * stride[d];
    index /= size[d];
  }
  return offset;
}

// out[o] = the sum over every reduced index of in[offset(o) + offset(r)]; a group of G
// threads per output.
template <int G, class T>
__global__ void __launch_bounds__(kThreads)
    general_sums_kernel(const T* in, GeneralLayout l, int64_t n_out, int64_t n_reduced, T* out) {
  __shared__ T shared[kThreads / kWarp];
  constexpr int per_block = kThreads / G;
  const int group = threadIdx.x / G, lane = threadIdx.x % G;
  for (int64_t first = int64_t(blockIdx.x) * per_block; first < n_out; first += int64_t(gridDim.x) * per_block) {
    const int64_t o = first + group;
    T acc = 0;
    if (o < n_out) {
      const int64_t base = offset_of(o, l.kept_ndim, l.kept_size, l.kept_stride);
      for (int64_t r = lane; r < n_reduced; r += G) acc += in[base + offset_of(r, l.reduced_ndim, l.reduced_size, l.reduced_stride)];
    }
    acc = group_sum<G>(acc, shared);
    if (lane == 0 && o < n_out) out[o] = acc;
  }
}

// ---- host side ----------------------------------------------------------------------------

template <class T>
void launch_row_sums(const T* in, int64_t rows, int64_t len, int64_t chunks, int64_t chunk_len, T* out,
                     int device) {
  const int64_t segments = rows * chunks;
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (chunk_len >= 1024) {
    row_sums_kernel<kThreads><<<grid_for(segments), kThreads, 0, st>>>(in, rows, len, chunks, chunk_len, out);
  } else {
    row_sums_kernel<kWarp><<<grid_for(ceil_div(segments, kThreads / kWarp)), kThreads, 0, st>>>(in, rows, len, chunks,
                                                                                                chunk_len, out);
  }
  check_launch("cuda::sum_dims (row sums)");
}

// out[r] = sum of the len elements of row r.
template <class T>
void row_sums(const T* in, int64_t rows, int64_t len, T* out, int device) {
  int64_t chunks = 1;
  // Few long rows: split each into chunks of >= 4096 elements, ~2048 segments in all.
  if (rows < 1024 && len > 8192) chunks = std::min(ceil_div(len, 4096), ceil_div(2048, rows));
  if (chunks <= 1) return launch_row_sums(in, rows, len, 1, len, out, device);
  const int64_t chunk_len = ceil_div(ceil_div(len, chunks), 4) * 4;  // chunks start 16-byte aligned for f32
  chunks = ceil_div(len, chunk_len);
  const DeviceScratch partial(static_cast<size_t>(rows * chunks) * sizeof(T), device);
  launch_row_sums(in, rows, len, chunks, chunk_len, partial.as<T>(), device);
  launch_row_sums(partial.as<T>(), rows, chunks, 1, chunks, out, device);
}

template <class T>
void launch_column_sums(const T* in, int64_t outer, int64_t rows, int64_t cols, int64_t chunks, int64_t chunk_rows,
                        T* out, int device) {
  const dim3 grid(grid_for(outer * ceil_div(cols, kColumnTile)), static_cast<unsigned>(chunks));
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  column_sums_kernel<<<grid, kThreads, 0, st>>>(in, outer, rows, cols, chunks, chunk_rows, out);
  check_launch("cuda::sum_dims (column sums)");
}

// in (outer, rows, cols) -> out (outer, cols).
template <class T>
void column_sums(const T* in, int64_t outer, int64_t rows, int64_t cols, T* out, int device) {
  const int64_t tiles = outer * ceil_div(cols, kColumnTile);
  int64_t chunks = 1;
  // Few column tiles over many rows: chunks of >= 64 rows, ~1024 blocks in all.
  if (tiles < 512 && rows > 256) chunks = std::min(ceil_div(rows, 64), ceil_div(1024, tiles));
  if (chunks <= 1) return launch_column_sums(in, outer, rows, cols, 1, rows, out, device);
  const int64_t chunk_rows = ceil_div(rows, chunks);
  chunks = ceil_div(rows, chunk_rows);
  const DeviceScratch partial(static_cast<size_t>(outer * chunks * cols) * sizeof(T), device);
  launch_column_sums(in, outer, rows, cols, chunks, chunk_rows, partial.as<T>(), device);
  launch_column_sums(partial.as<T>(), outer, chunks, cols, 1, chunks, out, device);
}

// in (outer, channels, inner) -> out (channels).
template <class T>
void channel_sums(const T* in, int64_t outer, int64_t channels, int64_t inner, T* out, int device) {
  const int64_t per_channel = outer * inner;
  int64_t chunks = 1;
  // Few channels: cut each channel into chunks of >= 8192 elements, ~2048 blocks in all.
  if (channels < 1024 && per_channel > 16384) chunks = std::min(ceil_div(per_channel, 8192), ceil_div(2048, channels));
  const int64_t chunk_len = ceil_div(per_channel, std::max<int64_t>(chunks, 1));
  chunks = ceil_div(per_channel, chunk_len);
  std::unique_ptr<DeviceScratch> partial;
  T* target = out;
  if (chunks > 1) {
    partial = std::make_unique<DeviceScratch>(static_cast<size_t>(channels * chunks) * sizeof(T), device);
    target = partial->as<T>();
  }
  {
    cudaStream_t st = stream(device);
    DeviceGuard guard(device);
    channel_sums_kernel<<<grid_for(channels * chunks), kThreads, 0, st>>>(in, outer, channels, inner, chunks,
                                                                           chunk_len, target);
    check_launch("cuda::sum_dims (channel sums)");
  }
  if (chunks > 1) launch_row_sums(partial->as<T>(), channels, chunks, 1, chunks, out, device);
}

template <class T>
void general_sums(const T* in, const std::vector<int64_t>& size, const std::vector<bool>& reduced, T* out,
                  int device) {
  const char* op = "cuda::sum_dims";
  GeneralLayout l;
  std::vector<int64_t> strides(size.size());
  int64_t stride = 1;
  for (size_t d = size.size(); d-- > 0;) {
    strides[d] = stride;
    stride *= size[d];
  }
  int64_t n_out = 1, n_reduced = 1;
  for (size_t d = 0; d < size.size(); ++d) {
    int& nd = reduced[d] ? l.reduced_ndim : l.kept_ndim;
    check(nd < kMaxGroups, op, "more than ", kMaxGroups, " separate groups of ", reduced[d] ? "reduced" : "kept",
          " dims");
    (reduced[d] ? l.reduced_size : l.kept_size)[nd] = size[d];
    (reduced[d] ? l.reduced_stride : l.kept_stride)[nd] = strides[d];
    ++nd;
    (reduced[d] ? n_reduced : n_out) *= size[d];
  }
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (n_reduced >= 2048) {
    general_sums_kernel<kThreads><<<grid_for(n_out), kThreads, 0, st>>>(in, l, n_out, n_reduced, out);
  } else {
    general_sums_kernel<kWarp><<<grid_for(ceil_div(n_out, kThreads / kWarp)), kThreads, 0, st>>>(in, l, n_out,
                                                                                                 n_reduced, out);
  }
  check_launch("cuda::sum_dims (general)");
}

}  // namespace

template <class T>
void sum_dims(const T* in, int ndim, const int64_t* shape, const uint8_t* reduce, T* out, int device) {
  const char* op = "cuda::sum_dims";
  check(ndim >= 0, op, "negative ndim ", ndim);
  // Coalesce into groups, skipping size-1 dims (they change nothing).
  std::vector<int64_t> size;
  std::vector<bool> reduced;
  int64_t n_out = 1, n_reduced = 1;
  for (int d = 0; d < ndim; ++d) {
    check(shape[d] >= 0, op, "negative size ", shape[d], " in dim ", d);
    (reduce[d] ? n_reduced : n_out) *= shape[d];
    if (shape[d] == 1) continue;
    const bool r = reduce[d] != 0;
    if (!size.empty() && reduced.back() == r) {
      size.back() *= shape[d];
    } else {
      size.push_back(shape[d]);
      reduced.push_back(r);
    }
  }
  if (n_out == 0) return;
  check_device(device, op);
  check(in != nullptr || n_reduced == 0, op, "null input");
  check(out != nullptr, op, "null output");
  if (n_reduced == 0) return memset_zero(out, static_cast<size_t>(n_out) * sizeof(T), device);  // empty sums

  const size_t g = size.size();
  if (g == 0 || (g == 1 && !reduced[0])) {  // nothing to add: a copy
    return copy_device_to_device(out, in, static_cast<size_t>(n_out) * sizeof(T), device);
  }
  if (g == 1) return row_sums(in, 1, size[0], out, device);                         // (R)
  if (g == 2 && !reduced[0]) return row_sums(in, size[0], size[1], out, device);     // (K, R)
  if (g == 2) return column_sums(in, 1, size[0], size[1], out, device);              // (R, K)
  if (g == 3 && !reduced[0]) return column_sums(in, size[0], size[1], size[2], out, device);  // (K, R, K)
  if (g == 3) return channel_sums(in, size[0], size[1], size[2], out, device);       // (R, K, R)
  general_sums(in, size, reduced, out, device);
}

template void sum_dims<float>(const float*, int, const int64_t*, const uint8_t*, float*, int);
template void sum_dims<double>(const double*, int, const int64_t*, const uint8_t*, double*, int);

}  // namespace dmix::kernels::cuda
