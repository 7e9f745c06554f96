// conv2d by implicit GEMM: the forward pass and its two adjoints, handwritten, f32 and f64.
//
// Each pass is a matrix product whose operands are never built. For group g:
//   forward          y  (pixels N*P*Q  x filters Kg)      = A (N*P*Q x Cg*R*S)  * B (Cg*R*S x Kg)
//                    A(m, (c,r,s)) = x at pixel m's receptive field,  B((c,r,s), k) = w[g*Kg+k, c, r, s]
//   backward_input   gx (pixels N*H*W  x channels Cg)     = A (N*H*W x Kg*R*S)  * B (Kg*R*S x Cg)
//                    A(m, (k,r,s)) = gy at the output that input pixel m reaches through tap (r,s)
//                    (zero where the stride skips it),  B((k,r,s), c) = w[g*Kg+k, c, r, s]
//   backward_weight  gw (taps Cg*R*S   x filters Kg)      = A (Cg*R*S x N*P*Q)  * B (N*P*Q x Kg)
//                    A((c,r,s), m) = x that tap (c,r,s) reads for output pixel m,  B(m, k) = gy[n, g*Kg+k, p, q]
// A block of 256 threads owns a BM x BN tile of the product (BN = 64, 32 or 16 by the
// width of the product, BM = 4096 / BN) and walks the inner dimension in steps of 16: the
// threads gather the BM x 16 slice of A and the 16 x BN slice of B from global memory
// into shared memory — applying padding, stride and dilation while they load, which is
// what "implicit" means — and each thread then accumulates a 4 x 4 patch of outputs in
// registers, reading 8 values from shared memory per 16 multiply-adds. The next slice is
// loaded into registers while the current one is multiplied. A thread's outputs are
// strided by the thread counts (rows tm + i*BM/4), so that consecutive threads store
// consecutive pixels: coalesced NCHW stores. Loads run along whichever index is
// contiguous in memory (the output pixel for x and gy gathers, the tap for the filter).
// Index arithmetic uses 32-bit ints and multiply-shift division (conv2d_common.cuh).
//
// backward_weight has a long inner dimension (every pixel of the batch) and few outputs,
// so it is split into chunks ("split-K"): chunk j of block (tile, group) writes its
// partial tile to a workspace, and a second kernel adds the chunks in order. The split
// depends only on the sizes, so results are reproducible bit for bit; no atomics.
//
// Cost: 2 * N*K*(C/groups)*R*S*P*Q flops per pass (backward_input does sh*sw times more
// multiply-adds, most of them by zeros skipped only at load time, when strided). Global
// reads: each A element is read BN-wide and each B element BM-wide once per tile, mostly
// from L2. Shared memory: 16 x (BM + BN + 2) elements per block (8.1 KiB f32 at 64 x 64).
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/conv2d_common.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

using conv::FastDiv;
using conv::Geometry;

constexpr int kBlockThreads = 256;
constexpr int kTileK = 16;
constexpr int kPad = 1;  // odd row length: column-wise shared stores spread over the banks

// A BM x BN tile, 4 x 4 outputs per thread: BM/4 threads along the rows, BN/4 along the columns.
template <int BN>
struct Tile {
  static constexpr int kM = kBlockThreads * 16 / BN;
  static constexpr int kThreadsM = kM / 4;
  static constexpr int kThreadsN = BN / 4;
  static_assert(kThreadsM * kThreadsN == kBlockThreads, "4 x 4 outputs per thread");
  static_assert(kM * kTileK % kBlockThreads == 0 && BN * kTileK % kBlockThreads == 0, "loads must divide evenly");
};

template <class T, int BM, int BN>
struct SharedTiles {
  T a[kTileK][BM + kPad];  // a[k][m] = A(m0 + m, k0 + k)
  T b[kTileK][BN + kPad];  // b[k][n] = B(k0 + k, n0 + n)
};

