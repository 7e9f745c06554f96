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
// One kernel template (implicit_gemm_kernel) runs this loop for all three passes; a pass
// is a small struct saying only how a thread gathers its share of an A and a B slice
// and where a row of C starts.
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

// A BM x BN tile, 4 x 4 outputs per thread: BM/4 threads along the rows, BN/4 along the
// columns. Thread t owns rows tm + i*kThreadsM and columns tn + j*kThreadsN, i, j < 4.
template <int BN>
struct Tile {
  static constexpr int kM = kBlockThreads * 16 / BN;
  static constexpr int kThreadsM = kM / 4;
  static constexpr int kThreadsN = BN / 4;
  static_assert(kThreadsM * kThreadsN == kBlockThreads, "4 x 4 outputs per thread");
  static_assert(kM * kTileK % kBlockThreads == 0 && BN * kTileK % kBlockThreads == 0, "loads must divide evenly");
  // Signed arithmetic, like the rest of the index math: with it ptxas keeps every f32
  // kernel within 64 registers (four blocks per SM).
  __device__ static int tm() { return static_cast<int>(threadIdx.x) % kThreadsM; }
  __device__ static int tn() { return static_cast<int>(threadIdx.x) / kThreadsM; }
};

template <class T, int BM, int BN>
struct SharedTiles {
  T a[kTileK][BM + kPad];  // a[k][m] = A(m0 + m, k0 + k)
  T b[kTileK][BN + kPad];  // b[k][n] = B(k0 + k, n0 + n)
};

// How the loads of an A slice are spread over the threads: AlongRows, consecutive threads
// take consecutive rows (the pixels that the forward and backward_input gathers read
// along); AlongInner, consecutive threads take consecutive inner indices, like B.
enum class Spread { AlongRows, AlongInner };

// One thread's share of a slice, held in registers between the global loads and the
// shared stores. Slot r of A is A(m0 + row_a(r), k0 + inner_a(r)); slot r of B is
// B(k0 + inner_b(), n0 + column_b(r)).
template <class T, int BN, Spread kSpreadA>
struct Slice {
  static constexpr int BM = Tile<BN>::kM;
  static constexpr int kSlotsA = BM * kTileK / kBlockThreads;
  static constexpr int kSlotsB = BN * kTileK / kBlockThreads;
  static constexpr int kLanes = kBlockThreads / kTileK;  // threads per inner index (16)
  T a[kSlotsA], b[kSlotsB];

  __device__ static int row_a(int r) {
    return kSpreadA == Spread::AlongRows ? threadIdx.x % BM : threadIdx.x / kTileK + r * kLanes;
  }
  __device__ static int inner_a(int r) {
    return kSpreadA == Spread::AlongRows ? threadIdx.x / BM + r * (kBlockThreads / BM) : threadIdx.x % kTileK;
  }
  __device__ static int inner_b() { return threadIdx.x % kTileK; }
  __device__ static int column_b(int r) { return threadIdx.x / kTileK + r * kLanes; }

