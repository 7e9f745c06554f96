// Batch normalisation over (N, C, S) per channel on the GPU: forward with batch
// statistics, forward with given statistics, the training backward, and the small
// per-channel maps around them (eval invstd, running-statistics update).
//
// Algorithm: a two-stage, deterministic per-channel reduction, then one fused
// elementwise pass.
//  1. Partial sums. Channel c owns N rows of S contiguous values. Long rows (S >= kMinRow):
//     each channel is cut into `parts` chunks of its N*S values, one block per (c, chunk);
//     the block's threads stride through the chunk (consecutive threads on consecutive
//     addresses, 16-byte vector loads when S allows, kUnroll loads in flight per thread)
//     and their sums are combined by a fixed shuffle / shared-memory tree. Short rows
//     ((N, C) input, tiny maps): the tensor is an N x C*S matrix whose columns belong to
//     channels; a block takes 32 neighbouring columns (coalesced rows) and a chunk of
//     rows. Either way every partial lands in its own slot: no atomics.
//     Forward sums, in double: d and d^2 with d = x - x[0, c, 0]. Shifting by a value of
//     the channel keeps sum-of-squares from cancelling (the error scales with
//     ((mean - shift) / std)^2, not (mean / std)^2), so one read of x gives both moments.
//     Backward sums, in double: g and g * (x - mean).
//  2. Finalise, one warp per channel: add the channel's partials in a fixed order, then
//     mean, biased variance, invstd (forward) or gweight, gbias (backward), and fold the
//     elementwise formula into per-channel coefficients:
//       forward  y  = x * scale + shift,      scale = invstd * w, shift = b - mean * scale
//       backward gx = g * k + x * p + q       (as kernels/cpu/batchnorm.cpp folds it)
//  3. Apply: one grid-stride pass over all elements with vector loads; the channel of an
//     element comes from a division by precomputed magic numbers (no hardware divide).
// How work is split depends only on the sizes (and on whether the buffers allow vector
// loads), never on the GPU, so results are reproducible bit for bit.
//
// Cost, M = N*C*S elements of b bytes: forward reads x twice and writes y once (3 M b
// bytes, ~8 M flops, half of them in double); backward reads g and x twice and writes gx
// once (5 M b bytes). The per-channel stages move O(C * parts) bytes.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kBlock = 256;
constexpr int kWarpsPerBlock = kBlock / kWarp;
// Loads a thread has in flight in the streaming loops: enough to cover memory latency.
constexpr int kUnroll = 4;
// Rows shorter than this use the column layout for the sums.
constexpr int64_t kMinRow = 32;
// Row layout: values per block of partial sums (32 per thread), and the most chunks per channel.
constexpr int64_t kValuesPerBlock = kBlock * 32;
constexpr int64_t kMaxParts = 1024;
// Column layout: a block is kColumns columns by kColumnRows thread rows, over a chunk of
// at least kRowsPerPart matrix rows, with at most kMaxRowParts chunks.
constexpr int kColumns = 32;
constexpr int kColumnRows = kBlock / kColumns;
constexpr int64_t kRowsPerPart = 32;
constexpr int64_t kMaxRowParts = 1024;
constexpr int64_t kMaxBlocks = 65535;

// ---- vector loads -------------------------------------------------------------------------

// V consecutive values; the alignment makes the compiler emit one 16-byte access.
template <class T, int V> struct alignas(sizeof(T) * V) Pack {
  T v[V];
};
template <class T, int V> __device__ __forceinline__ Pack<T, V> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, V>*>(p);
}
template <class T, int V> __device__ __forceinline__ void store_pack(T* p, const Pack<T, V>& v) {
  *reinterpret_cast<Pack<T, V>*>(p) = v;
}

// 16-byte packs where S and every buffer allow them, else single values.
template <class T> int vector_width(int64_t S, std::initializer_list<const void*> buffers) {
  constexpr int kWide = static_cast<int>(16 / sizeof(T));
  if (S % kWide != 0) return 1;
  for (const void* b : buffers)
    if (b != nullptr && reinterpret_cast<uintptr_t>(b) % 16 != 0) return 1;
  return kWide;
}

// ---- division by a run-time constant -------------------------------------------------------