// acc[i][j] += sum over the slice of A(tm + i*kThreadsM, k) * B(k, tn + j*kThreadsN).
template <class T, int BN>
__device__ __forceinline__ void multiply_tiles(const SharedTiles<T, Tile<BN>::kM, BN>& s, int tm, int tn,
                                               T (&acc)[4][4]) {
  using Shape = Tile<BN>;
#pragma unroll
  for (int k = 0; k < kTileK; ++k) {
    T a[4], b[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) a[i] = s.a[k][tm + i * Shape::kThreadsM];
#pragma unroll
    for (int j = 0; j < 4; ++j) b[j] = s.b[k][tn + j * Shape::kThreadsN];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
  }
}

__device__ __forceinline__ bool inside(int i, int n) { return static_cast<unsigned>(i) < static_cast<unsigned>(n); }

// ---- forward ------------------------------------------------------------------------------

template <class T>
struct ForwardArgs {
  Geometry g;
  FastDiv div_pq, div_q, div_rs, div_s;
  const T* x;
  const T* w;
  const T* bias;
  T* y;
  int M, Kdim;  // N*P*Q, Cg*R*S
};

template <class T, int BN>
__global__ void __launch_bounds__(kBlockThreads) forward_kernel(ForwardArgs<T> a) {
  constexpr int BM = Tile<BN>::kM;
  constexpr int kSlotsA = BM * kTileK / kBlockThreads;
  constexpr int kSlotsB = BN * kTileK / kBlockThreads;
  constexpr int kStepA = kBlockThreads / BM;  // k distance between a thread's A loads
  __shared__ SharedTiles<T, BM, BN> s;
  const Geometry& g = a.g;
  const int tid = threadIdx.x;
  const int group = blockIdx.z;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;

  // A: this thread gathers output pixel m0 + a_m at inner offsets a_k, a_k + kStepA, ...
  const int a_m = tid % BM, a_k = tid / BM;
  const int m = m0 + a_m;
  const bool m_ok = m < a.M;
  int ih0 = 0, iw0 = 0;
  const T* x_img = a.x;
  if (m_ok) {
    const int n_img = a.div_pq.div(m), pq = m - n_img * g.PQ;
    const int p = a.div_q.div(pq), q = pq - p * g.Q;
    ih0 = p * g.sh - g.ph;
    iw0 = q * g.sw - g.pw;
    x_img = a.x + (static_cast<int64_t>(n_img) * g.C + static_cast<int64_t>(group) * g.Cg) * g.HW;
  }
  // B: inner offset b_k of filters n0 + b_n, n0 + b_n + 16, ...: consecutive threads read
  // consecutive taps of one filter.
  const int b_k = tid % kTileK, b_n = tid / kTileK;
  const T* w_group = a.w + static_cast<int64_t>(group) * g.Kg * a.Kdim;

  T a_next[kSlotsA], b_next[kSlotsB];
  auto load = [&](int k0) {
#pragma unroll
    for (int r = 0; r < kSlotsA; ++r) {
      const int kk = k0 + a_k + r * kStepA;
      T v = T(0);
      if (m_ok && kk < a.Kdim) {
        const int c = a.div_rs.div(kk), rs = kk - c * g.RS;
        const int fr = a.div_s.div(rs), fs = rs - fr * g.S;
        const int ih = ih0 + fr * g.dh, iw = iw0 + fs * g.dw;
        if (inside(ih, g.H) && inside(iw, g.W)) v = x_img[c * g.HW + ih * g.W + iw];
      }
      a_next[r] = v;
    }
#pragma unroll
    for (int r = 0; r < kSlotsB; ++r) {
      const int n = n0 + b_n + r * (kBlockThreads / kTileK), kk = k0 + b_k;
      b_next[r] = (n < g.Kg && kk < a.Kdim) ? w_group[static_cast<int64_t>(n) * a.Kdim + kk] : T(0);
    }
  };
  auto store = [&] {
#pragma unroll
    for (int r = 0; r < kSlotsA; ++r) s.a[a_k + r * kStepA][a_m] = a_next[r];
#pragma unroll
    for (int r = 0; r < kSlotsB; ++r) s.b[b_k][b_n + r * (kBlockThreads / kTileK)] = b_next[r];
  };

  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
  const int tm = tid % Tile<BN>::kThreadsM, tn = tid / Tile<BN>::kThreadsM;

  load(0);
  store();
  __syncthreads();
  for (int k0 = 0; k0 < a.Kdim; k0 += kTileK) {
    const bool more = k0 + kTileK < a.Kdim;  // the same for every thread of the block
    if (more) load(k0 + kTileK);
    multiply_tiles<T, BN>(s, tm, tn, acc);
    __syncthreads();
    if (more) {
      store();
      __syncthreads();
    }
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int mo = m0 + tm + i * Tile<BN>::kThreadsM;
    if (mo >= a.M) continue;
    const int n_img = a.div_pq.div(mo), pq = mo - n_img * g.PQ;
    T* y_pixel = a.y + (static_cast<int64_t>(n_img) * g.K + static_cast<int64_t>(group) * g.Kg) * g.PQ + pq;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = n0 + tn + j * Tile<BN>::kThreadsN;
      if (n >= g.Kg) continue;
      T v = acc[i][j];
      if (a.bias) v += a.bias[group * g.Kg + n];
      y_pixel[static_cast<int64_t>(n) * g.PQ] = v;
    }
  }
}