  __device__ void store(SharedTiles<T, BM, BN>& s) const {
#pragma unroll
    for (int r = 0; r < kSlotsA; ++r) s.a[inner_a(r)][row_a(r)] = a[r];
#pragma unroll
    for (int r = 0; r < kSlotsB; ++r) s.b[inner_b()][column_b(r)] = b[r];
  }
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

// What the kernel of every pass receives; each pass reads the fields it names.
template <class T>
struct ConvArgs {
  Geometry g;
  FastDiv div_image, div_row;  // of the pixel index: P*Q and Q (H*W and W for backward_input)
  FastDiv div_rs, div_s, div_sh, div_sw;
  const T* x;
  const T* w;
  const T* gy;
  const T* bias;  // forward; may be null
  T* out;         // y, gx, or gw (backward_weight with splits > 1: splits partial copies of it)
  int M, Kdim;    // rows and inner dimension of the product
  int splits, chunk;     // backward_weight: chunks of the inner dimension
  int64_t split_stride;  // elements between partial copies: K*Cg*R*S
};

// A pass's arguments, in one chunk: its pixel index runs over images of `image` pixels in
// rows of `row` (output pixels P*Q and Q, or input pixels H*W and W); its product has M
// rows and inner dimension kdim.
template <class T>
ConvArgs<T> pass_args(const Geometry& g, int image, int row, int M, int kdim, const T* x, const T* w, const T* gy,
                      const T* bias, T* out) {
  return {g, FastDiv(image), FastDiv(row), FastDiv(g.RS), FastDiv(g.S), FastDiv(g.sh), FastDiv(g.sw),
          x, w, gy, bias, out, M, kdim, 1, kdim, 0};
}

// ---- the passes ---------------------------------------------------------------------------
// A pass is what one thread knows of its block (tile blockIdx.x/y, group or split
// blockIdx.z) and tells implicit_gemm_kernel:
//   Next                    its Slice type (how its A loads are spread)
//   k_begin, k_end          the block's range of the inner dimension
//   gather(k0, next)        the thread's share of the slice at k0, zeros outside the product
//   m0, n0, columns         the tile's first row and column, the product's width (height a.M)
//   row_start(m), column_stride, bias: C(m, n) goes to row_start(m)[n * column_stride],
//                           plus bias[n] where bias is not null
// Shared is the block's extra shared memory that the pass asks for.

// A filter tap t = (outer * R + r) * S + s of a (C or K) x R x S block of the weight.
struct Tap {
  int outer, r, s;
};
__device__ __forceinline__ Tap split_tap(int t, const Geometry& g, FastDiv div_rs, FastDiv div_s) {
  const int outer = div_rs.div(t), rs = t - outer * g.RS;
  const int r = div_s.div(rs);
  return {outer, r, rs - r * g.S};
}

// The A slots of a pass whose A rows are pixels and whose inner index runs over filter
// taps (forward, backward_input): slot r = at(tap k0 + inner_a(r)), zero where the
// thread's row is past the product (row_ok false) or the index past the taps.
template <class T, class Next, class At>
__device__ __forceinline__ void gather_taps(const ConvArgs<T>& a, int k0, bool row_ok, Next& next, At at) {
#pragma unroll
  for (int r = 0; r < Next::kSlotsA; ++r) {
    const int kk = k0 + Next::inner_a(r);
    next.a[r] = row_ok && kk < a.Kdim ? at(split_tap(kk, a.g, a.div_rs, a.div_s)) : T(0);
  }
}

struct NoSharedMemory {};

// forward: A(m, (c,r,s)) = x at output pixel m's tap (c, r, s), B((c,r,s), k) = w[k, c, r, s],
// C(m, k) = y at pixel m of filter k.
template <class T, int BN>
struct ForwardPass {
  using Next = Slice<T, BN, Spread::AlongRows>;
  using Shared = NoSharedMemory;
  const ConvArgs<T>& a;
  const Geometry& g;
  const int group, m0, n0, k_begin, k_end, columns, column_stride;
  const T* bias;
  bool m_ok;  // this thread's A row: output pixel m0 + row_a
  int ih0 = 0, iw0 = 0;
  const T* x_img;
  const T* w_group;

  __device__ ForwardPass(const ConvArgs<T>& args, Shared&)
      : a(args), g(args.g), group(blockIdx.z), m0(blockIdx.x * Tile<BN>::kM), n0(blockIdx.y * BN), k_begin(0),
        k_end(args.Kdim), columns(g.Kg), column_stride(g.PQ), bias(args.bias ? args.bias + group * g.Kg : nullptr) {
    const int m = m0 + Next::row_a(0);
    m_ok = m < a.M;
    x_img = a.x;
    if (m_ok) {
      const int n_img = a.div_image.div(m), pq = m - n_img * g.PQ;
      const int p = a.div_row.div(pq), q = pq - p * g.Q;
      ih0 = p * g.sh - g.ph;
      iw0 = q * g.sw - g.pw;
      x_img = a.x + (static_cast<int64_t>(n_img) * g.C + static_cast<int64_t>(group) * g.Cg) * g.HW;
    }
    w_group = a.w + static_cast<int64_t>(group) * g.Kg * a.Kdim;
  }

  // B: consecutive threads read consecutive taps of a filter.
  __device__ void gather(int k0, Next& next) const {
    gather_taps(a, k0, m_ok, next, [&](const Tap& tap) {
      const int ih = ih0 + tap.r * g.dh, iw = iw0 + tap.s * g.dw;
      return conv::inside(ih, g.H) && conv::inside(iw, g.W) ? x_img[tap.outer * g.HW + ih * g.W + iw] : T(0);
    });
#pragma unroll
    for (int r = 0; r < Next::kSlotsB; ++r) {
      const int n = n0 + Next::column_b(r), kk = k0 + Next::inner_b();
      next.b[r] = (n < g.Kg && kk < a.Kdim) ? w_group[static_cast<int64_t>(n) * a.Kdim + kk] : T(0);
    }
  }

