// gemm_tiled: C = alpha * op(A) op(B) + beta * C in fp32, row-major, handwritten.
//
// Algorithm: two levels of tiling.
//  - Block tile. A block of 256 threads owns a 128 x 128 tile of C. It walks K in
//    steps of 8: all threads copy the 128 x 8 slice of op(A) and the 8 x 128 slice of
//    op(B) into shared memory, then every thread reads them from there. Each element
//    loaded from global memory is used 128 times, instead of once per output.
//  - Register tile. Each thread owns 8 x 8 outputs held in registers. Per step of k it
//    reads 8 values of A and 8 of B from shared memory and does 64 fused
//    multiply-adds: 4 flops per shared-memory read instead of 1/2 for one output per
//    thread, which is what keeps the arithmetic units busy.
// A thread's 8 columns are two groups of 4, half a tile apart (tx*4 and 64 + tx*4):
// neighbouring threads then read neighbouring float4s of the B tile (no shared-memory
// bank conflicts) and write neighbouring addresses of C (coalesced stores). Rows are
// split the same way. Transposes only change which index runs along memory while the
// tiles are loaded; the loaders pick the order that lets consecutive threads read
// consecutive addresses. Elements outside M, N or K load as zero and are not stored,
// so every size works. Accumulation is fp32, in k order within a thread.
//
// Cost: 2 M N K flops. Global traffic: every block reads (128 + 128) K floats for
// 128 x 128 outputs, i.e. 4 M N K (1/128 + 1/128) bytes in all (mostly served by L2),
// plus 4 M N bytes (8 M N if beta != 0) for C. Shared memory: 8.3 KiB per block.
#include "kernels/cuda/check.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

constexpr int kTileM = 128, kTileN = 128, kTileK = 8;
constexpr int kThreadM = 8, kThreadN = 8;
constexpr int kThreadsN = kTileN / kThreadN;  // 16
constexpr int kThreadsM = kTileM / kThreadM;  // 16
constexpr int kThreads = kThreadsM * kThreadsN;
// Pads each shared row to 132 floats: rows stay 16-byte aligned for float4 reads, and
// the k-fastest tile loads (no transpose) hit 32 different banks.
constexpr int kPad = 4;
constexpr int kLoadsA = kTileM * kTileK / kThreads;
constexpr int kLoadsB = kTileK * kTileN / kThreads;
static_assert(kTileM * kTileK % kThreads == 0 && kTileK * kTileN % kThreads == 0, "tile loads must divide evenly");
static_assert(kThreadM == 8 && kThreadN == 8, "the two-groups-of-4 layout assumes 8 x 8 per thread");

// Row (or column) of the tile that a thread's i-th output lies in: two groups of 4,
// half a tile apart.
__device__ __forceinline__ int tile_index(int thread, int i, int tile) { return (i / 4) * (tile / 2) + thread * 4 + i % 4; }

template <bool TransA, bool TransB>
__global__ void __launch_bounds__(kThreads)
    gemm_tiled_kernel(int64_t M, int64_t N, int64_t K, float alpha, const float* __restrict__ A, int64_t lda,
                      const float* __restrict__ B, int64_t ldb, float beta, float* __restrict__ C, int64_t ldc) {
  __shared__ __align__(16) float a_tile[kTileK][kTileM + kPad];  // a_tile[k][m] = op(A)(row0 + m, k0 + k)
  __shared__ __align__(16) float b_tile[kTileK][kTileN + kPad];  // b_tile[k][n] = op(B)(k0 + k, col0 + n)

  const int tid = threadIdx.x;
  const int tx = tid % kThreadsN, ty = tid / kThreadsN;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kTileM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kTileN;

  float acc[kThreadM][kThreadN];
#pragma unroll
  for (int i = 0; i < kThreadM; ++i)
#pragma unroll
    for (int j = 0; j < kThreadN; ++j) acc[i][j] = 0.0f;

  for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
#pragma unroll
    for (int r = 0; r < kLoadsA; ++r) {
      const int l = tid + r * kThreads;
      // Stored K x M (trans_a): m runs along memory; stored M x K: k does.
      const int m = TransA ? l % kTileM : l / kTileK;
      const int k = TransA ? l / kTileM : l % kTileK;
      const int64_t gm = row0 + m, gk = k0 + k;
      float v = 0.0f;
      if (gm < M && gk < K) v = TransA ? A[gk * lda + gm] : A[gm * lda + gk];
      a_tile[k][m] = v;
    }
#pragma unroll
    for (int r = 0; r < kLoadsB; ++r) {
      const int l = tid + r * kThreads;
      // Stored N x K (trans_b): k runs along memory; stored K x N: n does.
      const int n = TransB ? l / kTileK : l % kTileN;
      const int k = TransB ? l % kTileK : l / kTileN;
      const int64_t gn = col0 + n, gk = k0 + k;
      float v = 0.0f;
      if (gn < N && gk < K) v = TransB ? B[gn * ldb + gk] : B[gk * ldb + gn];
      b_tile[k][n] = v;
    }
    __syncthreads();

#pragma unroll
    for (int k = 0; k < kTileK; ++k) {
      float a[kThreadM], b[kThreadN];
      const float4 a_lo = *reinterpret_cast<const float4*>(&a_tile[k][tile_index(ty, 0, kTileM)]);
      const float4 a_hi = *reinterpret_cast<const float4*>(&a_tile[k][tile_index(ty, 4, kTileM)]);
      const float4 b_lo = *reinterpret_cast<const float4*>(&b_tile[k][tile_index(tx, 0, kTileN)]);
      const float4 b_hi = *reinterpret_cast<const float4*>(&b_tile[k][tile_index(tx, 4, kTileN)]);
      a[0] = a_lo.x, a[1] = a_lo.y, a[2] = a_lo.z, a[3] = a_lo.w;
      a[4] = a_hi.x, a[5] = a_hi.y, a[6] = a_hi.z, a[7] = a_hi.w;
      b[0] = b_lo.x, b[1] = b_lo.y, b[2] = b_lo.z, b[3] = b_lo.w;
      b[4] = b_hi.x, b[5] = b_hi.y, b[6] = b_hi.z, b[7] = b_hi.w;
#pragma unroll
      for (int i = 0; i < kThreadM; ++i)
#pragma unroll
        for (int j = 0; j < kThreadN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();  // the next iteration overwrites the tiles
  }

#pragma unroll
  for (int i = 0; i < kThreadM; ++i) {
    const int64_t gm = row0 + tile_index(ty, i, kTileM);
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

}  // namespace

void gemm_tiled(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int device) {
  const char* op = "gemm_tiled";
  check_device(device, op);
  detail::check_gemm_args(op, trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (M == 0 || N == 0) return;
  const int64_t blocks_m = (M + kTileM - 1) / kTileM, blocks_n = (N + kTileN - 1) / kTileN;
  check(blocks_m <= 65535, op, "M=", M, " needs ", blocks_m, " row blocks; the grid allows 65535");
  check(blocks_n <= 2147483647, op, "N=", N, " needs too many column blocks");
  const dim3 grid(static_cast<unsigned>(blocks_n), static_cast<unsigned>(blocks_m));
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (!trans_a && !trans_b)
    gemm_tiled_kernel<false, false><<<grid, kThreads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (!trans_a && trans_b)
    gemm_tiled_kernel<false, true><<<grid, kThreads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (trans_a && !trans_b)
    gemm_tiled_kernel<true, false><<<grid, kThreads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_tiled_kernel<true, true><<<grid, kThreads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  check_launch(op);
}

}  // namespace dmix::kernels::cuda