// ---- backward_input -----------------------------------------------------------------------

template <class T>
struct BackwardInputArgs {
  Geometry g;
  FastDiv div_hw, div_w, div_rs, div_s, div_sh, div_sw;
  const T* gy;
  const T* w;
  T* gx;
  int M, Kdim;  // N*H*W, Kg*R*S
};

template <class T, int BN>
__global__ void __launch_bounds__(kBlockThreads) backward_input_kernel(BackwardInputArgs<T> a) {
  constexpr int BM = Tile<BN>::kM;
  constexpr int kSlotsA = BM * kTileK / kBlockThreads;
  constexpr int kSlotsB = BN * kTileK / kBlockThreads;
  constexpr int kStepA = kBlockThreads / BM;
  __shared__ SharedTiles<T, BM, BN> s;
  const Geometry& g = a.g;
  const int tid = threadIdx.x;
  const int group = blockIdx.z;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;

  // A: input pixel m0 + a_m (padded coordinates hp, wp) against taps a_k, a_k + kStepA, ...
  const int a_m = tid % BM, a_k = tid / BM;
  const int m = m0 + a_m;
  const bool m_ok = m < a.M;
  int hp = 0, wp = 0;
  const T* gy_img = a.gy;
  if (m_ok) {
    const int n_img = a.div_hw.div(m), hw = m - n_img * g.HW;
    const int h = a.div_w.div(hw);
    hp = h + g.ph;
    wp = hw - h * g.W + g.pw;
    gy_img = a.gy + (static_cast<int64_t>(n_img) * g.K + static_cast<int64_t>(group) * g.Kg) * g.PQ;
  }
  const int b_k = tid % kTileK, b_n = tid / kTileK;
  const T* w_group = a.w + static_cast<int64_t>(group) * g.Kg * g.Cg * g.RS;

  T a_next[kSlotsA], b_next[kSlotsB];
  auto load = [&](int k0) {
#pragma unroll
    for (int r = 0; r < kSlotsA; ++r) {
      const int kk = k0 + a_k + r * kStepA;
      T v = T(0);
      if (m_ok && kk < a.Kdim) {
        const int k = a.div_rs.div(kk), rs = kk - k * g.RS;
        const int fr = a.div_s.div(rs), fs = rs - fr * g.S;
        // Output (p, q) reads this pixel through tap (fr, fs) when p*sh + fr*dh = h + ph.
        const int th = hp - fr * g.dh, tw = wp - fs * g.dw;
        if (th >= 0 && tw >= 0) {
          const int p = a.div_sh.div(th), q = a.div_sw.div(tw);
          if (p * g.sh == th && q * g.sw == tw && p < g.P && q < g.Q) v = gy_img[k * g.PQ + p * g.Q + q];
        }
      }
      a_next[r] = v;
    }
    const int kk = k0 + b_k;
    const int k = a.div_rs.div(kk), rs = kk - k * g.RS;
#pragma unroll
    for (int r = 0; r < kSlotsB; ++r) {
      const int c = n0 + b_n + r * (kBlockThreads / kTileK);
      b_next[r] = (c < g.Cg && kk < a.Kdim) ? w_group[(static_cast<int64_t>(k) * g.Cg + c) * g.RS + rs] : T(0);
    }
  };
  auto store = [&] {
#pragma unroll
    for (int r = 0; r < kSlotsA; ++r) s.a[a_k + r * kStepA][a_m] = a_next[r];
#pragma unroll
    for (int r = 0; r < kSlotsB; ++r) s.b[b_k][b_n + r * (kBlockThreads / kTileK)] = b_next[r];
  };

  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
  const int tm = tid % Tile<BN>::kThreadsM, tn = tid / Tile<BN>::kThreadsM;

  load(0);
  store();
  __syncthreads();
  for (int k0 = 0; k0 < a.Kdim; k0 += kTileK) {
    const bool more = k0 + kTileK < a.Kdim;
    if (more) load(k0 + kTileK);
    multiply_tiles<T, BN>(s, tm, tn, acc);
    __syncthreads();
    if (more) {
      store();
      __syncthreads();
    }
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int mo = m0 + tm + i * Tile<BN>::kThreadsM;
    if (mo >= a.M) continue;
    const int n_img = a.div_hw.div(mo), hw = mo - n_img * g.HW;
    T* gx_pixel = a.gx + (static_cast<int64_t>(n_img) * g.C + static_cast<int64_t>(group) * g.Cg) * g.HW + hw;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int c = n0 + tn + j * Tile<BN>::kThreadsN;
      if (c < g.Cg) gx_pixel[static_cast<int64_t>(c) * g.HW] = acc[i][j];
    }
  }
}

