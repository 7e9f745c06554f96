// General matrix multiply on the CPU, two interchangeable backends:
//   C = alpha * op(A) * op(B) + beta * C
// All matrices are row-major. op(X) is X or its transpose (trans_*). op(A) is MxK,
// op(B) is KxN, C is MxN; lda/ldb/ldc are the row strides of A, B, C as stored
// (so for trans_a, A is stored KxM and lda >= M).
//
// beta == 0 means C's old contents are ignored (NaN and Inf in C do not leak through),
// K == 0 or alpha == 0 reduce to C = beta * C.
//
// gemm() routes to the selected backend: OpenBLAS by default, or the handwritten
// cache-blocked kernel. The choice is process-wide: set_gemm_backend(), or the
// environment variable DMIX_GEMM=openblas|handwritten, read once at first use.
// Safe to call concurrently and from inside an OpenMP parallel region.
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

enum class GemmBackend { OpenBLAS, Handwritten };

void set_gemm_backend(GemmBackend b);
GemmBackend gemm_backend();
const char* gemm_backend_name(GemmBackend b);

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

void gemm_openblas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                   int64_t ldc);
void gemm_openblas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                   const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
                   int64_t ldc);

void gemm_handwritten(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                      int64_t ldc);
void gemm_handwritten(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                      const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                      double* C, int64_t ldc);

}  // namespace dmix::kernels::cpu