// n / d for n, d < 2^31 as a multiply-high, an add and a shift (the round-up method of
// Granlund and Montgomery): magic = floor(2^32 (2^shift - d) / d) + 1 with 2^shift >= d.
struct Divider32 {
  uint32_t divisor = 1, magic = 1, shift = 0;
  explicit Divider32(uint32_t d) : divisor(d) {
    while ((uint64_t{1} << shift) < d) ++shift;
    magic = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, magic) + n) >> shift; }
};

// The channel of vector unit u: (u / units_per_row) % C.
struct ChannelOf32 {
  using Index = uint32_t;
  Divider32 row, channels;
  __device__ __forceinline__ uint32_t operator()(uint32_t u) const {
    const uint32_t r = row.div(u);
    return r - channels.div(r) * channels.divisor;
  }
};
struct ChannelOf64 {
  using Index = uint64_t;
  uint64_t row, channels;
  __device__ __forceinline__ uint64_t operator()(uint64_t u) const { return (u / row) % channels; }
};

// ---- reductions ------------------------------------------------------------------------------

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sums (a, b) over the block in a fixed order; the result is valid in thread 0.
__device__ __forceinline__ double2 block_sum(double a, double b) {
  __shared__ double2 scratch[kWarpsPerBlock];
  a = warp_sum(a);
  b = warp_sum(b);
  if (threadIdx.x % kWarp == 0) scratch[threadIdx.x / kWarp] = make_double2(a, b);
  __syncthreads();
  double2 r = make_double2(0.0, 0.0);
  if (threadIdx.x == 0)
    for (int w = 0; w < kWarpsPerBlock; ++w) {
      r.x += scratch[w].x;
      r.y += scratch[w].y;
    }
  return r;
}

// What a channel sums: forward (x - shift, (x - shift)^2), backward (g, g * (x - mean)).
template <class T, bool kBackward>
__device__ __forceinline__ void accumulate(T g, T x, double ref, double& a, double& b) {
  if (kBackward) {
    const double gv = static_cast<double>(g);
    a += gv;
    b += gv * (static_cast<double>(x) - ref);
  } else {
    const double d = static_cast<double>(x) - ref;
    a += d;
    b += d * d;
  }
}

// The value each channel's sums are taken about: x[0, c, 0] forward, the mean backward.
template <class T, bool kBackward>
__device__ __forceinline__ double reference(const T* x, const T* mean, int64_t c, int64_t S) {
  return kBackward ? static_cast<double>(mean[c]) : static_cast<double>(x[c * S]);
}

// Long rows: block (c, part) sums its chunk of channel c's N * S/V vector units into
// partial[c * parts + part]. g is only read for the backward.
template <class T, int V, bool kBackward>
__global__ void __launch_bounds__(kBlock)
    row_sums_kernel(const T* __restrict__ g, const T* __restrict__ x, int64_t N, int64_t C, int64_t S,
                    const T* __restrict__ mean, int64_t parts, double2* __restrict__ partial) {
  const int64_t c = blockIdx.x / parts, part = blockIdx.x % parts;
  const int64_t row_units = S / V, units = N * row_units;
  const int64_t chunk = (units + parts - 1) / parts;
  const int64_t u_end = min(units, (part + 1) * chunk);
  const double ref = reference<T, kBackward>(x, mean, c, S);
  double a = 0, b = 0;
  // Unit u is (n, s) = (u / row_units, u % row_units); stepping by kBlock units adds a
  // fixed (step_n, step_s) with one carry, so the loop has no division.
  int64_t u = part * chunk + threadIdx.x;
  int64_t n = u / row_units, s = u - n * row_units;
  const int64_t step_n = kBlock / row_units, step_s = kBlock % row_units;
  for (; u + (kUnroll - 1) * kBlock < u_end; u += kUnroll * kBlock) {
    int64_t offset[kUnroll];
#pragma unroll
    for (int r = 0; r < kUnroll; ++r) {
      offset[r] = (n * C + c) * S + s * V;
      s += step_s;
      n += step_n;
      if (s >= row_units) s -= row_units, ++n;
    }
    Pack<T, V> xv[kUnroll], gv[kUnroll];
#pragma unroll
    for (int r = 0; r < kUnroll; ++r) {
      xv[r] = load_pack<T, V>(x + offset[r]);
      if (kBackward) gv[r] = load_pack<T, V>(g + offset[r]);
    }
#pragma unroll
    for (int r = 0; r < kUnroll; ++r)
#pragma unroll
      for (int e = 0; e < V; ++e) accumulate<T, kBackward>(kBackward ? gv[r].v[e] : T(0), xv[r].v[e], ref, a, b);
  }
  for (; u < u_end; u += kBlock) {
    const int64_t offset = (n * C + c) * S + s * V;
    const Pack<T, V> xv = load_pack<T, V>(x + offset);
    Pack<T, V> gv{};
    if (kBackward) gv = load_pack<T, V>(g + offset);
#pragma unroll
    for (int e = 0; e < V; ++e) accumulate<T, kBackward>(gv.v[e], xv.v[e], ref, a, b);
    s += step_s;
    n += step_n;
    if (s >= row_units) s -= row_units, ++n;
  }
  const double2 total = block_sum(a, b);
  if (threadIdx.x == 0) partial[c * parts + part] = total;
}

