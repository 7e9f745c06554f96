// gemm_cublas: C = alpha * op(A) op(B) + beta * C in fp32, row-major, on cuBLAS.
//
// Algorithm: cuBLAS is column-major. A row-major buffer read column-major is the
// transpose of the matrix, so the row-major C (M x N) is the column-major C^T (N x M),
// and C^T = op(B)^T op(A)^T. Handing cuBLAS B's buffer first (with trans_b) and A's
// second (with trans_a), with m = N and n = M, computes exactly that — no copy, no
// transpose kernel. The 64-bit entry point takes sizes above 2^31 as they are.
//
// Cost: 2 M N K flops at cuBLAS speed (close to the GPU's fp32 peak for large sizes,
// several times more with TF32 allowed); memory traffic about 4 (MK + KN + 2 MN)
// bytes. The handle is the device's (stream.h), so the product is queued on the
// device's stream behind the work that produced A and B.
#include <atomic>

#include "kernels/cuda/check.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {
std::atomic<bool> tf32_allowed{false};
}

void set_allow_tf32(bool allow) { tf32_allowed.store(allow); }
bool allow_tf32() { return tf32_allowed.load(); }

void gemm_cublas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int device) {
  const char* op = "gemm_cublas";
  check_device(device, op);
  detail::check_gemm_args(op, trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0) {
    // C = beta * C. Whether cuBLAS scales C when k = 0 is not documented; the tiled
    // kernel does it exactly (no products to form) and ignores C when beta == 0.
    gemm_tiled(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, device);
    return;
  }
  cublasHandle_t handle = cublas_handle(device);
  DeviceGuard guard(device);
  // The compute type is chosen per call rather than as the handle's math mode, so a
  // change of set_allow_tf32 takes effect at once and cannot race with another thread.
  const cublasComputeType_t compute = allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  check_cublas(cublasGemmEx_64(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                               N, M, K, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta, C, CUDA_R_32F, ldc,
                               compute, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx_64 (gemm_cublas)");
}

}  // namespace dmix::kernels::cuda