  __device__ T* row_start(int m) const {
    const int n_img = a.div_image.div(m), pq = m - n_img * g.PQ;
    return a.out + (static_cast<int64_t>(n_img) * g.K + static_cast<int64_t>(group) * g.Kg) * g.PQ + pq;
  }
};

// backward_input: A(m, (k,r,s)) = gy at the output that input pixel m reaches through tap
// (r, s) of filter k (zero where the stride skips it), B((k,r,s), c) = w[k, c, r, s],
// C(m, c) = gx at pixel m of channel c.
template <class T, int BN>
struct BackwardInputPass {
  using Next = Slice<T, BN, Spread::AlongRows>;
  using Shared = NoSharedMemory;
  static constexpr const T* bias = nullptr;
  const ConvArgs<T>& a;
  const Geometry& g;
  const int group, m0, n0, k_begin, k_end, columns, column_stride;
  bool m_ok;  // this thread's A row: input pixel m0 + row_a, at padded coordinates (hp, wp)
  int hp = 0, wp = 0;
  const T* gy_img;
  const T* w_group;

  __device__ BackwardInputPass(const ConvArgs<T>& args, Shared&)
      : a(args), g(args.g), group(blockIdx.z), m0(blockIdx.x * Tile<BN>::kM), n0(blockIdx.y * BN), k_begin(0),
        k_end(args.Kdim), columns(g.Cg), column_stride(g.HW) {
    const int m = m0 + Next::row_a(0);
    m_ok = m < a.M;
    gy_img = a.gy;
    if (m_ok) {
      const int n_img = a.div_image.div(m), hw = m - n_img * g.HW;
      const int h = a.div_row.div(hw);
      hp = h + g.ph;
      wp = hw - h * g.W + g.pw;
      gy_img = a.gy + (static_cast<int64_t>(n_img) * g.K + static_cast<int64_t>(group) * g.Kg) * g.PQ;
    }
    w_group = a.w + static_cast<int64_t>(group) * g.Kg * g.Cg * g.RS;
  }

  __device__ void gather(int k0, Next& next) const {
    gather_taps(a, k0, m_ok, next, [&](const Tap& tap) {
      // Output (p, q) reads this pixel through tap (r, s) when p*sh + r*dh = h + ph.
      const int th = hp - tap.r * g.dh, tw = wp - tap.s * g.dw;
      if (th < 0 || tw < 0) return T(0);
      const int p = a.div_sh.div(th), q = a.div_sw.div(tw);
      const bool hit = p * g.sh == th && q * g.sw == tw && p < g.P && q < g.Q;
      return hit ? gy_img[tap.outer * g.PQ + p * g.Q + q] : T(0);
    });
    const int kk = k0 + Next::inner_b();
    const int k = a.div_rs.div(kk), rs = kk - k * g.RS;
#pragma unroll
    for (int r = 0; r < Next::kSlotsB; ++r) {
      const int c = n0 + Next::column_b(r);
      next.b[r] = (c < g.Cg && kk < a.Kdim) ? w_group[(static_cast<int64_t>(k) * g.Cg + c) * g.RS + rs] : T(0);
    }
  }

  __device__ T* row_start(int m) const {
    const int n_img = a.div_image.div(m), hw = m - n_img * g.HW;
    return a.out + (static_cast<int64_t>(n_img) * g.C + static_cast<int64_t>(group) * g.Cg) * g.HW + hw;
  }
};

// Per tap row of a backward_weight tile: the channel's plane offset and the tap's
// row/column shift (offset -1: past the end of the taps).
template <int BM>
struct TapTable {
  int offset[BM], dh[BM], dw[BM];
};

// backward_weight: A((c,r,s), m) = x that tap (c, r, s) reads for output pixel m,
// B(m, k) = gy at pixel m of filter k, C((c,r,s), k) = gw[k, c, r, s] (or chunk
// blockIdx.z % splits's partial copy of it), over the chunk's range of pixels.
template <class T, int BN>
struct BackwardWeightPass {
  using Next = Slice<T, BN, Spread::AlongInner>;
  using Shared = TapTable<Tile<BN>::kM>;
  static constexpr const T* bias = nullptr;
  const ConvArgs<T>& a;
  const Geometry& g;
  const Shared& taps;
  const int group, split, m0, n0, k_begin, k_end, columns, column_stride;
  const T* x_group;
  const T* gy_group;
  T* out;

