// gemm_tiled: C = alpha * op(A) op(B) + beta * C in fp32, row-major, handwritten.
//
// Algorithm: two levels of tiling, with the next tile's loads overlapping this tile's math.
//  - Block tile. A block owns a TM x 128 tile of C (TM = 128, 256 threads; or TM = 64,
//    128 threads, when 128-row tiles would leave streaming multiprocessors idle, as a
//    1024 x 1024 product's 64 tiles would on a 132-SM H100). It walks K in steps of 8:
//    the TM x 8 slice of op(A) and the 8 x 128 slice of op(B) go to shared memory, where
//    every thread reads them. Each element loaded from global memory is used TM or 128
//    times, instead of once per output.
//  - Register tile. Each thread owns 8 x 8 outputs held in registers. Per step of k it
//    reads 8 values of A and 8 of B from shared memory and does 64 fused
//    multiply-adds: 4 flops per shared-memory read instead of 1/2 for one output per
//    thread, which is what keeps the arithmetic units busy.
//  - Double buffering. Shared memory holds two copies of the tiles. While the threads
//    multiply out one, the loads of the next K slice are already in flight into
//    registers, and land in the other copy afterwards: the global-memory latency hides
//    behind the math, and one barrier per K step suffices.
// A thread's 8 columns are two groups of 4, half a tile apart (tx*4 and 64 + tx*4):
// neighbouring threads then read neighbouring float4s of the B tile (no shared-memory
// bank conflicts) and write neighbouring addresses of C (coalesced stores). Rows are
// split the same way. Transposes only change which index runs along memory while the
// tiles are loaded; the loaders pick the order that lets consecutive threads read
// consecutive addresses. Elements outside M, N or K load as zero and are not stored,
// so every size works. Accumulation is fp32, in k order within a thread.
//
// Cost: 2 M N K flops. Global traffic: every block reads (TM + 128) K floats for
// TM x 128 outputs, i.e. 4 M N K (1/128 + 1/TM) bytes in all (mostly served by L2),
// plus 4 M N bytes (8 M N if beta != 0) for C. Shared memory: 16.5 KiB per block at TM = 128.
#include <mutex>
#include <vector>

#include <cuda_runtime.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

constexpr int kTileN = 128, kTileK = 8;
constexpr int kThreadM = 8, kThreadN = 8;
constexpr int kThreadsN = kTileN / kThreadN;  // 16
// Pads each shared row by 4 floats: rows stay 16-byte aligned for float4 reads, and
// the k-fastest tile loads (no transpose) hit 32 different banks.
constexpr int kPad = 4;
static_assert(kThreadM == 8 && kThreadN == 8, "the two-groups-of-4 layout assumes 8 x 8 per thread");

template <int TileM>
struct TileShape {
  static constexpr int kThreadsM = TileM / kThreadM;
  static constexpr int kThreads = kThreadsM * kThreadsN;
  static constexpr int kLoadsA = TileM * kTileK / kThreads;
  static constexpr int kLoadsB = kTileK * kTileN / kThreads;
  static_assert(TileM * kTileK % kThreads == 0 && kTileK * kTileN % kThreads == 0, "tile loads must divide evenly");
};

// Row (or column) of the tile that a thread's i-th output lies in: two groups of 4,
// half a tile apart.
__device__ __forceinline__ int tile_index(int thread, int i, int tile) { return (i / 4) * (tile / 2) + thread * 4 + i % 4; }

// Which tile element the l-th load of a K slice fills (l = thread + r * threads for the
// thread's r-th value): the TM x 8 slice of op(A) and the 8 x 128 slice of op(B).
template <int TileM, bool TransA>
__device__ __forceinline__ void a_slot(int l, int& m, int& k) {
  // Stored K x M (trans_a): m runs along memory; stored M x K: k does.
  m = TransA ? l % TileM : l / kTileK;
  k = TransA ? l / TileM : l % kTileK;
}
template <bool TransB>
__device__ __forceinline__ void b_slot(int l, int& n, int& k) {
  // Stored N x K (trans_b): k runs along memory; stored K x N: n does.
  n = TransB ? l / kTileK : l % kTileN;
  k = TransB ? l % kTileK : l / kTileN;
}