// Short rows: the tensor as an N x L matrix (L = C*S). Block (tile, part) sums the columns
// tile*32 .. tile*32+31 over its chunk of rows into partial[part * L + column].
template <class T, bool kBackward>
__global__ void __launch_bounds__(kBlock)
    column_sums_kernel(const T* __restrict__ g, const T* __restrict__ x, int64_t N, int64_t C, int64_t S,
                       const T* __restrict__ mean, int64_t row_parts, double2* __restrict__ partial) {
  __shared__ double2 scratch[kColumnRows][kColumns + 1];
  const int64_t L = C * S, tiles = (L + kColumns - 1) / kColumns;
  const int64_t tile = blockIdx.x % tiles, part = blockIdx.x / tiles;
  const int tx = threadIdx.x % kColumns, ty = threadIdx.x / kColumns;
  const int64_t column = tile * kColumns + tx;
  const int64_t rows = (N + row_parts - 1) / row_parts;
  const int64_t r_end = min(N, (part + 1) * rows);
  double a = 0, b = 0;
  if (column < L) {
    const double ref = reference<T, kBackward>(x, mean, column / S, S);
#pragma unroll 4
    for (int64_t r = part * rows + ty; r < r_end; r += kColumnRows)
      accumulate<T, kBackward>(kBackward ? g[r * L + column] : T(0), x[r * L + column], ref, a, b);
  }
  scratch[ty][tx] = make_double2(a, b);
  __syncthreads();
  if (ty == 0 && column < L) {
    double2 total = scratch[0][tx];
    for (int row = 1; row < kColumnRows; ++row) {
      total.x += scratch[row][tx].x;
      total.y += scratch[row][tx].y;
    }
    partial[part * L + column] = total;
  }
}

// Where channel c's partials are, in the order they are added.
struct PartialLayout {
  bool columns = false;  // column layout: partial[part * C*S + c*S + s]; else partial[c * parts + part]
  int64_t parts = 1;     // chunks per channel (row layout) or row chunks (column layout)
  int64_t S = 1, C = 1;
  __device__ __forceinline__ int64_t count() const { return columns ? parts * S : parts; }
  __device__ __forceinline__ int64_t at(int64_t c, int64_t q) const {
    return columns ? (q / S) * C * S + c * S + q % S : c * parts + q;
  }
};

// One warp per channel: the channel's total (a, b), the same in every lane.
__device__ __forceinline__ double2 channel_total(const double2* partial, const PartialLayout& layout, int64_t c) {
  const int lane = threadIdx.x % kWarp;
  double a = 0, b = 0;
  for (int64_t q = lane; q < layout.count(); q += kWarp) {
    const double2 v = partial[layout.at(c, q)];
    a += v.x;
    b += v.y;
  }
  return make_double2(warp_sum(a), warp_sum(b));
}

