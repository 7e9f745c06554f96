// gemm() through OpenBLAS's cblas_sgemm / cblas_dgemm (row-major CBLAS interface).
// The vendor kernel is the fast default; gemm_blocked.cpp is the readable twin that
// tests hold it against. Cost: 2*M*N*K flops, threaded by OpenBLAS's own pool.
//
// Degenerate shapes (an empty C, K == 0, alpha == 0) are handled here, because CBLAS
// rejects zero leading dimensions that such callers may pass. Sizes beyond 32-bit
// BLAS integers go to the handwritten kernel, which uses 64-bit indices.
//
// Called from inside an OpenMP parallel region, the pthread build of OpenBLAS is
// thread-safe (it serialises access to its worker pool); products below about 64^3
// multiply-adds, typical of per-group callers, run on the calling thread alone.
#include <cblas.h>

#include <algorithm>
#include <climits>

#include "kernels/cpu/gemm.h"

namespace dmix::kernels::cpu {
namespace {

template <class T>
bool handle_degenerate(int64_t M, int64_t N, int64_t K, T alpha, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return true;
  if (K > 0 && alpha != T(0)) return false;
  for (int64_t i = 0; i < M; ++i) {
    T* row = C + i * ldc;
    if (beta == T(0)) {
      std::fill(row, row + N, T(0));
    } else if (beta != T(1)) {
      for (int64_t j = 0; j < N; ++j) row[j] *= beta;
    }
  }
  return true;
}

bool fits_blas_int(int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc) {
  const int64_t largest = std::max({M, N, K, lda, ldb, ldc});
  return largest <= int64_t(INT_MAX);
}

CBLAS_TRANSPOSE cblas_op(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

}  // namespace

void gemm_openblas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                   int64_t ldc) {
  if (handle_degenerate(M, N, K, alpha, beta, C, ldc)) return;
  if (!fits_blas_int(M, N, K, lda, ldb, ldc)) {
    gemm_handwritten(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, cblas_op(trans_a), cblas_op(trans_b), int(M), int(N), int(K), alpha, A,
              int(lda), B, int(ldb), beta, C, int(ldc));
}

void gemm_openblas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                   const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
                   int64_t ldc) {
  if (handle_degenerate(M, N, K, alpha, beta, C, ldc)) return;
  if (!fits_blas_int(M, N, K, lda, ldb, ldc)) {
    gemm_handwritten(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  cblas_dgemm(CblasRowMajor, cblas_op(trans_a), cblas_op(trans_b), int(M), int(N), int(K), alpha, A,
              int(lda), B, int(ldb), beta, C, int(ldc));
}

}  // namespace dmix::kernels::cpu