// ---- backward_weight ----------------------------------------------------------------------

template <class T>
struct BackwardWeightArgs {
  Geometry g;
  FastDiv div_pq, div_q, div_rs, div_s;
  const T* gy;
  const T* x;
  T* out;  // gw, or splits partial copies of it
  int M, Kdim;  // Cg*R*S, N*P*Q
  int splits, chunk;
  int64_t split_stride;  // elements between partial copies: K*Cg*R*S
};

template <class T, int BN>
__global__ void __launch_bounds__(kBlockThreads) backward_weight_kernel(BackwardWeightArgs<T> a) {
  constexpr int BM = Tile<BN>::kM;
  constexpr int kSlotsA = BM * kTileK / kBlockThreads;
  constexpr int kSlotsB = BN * kTileK / kBlockThreads;
  constexpr int kRowsPerSlot = kBlockThreads / kTileK;  // 16
  __shared__ SharedTiles<T, BM, BN> s;
  // Per tap row of the tile: the channel's plane offset and the tap's row/column shift
  // (offset -1: past the end of the taps).
  __shared__ int tap_offset[BM], tap_dh[BM], tap_dw[BM];
  const Geometry& g = a.g;
  const int tid = threadIdx.x;
  const int group = blockIdx.z / a.splits, split = blockIdx.z - group * a.splits;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  const int k_begin = split * a.chunk, k_end = min(a.Kdim, k_begin + a.chunk);

  for (int i = tid; i < BM; i += kBlockThreads) {
    const int m = m0 + i;
    if (m < a.M) {
      const int c = a.div_rs.div(m), rs = m - c * g.RS;
      const int fr = a.div_s.div(rs), fs = rs - fr * g.S;
      tap_offset[i] = c * g.HW;
      tap_dh[i] = fr * g.dh;
      tap_dw[i] = fs * g.dw;
    } else {
      tap_offset[i] = -1;
      tap_dh[i] = tap_dw[i] = 0;
    }
  }
  __syncthreads();

  // Both operands: this thread loads inner index (batch pixel) k0 + t_k, for taps
  // t_m, t_m + 16, ... (A) and filters t_m, t_m + 16, ... (B). Consecutive threads take
  // consecutive pixels: coalesced reads of x and gy.
  const int t_k = tid % kTileK, t_m = tid / kTileK;
  const T* x_group = a.x + static_cast<int64_t>(group) * g.Cg * g.HW;
  const T* gy_group = a.gy + static_cast<int64_t>(group) * g.Kg * g.PQ;

  T a_next[kSlotsA], b_next[kSlotsB];
  auto load = [&](int k0) {
    const int kk = k0 + t_k;
    const bool k_ok = kk < k_end;
    int ih0 = 0, iw0 = 0;
    const T* x_img = x_group;
    const T* gy_pixel = gy_group;
    if (k_ok) {
      const int n_img = a.div_pq.div(kk), pq = kk - n_img * g.PQ;
      const int p = a.div_q.div(pq), q = pq - p * g.Q;
      ih0 = p * g.sh - g.ph;
      iw0 = q * g.sw - g.pw;
      x_img = x_group + static_cast<int64_t>(n_img) * g.C * g.HW;
      gy_pixel = gy_group + static_cast<int64_t>(n_img) * g.K * g.PQ + pq;
    }
#pragma unroll
    for (int r = 0; r < kSlotsA; ++r) {
      const int i = t_m + r * kRowsPerSlot;
      T v = T(0);
      const int offset = tap_offset[i];
      if (k_ok && offset >= 0) {
        const int ih = ih0 + tap_dh[i], iw = iw0 + tap_dw[i];
        if (inside(ih, g.H) && inside(iw, g.W)) v = x_img[offset + ih * g.W + iw];
      }
      a_next[r] = v;
    }
#pragma unroll
    for (int r = 0; r < kSlotsB; ++r) {
      const int k = n0 + t_m + r * kRowsPerSlot;
      b_next[r] = (k_ok && k < g.Kg) ? gy_pixel[static_cast<int64_t>(k) * g.PQ] : T(0);
    }
  };
  auto store = [&] {
#pragma unroll
    for (int r = 0; r < kSlotsA; ++r) s.a[t_k][t_m + r * kRowsPerSlot] = a_next[r];
#pragma unroll
    for (int r = 0; r < kSlotsB; ++r) s.b[t_k][t_m + r * kRowsPerSlot] = b_next[r];
  };

  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
  const int tm = tid % Tile<BN>::kThreadsM, tn = tid / Tile<BN>::kThreadsM;

  load(k_begin);
  store();
  __syncthreads();
  for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
    const bool more = k0 + kTileK < k_end;
    if (more) load(k0 + kTileK);
    multiply_tiles<T, BN>(s, tm, tn, acc);
    __syncthreads();
    if (more) {
      store();
      __syncthreads();
    }
  }

  T* out = a.out + split * a.split_stride + static_cast<int64_t>(group) * g.Kg * a.M;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int m = m0 + tm + i * Tile<BN>::kThreadsM;
    if (m >= a.M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int k = n0 + tn + j * Tile<BN>::kThreadsN;
      if (k < g.Kg) out[static_cast<int64_t>(k) * a.M + m] = acc[i][j];
    }
  }
}