template <class T>
__global__ void __launch_bounds__(kBlock)
    finalize_forward_kernel(const double2* __restrict__ partial, PartialLayout layout, const T* __restrict__ x,
                            const T* __restrict__ weight, const T* __restrict__ bias, double count, double eps,
                            T* __restrict__ mean, T* __restrict__ invstd, T* __restrict__ var,
                            T* __restrict__ scale, T* __restrict__ shift) {
  const int64_t c = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (c >= layout.C) return;  // the whole warp leaves together
  const double2 total = channel_total(partial, layout, c);
  if (threadIdx.x % kWarp != 0) return;
  const double offset = total.x / count;  // mean - shift
  const double m = static_cast<double>(x[c * layout.S]) + offset;
  double v = total.y / count - offset * offset;
  if (v < 0) v = 0;  // rounding can dip below zero; NaN passes through
  const double is = 1.0 / sqrt(v + eps);
  const double sc = is * (weight ? static_cast<double>(weight[c]) : 1.0);
  mean[c] = static_cast<T>(m);
  invstd[c] = static_cast<T>(is);
  if (var) var[c] = static_cast<T>(v);
  scale[c] = static_cast<T>(sc);
  shift[c] = static_cast<T>((bias ? static_cast<double>(bias[c]) : 0.0) - m * sc);
}

// coefficients: k, p, q at [0, C), [C, 2C), [2C, 3C); gweight/gbias may be null.
template <class T>
__global__ void __launch_bounds__(kBlock)
    finalize_backward_kernel(const double2* __restrict__ partial, PartialLayout layout, const T* __restrict__ mean,
                             const T* __restrict__ invstd, const T* __restrict__ weight, double count,
                             T* __restrict__ gweight, T* __restrict__ gbias, T* __restrict__ coefficients) {
  const int64_t c = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (c >= layout.C) return;
  const double2 total = channel_total(partial, layout, c);
  if (threadIdx.x % kWarp != 0) return;
  const double sum_g = total.x, sum_gxc = total.y;
  const double m = static_cast<double>(mean[c]), is = static_cast<double>(invstd[c]);
  if (gbias) gbias[c] = static_cast<T>(sum_g);
  if (gweight) gweight[c] = static_cast<T>(sum_gxc * is);
  if (!coefficients) return;
  const double k = (weight ? static_cast<double>(weight[c]) : 1.0) * is;
  const double p = -k * is * is * sum_gxc / count;
  const double q = -k * sum_g / count - p * m;
  coefficients[c] = static_cast<T>(k);
  coefficients[layout.C + c] = static_cast<T>(p);
  coefficients[2 * layout.C + c] = static_cast<T>(q);
}

// Eval mode: scale = invstd * w, shift = b - mean * scale, in double as on the CPU.
template <class T>
__global__ void affine_constants_kernel(const T* __restrict__ mean, const T* __restrict__ invstd,
                                        const T* __restrict__ weight, const T* __restrict__ bias, int64_t C,
                                        T* __restrict__ scale, T* __restrict__ shift) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const double sc = static_cast<double>(invstd[c]) * (weight ? static_cast<double>(weight[c]) : 1.0);
  scale[c] = static_cast<T>(sc);
  shift[c] = static_cast<T>((bias ? static_cast<double>(bias[c]) : 0.0) - static_cast<double>(mean[c]) * sc);
}

// out = x * c0[ch] + c1[ch] (forward), or out = g * c0[ch] + x * c1[ch] + c2[ch] (backward),
// over `units` packs of V values; a pack never straddles two channels (V divides S).
template <class T, int V, bool kBackward, class ChannelOf>
__global__ void __launch_bounds__(kBlock)
    channel_map_kernel(const T* __restrict__ g, const T* __restrict__ x, typename ChannelOf::Index units,
                       ChannelOf channel_of, const T* __restrict__ c0, const T* __restrict__ c1,
                       const T* __restrict__ c2, T* __restrict__ out) {
  using Index = typename ChannelOf::Index;
  const Index stride = Index(gridDim.x) * blockDim.x;
  Index u = Index(blockIdx.x) * blockDim.x + threadIdx.x;
  auto map = [&](Index unit, const Pack<T, V>& gv, const Pack<T, V>& xv) {
    const Index ch = channel_of(unit);
    const T a = c0[ch], b = c1[ch];
    Pack<T, V> r;
    if (kBackward) {
      const T q = c2[ch];
#pragma unroll
      for (int e = 0; e < V; ++e) r.v[e] = gv.v[e] * a + xv.v[e] * b + q;
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) r.v[e] = xv.v[e] * a + b;
    }
    store_pack<T, V>(out + static_cast<int64_t>(unit) * V, r);
  };
  for (; u + (kUnroll - 1) * stride < units; u += kUnroll * stride) {
    Pack<T, V> xv[kUnroll], gv[kUnroll];
#pragma unroll
    for (int r = 0; r < kUnroll; ++r) {
      xv[r] = load_pack<T, V>(x + static_cast<int64_t>(u + r * stride) * V);
      if (kBackward) gv[r] = load_pack<T, V>(g + static_cast<int64_t>(u + r * stride) * V);
    }
#pragma unroll
    for (int r = 0; r < kUnroll; ++r) map(u + r * stride, gv[r], xv[r]);
  }
  for (; u < units; u += stride) {
    Pack<T, V> gv{};
    if (kBackward) gv = load_pack<T, V>(g + static_cast<int64_t>(u) * V);
    map(u, gv, load_pack<T, V>(x + static_cast<int64_t>(u) * V));
  }
}

