// Double-precision matrix multiply on a CUDA device, with the argument convention of
// kernels/cuda/gemm.h (row-major, C = alpha * op(A) op(B) + beta * C, device pointers,
// queued on the device's stream; beta == 0 never reads C). It lets the engine's f64
// paths -- gradient checks, reference computations -- run on a GPU too; training uses
// the f32 kernels of gemm.h. One implementation, handwritten (kernels/cuda/gemm_f64.cu).
#pragma once
#include <cstdint>

namespace dmix::kernels::cuda {

void gemm_tiled(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc, int device);

}  // namespace dmix::kernels::cuda