// Where a thread's loads come from: one pointer per value it copies into the tiles,
// moved down K by a fixed step after each slice, and whether its row (column) lies
// inside the matrix. Only the K bound changes from slice to slice.
template <int Count>
struct SliceLoader {
  const float* ptr[Count];
  bool inside[Count];
  int k[Count];
  int64_t step;

  // Element (row, k) of a matrix stored row-major with leading dimension ld, where
  // `transposed` means it is stored as (k, row).
  __device__ __forceinline__ void set(int r, const float* base, int64_t ld, bool transposed, int64_t row,
                                      int64_t rows, int k_in_tile) {
    inside[r] = row < rows;
    k[r] = k_in_tile;
    ptr[r] = base + (inside[r] ? (transposed ? k_in_tile * ld + row : row * ld + k_in_tile) : 0);
  }
  __device__ __forceinline__ void load(int64_t k0, int64_t K, float (&v)[Count]) {
#pragma unroll
    for (int r = 0; r < Count; ++r) {
      v[r] = inside[r] && k0 + k[r] < K ? *ptr[r] : 0.0f;
      ptr[r] += step;
    }
  }
};

template <int TileM, bool TransA, bool TransB>
__global__ void __launch_bounds__(TileShape<TileM>::kThreads)
    gemm_tiled_kernel(int64_t M, int64_t N, int64_t K, float alpha, const float* __restrict__ A, int64_t lda,
                      const float* __restrict__ B, int64_t ldb, float beta, float* __restrict__ C, int64_t ldc) {
  using S = TileShape<TileM>;
  // a_tile[buf][k][m] = op(A)(row0 + m, k0 + k); b_tile[buf][k][n] = op(B)(k0 + k, col0 + n)
  __shared__ __align__(16) float a_tile[2][kTileK][TileM + kPad];
  __shared__ __align__(16) float b_tile[2][kTileK][kTileN + kPad];

  const int tid = threadIdx.x;
  const int tx = tid % kThreadsN, ty = tid / kThreadsN;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * TileM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kTileN;

  float acc[kThreadM][kThreadN];
#pragma unroll
  for (int i = 0; i < kThreadM; ++i)
#pragma unroll
    for (int j = 0; j < kThreadN; ++j) acc[i][j] = 0.0f;

  SliceLoader<S::kLoadsA> a_loader;
  SliceLoader<S::kLoadsB> b_loader;
  a_loader.step = TransA ? kTileK * lda : kTileK;
  b_loader.step = TransB ? kTileK : kTileK * ldb;
#pragma unroll
  for (int r = 0; r < S::kLoadsA; ++r) {
    int m, k;
    a_slot<TileM, TransA>(tid + r * S::kThreads, m, k);
    a_loader.set(r, A, lda, TransA, row0 + m, M, k);
  }
#pragma unroll
  for (int r = 0; r < S::kLoadsB; ++r) {
    int n, k;
    b_slot<TransB>(tid + r * S::kThreads, n, k);
    b_loader.set(r, B, ldb, !TransB, col0 + n, N, k);
  }

  float a_next[S::kLoadsA], b_next[S::kLoadsB];
  auto store_slices = [&](int buf) {
#pragma unroll
    for (int r = 0; r < S::kLoadsA; ++r) {
      int m, k;
      a_slot<TileM, TransA>(tid + r * S::kThreads, m, k);
      a_tile[buf][k][m] = a_next[r];
    }
#pragma unroll
    for (int r = 0; r < S::kLoadsB; ++r) {
      int n, k;
      b_slot<TransB>(tid + r * S::kThreads, n, k);
      b_tile[buf][k][n] = b_next[r];
    }
  };

  a_loader.load(0, K, a_next);
  b_loader.load(0, K, b_next);
  store_slices(0);
  __syncthreads();

  int buf = 0;
  for (int64_t k0 = 0; k0 < K; k0 += kTileK, buf ^= 1) {
    const bool has_next = k0 + kTileK < K;
    // Issued now, used after the math below: the loads are in flight meanwhile.
    if (has_next) {
      a_loader.load(k0 + kTileK, K, a_next);
      b_loader.load(k0 + kTileK, K, b_next);
    }
#pragma unroll
    for (int k = 0; k < kTileK; ++k) {
      float a[kThreadM], b[kThreadN];
      const float4 a_lo = *reinterpret_cast<const float4*>(&a_tile[buf][k][tile_index(ty, 0, TileM)]);
      const float4 a_hi = *reinterpret_cast<const float4*>(&a_tile[buf][k][tile_index(ty, 4, TileM)]);
      const float4 b_lo = *reinterpret_cast<const float4*>(&b_tile[buf][k][tile_index(tx, 0, kTileN)]);
      const float4 b_hi = *reinterpret_cast<const float4*>(&b_tile[buf][k][tile_index(tx, 4, kTileN)]);
      a[0] = a_lo.x, a[1] = a_lo.y, a[2] = a_lo.z, a[3] = a_lo.w;
      a[4] = a_hi.x, a[5] = a_hi.y, a[6] = a_hi.z, a[7] = a_hi.w;
      b[0] = b_lo.x, b[1] = b_lo.y, b[2] = b_lo.z, b[3] = b_lo.w;
      b[4] = b_hi.x, b[5] = b_hi.y, b[6] = b_hi.z, b[7] = b_hi.w;
#pragma unroll
      for (int i = 0; i < kThreadM; ++i)
#pragma unroll
        for (int j = 0; j < kThreadN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    // The other copy was last read before the previous barrier, so it can be filled
    // now; the barrier below publishes it, and also ends every read of this copy,
    // which the next step's stores overwrite.
    if (has_next) store_slices(buf ^ 1);
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < kThreadM; ++i) {
    const int64_t gm = row0 + tile_index(ty, i, TileM);
    if (gm >= M) continue;
#pragma unroll
    for (int j = 0; j < kThreadN; ++j) {
      const int64_t gn = col0 + tile_index(tx, j, kTileN);
      if (gn >= N) continue;
      float* c = C + gm * ldc + gn;
      // beta == 0 must not read C: it may be uninitialised (NaN * 0 is NaN).
      *c = beta == 0.0f ? alpha * acc[i][j] : fmaf(beta, *c, alpha * acc[i][j]);
    }
  }
}

int multiprocessor_count(int device) {
  static std::mutex mutex;
  static std::vector<int> counts;
  std::lock_guard<std::mutex> lock(mutex);
  if (counts.size() <= static_cast<size_t>(device)) counts.resize(static_cast<size_t>(device) + 1, 0);
  if (counts[device] == 0)
    check_cuda(cudaDeviceGetAttribute(&counts[device], cudaDevAttrMultiProcessorCount, device),
               "cudaDeviceGetAttribute(cudaDevAttrMultiProcessorCount)");
  return counts[device];
}

template <int TileM>
void launch(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
            const float* B, int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t st, const char* op) {
  const int64_t blocks_m = (M + TileM - 1) / TileM, blocks_n = (N + kTileN - 1) / kTileN;
  check(blocks_m <= 65535, op, "M=", M, " needs ", blocks_m, " row blocks; the grid allows 65535");
  check(blocks_n <= 2147483647, op, "N=", N, " needs too many column blocks");
  const dim3 grid(static_cast<unsigned>(blocks_n), static_cast<unsigned>(blocks_m));
  constexpr int threads = TileShape<TileM>::kThreads;
  if (!trans_a && !trans_b)
    gemm_tiled_kernel<TileM, false, false><<<grid, threads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (!trans_a && trans_b)
    gemm_tiled_kernel<TileM, false, true><<<grid, threads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (trans_a && !trans_b)
    gemm_tiled_kernel<TileM, true, false><<<grid, threads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_tiled_kernel<TileM, true, true><<<grid, threads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace

void gemm_tiled(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int device) {
  const char* op = "gemm_tiled";
  check_device(device, op);
  detail::check_gemm_args(op, trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (M == 0 || N == 0) return;
  DeviceGuard guard(device);
  cudaStream_t st = stream(device);
  // 128-row tiles when they give every multiprocessor a block; 64-row ones otherwise.
  const int64_t big_tiles = ((M + 127) / 128) * ((N + kTileN - 1) / kTileN);
  if (big_tiles >= multiprocessor_count(device))
    launch<128>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, st, op);
  else
    launch<64>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, st, op);
  check_launch(op);
}

}  // namespace dmix::kernels::cuda