template <class T>
__global__ void invstd_kernel(const T* __restrict__ var, int64_t C, double eps, T* __restrict__ invstd) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c < C) invstd[c] = static_cast<T>(1.0 / sqrt(static_cast<double>(var[c]) + eps));
}

// The CPU path's Tensor::mul_(1 - momentum) then Tensor::add_(batch, alpha), in T.
template <class T>
__global__ void update_running_kernel(T* __restrict__ running_mean, T* __restrict__ running_var,
                                      const T* __restrict__ mean, const T* __restrict__ var, int64_t C, T decay,
                                      T mean_alpha, T var_alpha) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  if (running_mean) {
    T r = running_mean[c] * decay + T(0);
    r += mean_alpha * mean[c];
    running_mean[c] = r;
  }
  if (running_var) {
    T r = running_var[c] * decay + T(0);
    r += var_alpha * var[c];
    running_var[c] = r;
  }
}

// ---- host side ---------------------------------------------------------------------------------

unsigned grid_for(int64_t blocks) {
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

// How stage 1 splits the work, from the sizes alone.
PartialLayout plan_sums(int64_t N, int64_t C, int64_t S, const char* name) {
  PartialLayout layout;
  layout.S = S;
  layout.C = C;
  if (S >= kMinRow) {
    layout.parts = std::min(kMaxParts, std::max<int64_t>(1, (N * S + kValuesPerBlock - 1) / kValuesPerBlock));
    check(C * layout.parts < (int64_t{1} << 31), name, "too many channels (", C, ")");
  } else {
    layout.columns = true;
    layout.parts = std::min(kMaxRowParts, std::max<int64_t>(1, (N + kRowsPerPart - 1) / kRowsPerPart));
    check((C * S + kColumns - 1) / kColumns * layout.parts < (int64_t{1} << 31), name, "too many channels (", C, ")");
  }
  return layout;
}

size_t partial_slots(const PartialLayout& layout) {
  return static_cast<size_t>(layout.columns ? layout.C * layout.S * layout.parts : layout.C * layout.parts);
}

// Launches stage 1 for either direction.
template <class T, bool kBackward>
void launch_sums(const PartialLayout& layout, const T* g, const T* x, int64_t N, const T* mean, double2* partial,
                 cudaStream_t s, const char* name) {
  const int64_t C = layout.C, S = layout.S;
  if (!layout.columns) {
    constexpr int kWide = static_cast<int>(16 / sizeof(T));
    const unsigned grid = static_cast<unsigned>(C * layout.parts);
    if (vector_width<T>(S, {x, g}) == kWide)
      row_sums_kernel<T, kWide, kBackward><<<grid, kBlock, 0, s>>>(g, x, N, C, S, mean, layout.parts, partial);
    else
      row_sums_kernel<T, 1, kBackward><<<grid, kBlock, 0, s>>>(g, x, N, C, S, mean, layout.parts, partial);
  } else {
    const int64_t tiles = (C * S + kColumns - 1) / kColumns;
    column_sums_kernel<T, kBackward>
        <<<static_cast<unsigned>(tiles * layout.parts), kBlock, 0, s>>>(g, x, N, C, S, mean, layout.parts, partial);
  }
  check_launch(name);
}

// Launches stage 3: out = x * c0 + c1, or g * c0 + x * c1 + c2 (backward).
template <class T, bool kBackward>
void launch_map(const T* g, const T* x, int64_t N, int64_t C, int64_t S, const T* c0, const T* c1, const T* c2, T* out,
                cudaStream_t s, const char* name) {
  constexpr int kWide = static_cast<int>(16 / sizeof(T));
  const int V = vector_width<T>(S, {g, x, out});
  const int64_t units = N * C * S / V;
  const unsigned grid = grid_for((units + kBlock * kUnroll - 1) / (kBlock * kUnroll));
  // 32-bit unit indices (with the magic-number division) while u + kUnroll * stride fits.
  const bool narrow = units <= (int64_t{1} << 31);
  auto launch = [&](auto wide_tag, auto channel_of) {
    constexpr int W = decltype(wide_tag)::value;
    using Map = decltype(channel_of);
    channel_map_kernel<T, W, kBackward, Map>
        <<<grid, kBlock, 0, s>>>(g, x, static_cast<typename Map::Index>(units), channel_of, c0, c1, c2, out);
  };
  auto with_width = [&](auto channel_of) {
    if (V == kWide)
      launch(std::integral_constant<int, kWide>{}, channel_of);
    else
      launch(std::integral_constant<int, 1>{}, channel_of);
  };
  if (narrow)
    with_width(ChannelOf32{Divider32(static_cast<uint32_t>(S / V)), Divider32(static_cast<uint32_t>(C))});
  else
    with_width(ChannelOf64{static_cast<uint64_t>(S / V), static_cast<uint64_t>(C)});
  check_launch(name);
}

template <class T>
void forward_train(const T* x, int64_t N, int64_t C, int64_t S, const T* weight, const T* bias, double eps, T* y,
                   T* mean, T* invstd, T* var, int device) {
  const char* name = "cuda batch_norm_forward_train";
  if (N <= 0 || C <= 0 || S <= 0) return;
  check_device(device, name);
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  const PartialLayout layout = plan_sums(N, C, S, name);
  const DeviceScratch partial(sizeof(double2) * partial_slots(layout), device);
  launch_sums<T, false>(layout, nullptr, x, N, nullptr, partial.as<double2>(), s, name);
  const DeviceScratch constants(sizeof(T) * 2 * C, device);
  T* scale = constants.as<T>();
  T* shift = scale + C;
  finalize_forward_kernel<T><<<grid_for((C + kWarpsPerBlock - 1) / kWarpsPerBlock), kBlock, 0, s>>>(
      partial.as<double2>(), layout, x, weight, bias, static_cast<double>(N * S), eps, mean, invstd, var, scale,
      shift);
  check_launch(name);
  launch_map<T, false>(nullptr, x, N, C, S, scale, shift, nullptr, y, s, name);
}

template <class T>
void apply(const T* x, int64_t N, int64_t C, int64_t S, const T* mean, const T* invstd, const T* weight, const T* bias,
           T* y, int device) {
  const char* name = "cuda batch_norm_apply";
  if (N <= 0 || C <= 0 || S <= 0) return;
  check_device(device, name);
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  const DeviceScratch constants(sizeof(T) * 2 * C, device);
  T* scale = constants.as<T>();
  T* shift = scale + C;
  affine_constants_kernel<T><<<grid_for((C + kBlock - 1) / kBlock), kBlock, 0, s>>>(mean, invstd, weight, bias, C,
                                                                                    scale, shift);
  check_launch(name);
  launch_map<T, false>(nullptr, x, N, C, S, scale, shift, nullptr, y, s, name);
}

template <class T>
void backward_train(const T* g, const T* x, int64_t N, int64_t C, int64_t S, const T* mean, const T* invstd,
                    const T* weight, T* gx, T* gweight, T* gbias, int device) {
  const char* name = "cuda batch_norm_backward_train";
  if (N <= 0 || C <= 0 || S <= 0) return;
  if (!gx && !gweight && !gbias) return;
  check_device(device, name);
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  const PartialLayout layout = plan_sums(N, C, S, name);
  const DeviceScratch partial(sizeof(double2) * partial_slots(layout), device);
  launch_sums<T, true>(layout, g, x, N, mean, partial.as<double2>(), s, name);
  const DeviceScratch constants(gx ? sizeof(T) * 3 * C : 0, device);
  T* coefficients = constants.as<T>();
  finalize_backward_kernel<T><<<grid_for((C + kWarpsPerBlock - 1) / kWarpsPerBlock), kBlock, 0, s>>>(
      partial.as<double2>(), layout, mean, invstd, weight, static_cast<double>(N * S), gweight, gbias, coefficients);
  check_launch(name);
  if (gx) launch_map<T, true>(g, x, N, C, S, coefficients, coefficients + C, coefficients + 2 * C, gx, s, name);
}

template <class T> void invstd_impl(const T* var, int64_t C, double eps, T* invstd, int device) {
  if (C <= 0) return;
  check_device(device, "cuda batch_norm_invstd");
  DeviceGuard guard(device);
  invstd_kernel<T><<<grid_for((C + kBlock - 1) / kBlock), kBlock, 0, stream(device)>>>(var, C, eps, invstd);
  check_launch("cuda batch_norm_invstd");
}

template <class T>
void update_running_impl(T* running_mean, T* running_var, const T* mean, const T* var, int64_t C, double momentum,
                         int64_t count, int device) {
  if (C <= 0 || (!running_mean && !running_var)) return;
  check(!running_var || count > 1, "cuda batch_norm_update_running", "the unbiased variance needs more than one value (",
        count, ")");
  check_device(device, "cuda batch_norm_update_running");
  DeviceGuard guard(device);
  // The same double -> T conversions as Tensor::mul_ and Tensor::add_ make.
  const T decay = static_cast<T>(1.0 - momentum);
  const T mean_alpha = static_cast<T>(momentum);
  const T var_alpha =
      running_var ? static_cast<T>(momentum * static_cast<double>(count) / static_cast<double>(count - 1)) : T(0);
  update_running_kernel<T><<<grid_for((C + kBlock - 1) / kBlock), kBlock, 0, stream(device)>>>(
      running_mean, running_var, mean, var, C, decay, mean_alpha, var_alpha);
  check_launch("cuda batch_norm_update_running");
}

}  // namespace