  __device__ BackwardWeightPass(const ConvArgs<T>& args, Shared& table)
      : a(args), g(args.g), taps(table), group(blockIdx.z / args.splits), split(blockIdx.z - group * args.splits),
        m0(blockIdx.x * Tile<BN>::kM), n0(blockIdx.y * BN), k_begin(split * args.chunk),
        k_end(min(args.Kdim, k_begin + args.chunk)), columns(g.Kg), column_stride(args.M) {
    for (int i = threadIdx.x; i < Tile<BN>::kM; i += kBlockThreads) {
      const int m = m0 + i;
      if (m < a.M) {
        const Tap tap = split_tap(m, g, a.div_rs, a.div_s);
        table.offset[i] = tap.outer * g.HW;
        table.dh[i] = tap.r * g.dh;
        table.dw[i] = tap.s * g.dw;
      } else {
        table.offset[i] = -1;
        table.dh[i] = table.dw[i] = 0;
      }
    }
    __syncthreads();
    x_group = a.x + static_cast<int64_t>(group) * g.Cg * g.HW;
    gy_group = a.gy + static_cast<int64_t>(group) * g.Kg * g.PQ;
    out = a.out + split * a.split_stride + static_cast<int64_t>(group) * g.Kg * a.M;
  }

  // Both operands: this thread loads one inner index (batch pixel), for the taps at
  // row_a(r) (A) and the filters at column_b(r) (B). Consecutive threads take
  // consecutive pixels: coalesced reads of x and gy.
  __device__ void gather(int k0, Next& next) const {
    const int kk = k0 + Next::inner_b();
    const bool k_ok = kk < k_end;
    int ih0 = 0, iw0 = 0;
    const T* x_img = x_group;
    const T* gy_pixel = gy_group;
    if (k_ok) {
      const int n_img = a.div_image.div(kk), pq = kk - n_img * g.PQ;
      const int p = a.div_row.div(pq), q = pq - p * g.Q;
      ih0 = p * g.sh - g.ph;
      iw0 = q * g.sw - g.pw;
      x_img = x_group + static_cast<int64_t>(n_img) * g.C * g.HW;
      gy_pixel = gy_group + static_cast<int64_t>(n_img) * g.K * g.PQ + pq;
    }
#pragma unroll
    for (int r = 0; r < Next::kSlotsA; ++r) {
      const int i = Next::row_a(r);
      T v = T(0);
      const int offset = taps.offset[i];
      if (k_ok && offset >= 0) {
        const int ih = ih0 + taps.dh[i], iw = iw0 + taps.dw[i];
        if (conv::inside(ih, g.H) && conv::inside(iw, g.W)) v = x_img[offset + ih * g.W + iw];
      }
      next.a[r] = v;
    }
#pragma unroll
    for (int r = 0; r < Next::kSlotsB; ++r) {
      const int k = n0 + Next::column_b(r);
      next.b[r] = (k_ok && k < g.Kg) ? gy_pixel[static_cast<int64_t>(k) * g.PQ] : T(0);
    }
  }

