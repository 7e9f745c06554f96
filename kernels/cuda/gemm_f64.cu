// gemm_tiled (f64): C = alpha * op(A) op(B) + beta * C in double precision, row-major,
// handwritten. For the engine's f64 paths on a GPU (gradient checks, references).
//
// Algorithm: the block/register tiling of the f32 gemm_tiled (gemm_tiled.cu), sized
// for 8-byte elements. A block of 256 threads owns a 64 x 64 tile of C and walks K in
// steps of 16: the threads copy the 64 x 16 slice of op(A) and the 16 x 64 slice of
// op(B) into shared memory, then each thread accumulates a 4 x 4 patch of outputs in
// registers from it. A thread's rows are ty, ty+16, ty+32, ty+48 and its columns
// tx, tx+16, ...: the 16 threads of a half warp read 16 consecutive doubles of the B
// tile and write 16 consecutive doubles of C. The loaders choose the element order
// that makes consecutive threads read consecutive addresses for each transpose case;
// rows of the shared tiles are padded by one element so the transposing stores spread
// over the banks. Elements outside M, N or K load as zero and are not stored, so every
// size works. Accumulation is one fma per product, in k order within a thread.
//
// Cost: 2 M N K flops (at the GPU's f64 rate). Global traffic: every block reads
// (64 + 64) K doubles for 64 x 64 outputs, 8 M N K (1/64 + 1/64) bytes in all, plus
// 8 M N bytes for C (16 M N if beta != 0). Shared memory: 16.3 KiB per block.
#include "kernels/cuda/gemm_f64.h"

#include <algorithm>

#include "kernels/cuda/check.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16;
constexpr int kThreadsM = 16, kThreadsN = 16;
constexpr int kThreadM = kTileM / kThreadsM, kThreadN = kTileN / kThreadsN;  // 4 x 4 outputs per thread
constexpr int kThreads = kThreadsM * kThreadsN;
constexpr int kLoadsA = kTileM * kTileK / kThreads;
constexpr int kLoadsB = kTileK * kTileN / kThreads;
static_assert(kTileM * kTileK % kThreads == 0 && kTileK * kTileN % kThreads == 0, "tile loads must divide evenly");

template <bool TransA, bool TransB>
__global__ void __launch_bounds__(kThreads)
    gemm_f64_kernel(int64_t M, int64_t N, int64_t K, double alpha, const double* __restrict__ A, int64_t lda,
                    const double* __restrict__ B, int64_t ldb, double beta, double* __restrict__ C, int64_t ldc) {
  __shared__ double a_tile[kTileK][kTileM + 1];  // a_tile[k][m] = op(A)(row0 + m, k0 + k)
  __shared__ double b_tile[kTileK][kTileN + 1];  // b_tile[k][n] = op(B)(k0 + k, col0 + n)

  const int tid = threadIdx.x;
  const int tx = tid % kThreadsN, ty = tid / kThreadsN;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kTileM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kTileN;

  double acc[kThreadM][kThreadN];
#pragma unroll
  for (int i = 0; i < kThreadM; ++i)
#pragma unroll
    for (int j = 0; j < kThreadN; ++j) acc[i][j] = 0.0;

  for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
#pragma unroll
    for (int r = 0; r < kLoadsA; ++r) {
      const int l = tid + r * kThreads;
      // Stored K x M (trans_a): m runs along memory; stored M x K: k does.
      const int m = TransA ? l % kTileM : l / kTileK;
      const int k = TransA ? l / kTileM : l % kTileK;
      const int64_t gm = row0 + m, gk = k0 + k;
      double v = 0.0;
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
      double v = 0.0;
      if (gn < N && gk < K) v = TransB ? B[gn * ldb + gk] : B[gk * ldb + gn];
      b_tile[k][n] = v;
    }
    __syncthreads();

#pragma unroll
    for (int k = 0; k < kTileK; ++k) {
      double a[kThreadM], b[kThreadN];
#pragma unroll
      for (int i = 0; i < kThreadM; ++i) a[i] = a_tile[k][ty + i * kThreadsM];
#pragma unroll
      for (int j = 0; j < kThreadN; ++j) b[j] = b_tile[k][tx + j * kThreadsN];
#pragma unroll
      for (int i = 0; i < kThreadM; ++i)
#pragma unroll
        for (int j = 0; j < kThreadN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
    }
    __syncthreads();  // the next step overwrites the tiles
  }

#pragma unroll
  for (int i = 0; i < kThreadM; ++i) {
    const int64_t gm = row0 + ty + i * kThreadsM;
    if (gm >= M) continue;
#pragma unroll
    for (int j = 0; j < kThreadN; ++j) {
      const int64_t gn = col0 + tx + j * kThreadsN;
      if (gn >= N) continue;
      double* c = C + gm * ldc + gn;
      // beta == 0 must not read C: it may be uninitialised (NaN * 0 is NaN).
      *c = beta == 0.0 ? alpha * acc[i][j] : fma(beta, *c, alpha * acc[i][j]);
    }
  }
}

void check_args(const char* op, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const double* A,
                int64_t lda, const double* B, int64_t ldb, const double* C, int64_t ldc) {
  check(M >= 0 && N >= 0 && K >= 0, op, "negative size M=", M, " N=", N, " K=", K);
  const int64_t a_cols = trans_a ? M : K, b_cols = trans_b ? K : N;
  check(lda >= std::max<int64_t>(1, a_cols), op, "lda=", lda, " is smaller than the ", a_cols, " columns of ",
        trans_a ? "A (stored K x M, trans_a)" : "A (stored M x K)");
  check(ldb >= std::max<int64_t>(1, b_cols), op, "ldb=", ldb, " is smaller than the ", b_cols, " columns of ",
        trans_b ? "B (stored N x K, trans_b)" : "B (stored K x N)");
  check(ldc >= std::max<int64_t>(1, N), op, "ldc=", ldc, " is smaller than the ", N, " columns of C");
  if (M > 0 && N > 0) {
    check(C != nullptr, op, "C is null for an output of ", M, " x ", N);
    if (K > 0) check(A != nullptr && B != nullptr, op, "A or B is null for M=", M, " N=", N, " K=", K);
  }
}

}  // namespace

void gemm_tiled(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc, int device) {
  const char* op = "gemm_tiled (f64)";
  check_device(device, op);
  check_args(op, trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (M == 0 || N == 0) return;
  const int64_t blocks_m = (M + kTileM - 1) / kTileM, blocks_n = (N + kTileN - 1) / kTileN;
  check(blocks_m <= 65535, op, "M=", M, " needs ", blocks_m, " row blocks; the grid allows 65535");
  check(blocks_n <= 2147483647, op, "N=", N, " needs too many column blocks");
  const dim3 grid(static_cast<unsigned>(blocks_n), static_cast<unsigned>(blocks_m));
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (!trans_a && !trans_b)
    gemm_f64_kernel<false, false><<<grid, kThreads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (!trans_a && trans_b)
    gemm_f64_kernel<false, true><<<grid, kThreads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (trans_a && !trans_b)
    gemm_f64_kernel<true, false><<<grid, kThreads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_f64_kernel<true, true><<<grid, kThreads, 0, st>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  check_launch(op);
}

}  // namespace dmix::kernels::cuda