// gw[i] = sum over j of partial[j * count + i], j in order.
template <class T>
__global__ void sum_splits_kernel(const T* __restrict__ partial, int splits, int64_t count, T* __restrict__ gw) {
  for (int64_t i : GridStride(count)) {
    T total = partial[i];
    for (int j = 1; j < splits; ++j) total += partial[j * count + i];
    gw[i] = total;
  }
}

// ---- launch --------------------------------------------------------------------------------

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The tile width BN (tile BM = 4096 / BN) that covers a rows x columns product with the
// least padding; on a tie the wider tile, whose A slice is reused by more columns.
int tile_width(int64_t rows, int64_t columns) {
  int best = 64;
  int64_t best_area = -1;
  for (int bn : {64, 32, 16}) {
    const int64_t bm = kBlockThreads * 16 / bn;
    const int64_t area = ceil_div(rows, bm) * bm * ceil_div(columns, bn) * bn;
    if (best_area < 0 || area < best_area) best = bn, best_area = area;
  }
  return best;
}

// Grid (row tiles, column tiles, z), checked against the launch limits.
dim3 grid_for(const char* op, int64_t rows, int64_t columns, int bn, int64_t z) {
  const int64_t bm = kBlockThreads * 16 / bn;
  const int64_t gx = ceil_div(rows, bm), gy = ceil_div(columns, bn);
  check(gy <= 65535 && z <= 65535, op, "product of ", rows, " x ", columns, " in ", z,
        " groups/splits exceeds the grid limits of the implicit GEMM (use cuDNN)");
  return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(z));
}