  __device__ T* row_start(int m) const { return out + m; }
};

// ---- the kernels ----------------------------------------------------------------------------

// One block of any pass: the thread's 4 x 4 outputs of the block's tile of
// A(:, [k_begin, k_end)) * B([k_begin, k_end), :), the next slice gathered into registers
// while the current one is multiplied from shared memory, then written to C.
template <template <class, int> class Pass, class T, int BN>
__global__ void __launch_bounds__(kBlockThreads) implicit_gemm_kernel(ConvArgs<T> args) {
  using Shape = Tile<BN>;
  __shared__ SharedTiles<T, Shape::kM, BN> s;
  __shared__ typename Pass<T, BN>::Shared pass_shared;
  const Pass<T, BN> pass(args, pass_shared);

  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
  const int tm = Shape::tm(), tn = Shape::tn();
  typename Pass<T, BN>::Next next;
  pass.gather(pass.k_begin, next);
  next.store(s);
  __syncthreads();
  for (int k0 = pass.k_begin; k0 < pass.k_end; k0 += kTileK) {
    const bool more = k0 + kTileK < pass.k_end;  // the same for every thread of the block
    if (more) pass.gather(k0 + kTileK, next);
    multiply_tiles<T, BN>(s, tm, tn, acc);
    __syncthreads();
    if (more) {
      next.store(s);
      __syncthreads();
    }
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int m = pass.m0 + tm + i * Shape::kThreadsM;
    if (m >= args.M) continue;
    T* row = pass.row_start(m);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = pass.n0 + tn + j * Shape::kThreadsN;
      if (n >= pass.columns) continue;
      row[static_cast<int64_t>(n) * pass.column_stride] = pass.bias ? acc[i][j] + pass.bias[n] : acc[i][j];
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

// Runs a pass over its args.M x columns product in z groups (times splits) on the
// device's stream, in tiles of the width tile_width picks. The grid is checked against
// the launch limits.
template <template <class, int> class Pass, class T>
void launch_pass(const char* op, int device, const ConvArgs<T>& args, int64_t columns, int64_t z) {
  const int64_t rows = args.M;
  const int bn = tile_width(rows, columns);
  const int64_t gx = ceil_div(rows, kBlockThreads * 16 / bn), gy = ceil_div(columns, bn);
  check(gy <= 65535 && z <= 65535, op, "product of ", rows, " x ", columns, " in ", z,
        " groups/splits exceeds the grid limits of the implicit GEMM (use cuDNN)");
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(z));
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (bn == 64)
    implicit_gemm_kernel<Pass, T, 64><<<grid, kBlockThreads, 0, st>>>(args);
  else if (bn == 32)
    implicit_gemm_kernel<Pass, T, 32><<<grid, kBlockThreads, 0, st>>>(args);
  else
    implicit_gemm_kernel<Pass, T, 16><<<grid, kBlockThreads, 0, st>>>(args);
  check_launch(op);
}

// backward_weight's split of the N*P*Q inner dimension of its rows x columns product
// (tiled as launch_pass tiles it): enough blocks to fill any current GPU (kTargetBlocks),
// chunks of at least kMinChunk pixels, a whole number of 16-steps each. Depends only on
// the sizes.
constexpr int64_t kTargetBlocks = 1024;
constexpr int64_t kMinChunk = 256;

struct Split {
  int splits, chunk;
};

Split split_for(int64_t rows, int64_t columns, int64_t groups, int64_t kdim) {
  const int bn = tile_width(rows, columns);
  const int64_t tiles = ceil_div(rows, kBlockThreads * 16 / bn) * ceil_div(columns, bn) * groups;
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
  const Geometry g = conv::checked_geometry(geometry, device, op);
  if (g.N == 0) return;
  launch_pass<ForwardPass>(op, device, pass_args<T>(g, g.PQ, g.Q, g.N * g.PQ, g.Cg * g.RS, x, w, nullptr, bias, y),
                           g.Kg, g.groups);
}

template <class T>
void conv2d_backward_input_implicit_gemm(const Conv2dGeometry& geometry, const T* gy, const T* w, T* gx, int device) {
  const char* op = "conv2d_backward_input_implicit_gemm";
  const Geometry g = conv::checked_geometry(geometry, device, op);
  if (g.N == 0) return;
  launch_pass<BackwardInputPass>(
      op, device, pass_args<T>(g, g.HW, g.W, g.N * g.HW, g.Kg * g.RS, nullptr, w, gy, nullptr, gx), g.Cg, g.groups);
}

template <class T>
void conv2d_backward_weight_implicit_gemm(const Conv2dGeometry& geometry, const T* gy, const T* x, T* gw,
                                          int device) {
  const char* op = "conv2d_backward_weight_implicit_gemm";
  const Geometry g = conv::checked_geometry(geometry, device, op);
  const int64_t count = static_cast<int64_t>(g.K) * g.Cg * g.RS;
  if (g.N == 0) {
    memset_zero(gw, static_cast<size_t>(count) * sizeof(T), device);
    return;
  }
  const int M = g.Cg * g.RS, kdim = g.N * g.PQ;
  check(g.groups <= 65535, op, g.groups, " groups exceed the grid limit of the implicit GEMM (use cuDNN)");
  const Split split = split_for(M, g.Kg, g.groups, kdim);

  // With one chunk the kernel writes gw itself; otherwise chunks go to a workspace first.
  const size_t partial_bytes =
      split.splits > 1 ? static_cast<size_t>(split.splits) * static_cast<size_t>(count) * sizeof(T) : 0;
  const DeviceScratch partial(partial_bytes, device);
  T* partial_ptr = partial.as<T>();
  ConvArgs<T> args = pass_args<T>(g, g.PQ, g.Q, M, kdim, x, nullptr, gy, nullptr, partial_ptr ? partial_ptr : gw);
  args.splits = split.splits;
  args.chunk = split.chunk;
  args.split_stride = count;
  launch_pass<BackwardWeightPass>(op, device, args, g.Kg, static_cast<int64_t>(g.groups) * split.splits);
  if (partial_ptr) {
    cudaStream_t st = stream(device);
    DeviceGuard guard(device);
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