void batch_norm_forward_train(const float* x, int64_t N, int64_t C, int64_t S, const float* weight, const float* bias,
                              double eps, float* y, float* mean, float* invstd, float* var, int device) {
  forward_train(x, N, C, S, weight, bias, eps, y, mean, invstd, var, device);
}
void batch_norm_forward_train(const double* x, int64_t N, int64_t C, int64_t S, const double* weight,
                              const double* bias, double eps, double* y, double* mean, double* invstd, double* var,
                              int device) {
  forward_train(x, N, C, S, weight, bias, eps, y, mean, invstd, var, device);
}

void batch_norm_apply(const float* x, int64_t N, int64_t C, int64_t S, const float* mean, const float* invstd,
                      const float* weight, const float* bias, float* y, int device) {
  apply(x, N, C, S, mean, invstd, weight, bias, y, device);
}
void batch_norm_apply(const double* x, int64_t N, int64_t C, int64_t S, const double* mean, const double* invstd,
                      const double* weight, const double* bias, double* y, int device) {
  apply(x, N, C, S, mean, invstd, weight, bias, y, device);
}

void batch_norm_backward_train(const float* g, const float* x, int64_t N, int64_t C, int64_t S, const float* mean,
                               const float* invstd, const float* weight, float* gx, float* gweight, float* gbias,
                               int device) {
  backward_train(g, x, N, C, S, mean, invstd, weight, gx, gweight, gbias, device);
}
void batch_norm_backward_train(const double* g, const double* x, int64_t N, int64_t C, int64_t S, const double* mean,
                               const double* invstd, const double* weight, double* gx, double* gweight,
                               double* gbias, int device) {
  backward_train(g, x, N, C, S, mean, invstd, weight, gx, gweight, gbias, device);
}

void batch_norm_invstd(const float* var, int64_t C, double eps, float* invstd, int device) {
  invstd_impl(var, C, eps, invstd, device);
}
void batch_norm_invstd(const double* var, int64_t C, double eps, double* invstd, int device) {
  invstd_impl(var, C, eps, invstd, device);
}

void batch_norm_update_running(float* running_mean, float* running_var, const float* mean, const float* var,
                               int64_t C, double momentum, int64_t count, int device) {
  update_running_impl(running_mean, running_var, mean, var, C, momentum, count, device);
}
void batch_norm_update_running(double* running_mean, double* running_var, const double* mean, const double* var,
                               int64_t C, double momentum, int64_t count, int device) {
  update_running_impl(running_mean, running_var, mean, var, C, momentum, count, device);
}

}  // namespace dmix::kernels::cuda