template <class T, class Args>
void launch_forward(int bn, dim3 grid, const Args& args, cudaStream_t st) {
  if (bn == 64)
    forward_kernel<T, 64><<<grid, kBlockThreads, 0, st>>>(args);
  else if (bn == 32)
    forward_kernel<T, 32><<<grid, kBlockThreads, 0, st>>>(args);
  else
    forward_kernel<T, 16><<<grid, kBlockThreads, 0, st>>>(args);
}

template <class T, class Args>
void launch_backward_input(int bn, dim3 grid, const Args& args, cudaStream_t st) {
  if (bn == 64)
    backward_input_kernel<T, 64><<<grid, kBlockThreads, 0, st>>>(args);
  else if (bn == 32)
    backward_input_kernel<T, 32><<<grid, kBlockThreads, 0, st>>>(args);
  else
    backward_input_kernel<T, 16><<<grid, kBlockThreads, 0, st>>>(args);
}

template <class T, class Args>
void launch_backward_weight(int bn, dim3 grid, const Args& args, cudaStream_t st) {
  if (bn == 64)
    backward_weight_kernel<T, 64><<<grid, kBlockThreads, 0, st>>>(args);
  else if (bn == 32)
    backward_weight_kernel<T, 32><<<grid, kBlockThreads, 0, st>>>(args);
  else
    backward_weight_kernel<T, 16><<<grid, kBlockThreads, 0, st>>>(args);
}

// backward_weight's split of the N*P*Q inner dimension: enough blocks to fill any
// current GPU (kTargetBlocks), chunks of at least kMinChunk pixels, a whole number of
// 16-steps each. Depends only on the sizes.
constexpr int64_t kTargetBlocks = 1024;
constexpr int64_t kMinChunk = 256;

struct Split {
  int splits, chunk;
};

Split split_for(int64_t tiles, int64_t groups, int64_t kdim) {
  int64_t splits = std::max<int64_t>(1, ceil_div(kTargetBlocks, tiles));
  splits = std::min(splits, std::max<int64_t>(1, ceil_div(kdim, kMinChunk)));
  splits = std::min(splits, std::max<int64_t>(1, 65535 / groups));
  const int64_t chunk = ceil_div(ceil_div(kdim, splits), kTileK) * kTileK;
  splits = std::max<int64_t>(1, ceil_div(kdim, chunk));  // no empty chunk
  return {static_cast<int>(splits), static_cast<int>(chunk)};
}

}  // namespace

template <class T>
void conv2d_forward_implicit_gemm(const Conv2dGeometry& geometry, const T* x, const T* w, const T* bias, T* y,
                                  int device) {
  const char* op = "conv2d_forward_implicit_gemm";
  check_device(device, op);
  const Geometry g = conv::device_geometry(geometry, op);
  if (g.N == 0) return;
  ForwardArgs<T> args{g, FastDiv(g.PQ), FastDiv(g.Q), FastDiv(g.RS), FastDiv(g.S), x, w, bias, y, g.N * g.PQ,
                      g.Cg * g.RS};
  const int bn = tile_width(args.M, g.Kg);
  const dim3 grid = grid_for(op, args.M, g.Kg, bn, g.groups);
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  launch_forward<T>(bn, grid, args, st);
  check_launch(op);
}

