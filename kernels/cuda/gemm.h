// Single-precision matrix multiply on a CUDA device, row-major, with the argument
// convention of the CPU gemm:
//
//   C = alpha * op(A) * op(B) + beta * C,   op(A) is M x K, op(B) is K x N, C is M x N
//
// A is stored M x K (row stride lda >= K), or K x M (lda >= M) when trans_a;
// B is stored K x N (ldb >= N), or N x K (ldb >= K) when trans_b; C has ldc >= N.
// All pointers are device pointers on `device`. When beta == 0, C is only written
// (it may hold NaN). The work is queued on the device's stream (kernels/cuda/stream.h):
// the call returns before the result is ready; copy_device_to_host and synchronize
// wait for it.
//
// Two implementations, held against each other and against a CPU reference by
// tests/gpu/test_cuda_gemm.cpp:
//   gemm_cublas — cuBLAS (kernels/cuda/gemm_cublas.cu), the fast path;
//   gemm_tiled  — handwritten shared-memory + register tiling (kernels/cuda/gemm_tiled.cu).
// Both throw dmix::Error for negative sizes, too-small leading dimensions, null
// pointers, a device that does not exist, or a failure inside CUDA.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/error.h"

namespace dmix::kernels::cuda {

void gemm_cublas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int device);

void gemm_tiled(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int device);

// TF32 tensor cores (Ampere and later) round the inputs of gemm_cublas to a 10-bit
// mantissa: several times faster, relative error ~1e-3 instead of ~K * 1e-7. Off by
// default; affects gemm_cublas only (gemm_tiled is always full fp32). Process-wide.
void set_allow_tf32(bool allow);
bool allow_tf32();

namespace detail {

inline void check_gemm_args(const char* op, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                            const float* A, int64_t lda, const float* B, int64_t ldb, const float* C, int64_t ldc) {
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

}  // namespace detail
}  // namespace dmix::kernels::cuda