template <class T>
void conv2d_backward_input_implicit_gemm(const Conv2dGeometry& geometry, const T* gy, const T* w, T* gx, int device) {
  const char* op = "conv2d_backward_input_implicit_gemm";
  check_device(device, op);
  const Geometry g = conv::device_geometry(geometry, op);
  if (g.N == 0) return;
  BackwardInputArgs<T> args{g,  FastDiv(g.HW), FastDiv(g.W), FastDiv(g.RS), FastDiv(g.S), FastDiv(g.sh),
                            FastDiv(g.sw), gy, w, gx, g.N * g.HW, g.Kg * g.RS};
  const int bn = tile_width(args.M, g.Cg);
  const dim3 grid = grid_for(op, args.M, g.Cg, bn, g.groups);
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  launch_backward_input<T>(bn, grid, args, st);
  check_launch(op);
}

template <class T>
void conv2d_backward_weight_implicit_gemm(const Conv2dGeometry& geometry, const T* gy, const T* x, T* gw,
                                          int device) {
  const char* op = "conv2d_backward_weight_implicit_gemm";
  check_device(device, op);
  const Geometry g = conv::device_geometry(geometry, op);
  const int64_t count = static_cast<int64_t>(g.K) * g.Cg * g.RS;
  if (g.N == 0) {
    memset_zero(gw, static_cast<size_t>(count) * sizeof(T), device);
    return;
  }
  const int M = g.Cg * g.RS, kdim = g.N * g.PQ;
  const int bn = tile_width(M, g.Kg);
  const int64_t bm = kBlockThreads * 16 / bn;
  const int64_t tiles = ceil_div(M, bm) * ceil_div(g.Kg, bn) * g.groups;
  check(g.groups <= 65535, op, g.groups, " groups exceed the grid limit of the implicit GEMM (use cuDNN)");
  const Split split = split_for(tiles, g.groups, kdim);
  const dim3 grid = grid_for(op, M, g.Kg, bn, static_cast<int64_t>(g.groups) * split.splits);

  // With one chunk the kernel writes gw itself; otherwise chunks go to a workspace first.
  const size_t partial_bytes =
      split.splits > 1 ? static_cast<size_t>(split.splits) * static_cast<size_t>(count) * sizeof(T) : 0;
  conv::ScopedBuffer partial(partial_bytes, device);
  T* partial_ptr = static_cast<T*>(partial.get());
  BackwardWeightArgs<T> args{g, FastDiv(g.PQ), FastDiv(g.Q), FastDiv(g.RS), FastDiv(g.S), gy, x,
                             partial_ptr ? partial_ptr : gw, M, kdim, split.splits, split.chunk, count};
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  launch_backward_weight<T>(bn, grid, args, st);
  check_launch(op);
  if (partial_ptr) {
    sum_splits_kernel<T><<<blocks_for(count), kThreads, 0, st>>>(partial_ptr, split.splits, count, gw);
    check_launch("conv2d_backward_weight_implicit_gemm (sum of the chunks)");
  }
}

template void conv2d_forward_implicit_gemm<float>(const Conv2dGeometry&, const float*, const float*, const float*,
                                                  float*, int);
template void conv2d_forward_implicit_gemm<double>(const Conv2dGeometry&, const double*, const double*,
                                                   const double*, double*, int);
template void conv2d_backward_input_implicit_gemm<float>(const Conv2dGeometry&, const float*, const float*, float*,
                                                         int);
template void conv2d_backward_input_implicit_gemm<double>(const Conv2dGeometry&, const double*, const double*,
                                                          double*, int);
template void conv2d_backward_weight_implicit_gemm<float>(const Conv2dGeometry&, const float*, const float*, float*,
                                                          int);
template void conv2d_backward_weight_implicit_gemm<double>(const Conv2dGeometry&, const double*, const double*,
                                                           double*, int);

}  // namespace dmix::kernels::cuda
