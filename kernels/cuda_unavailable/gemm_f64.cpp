// kernels/cuda/gemm_f64.h in a build without the CUDA backend: throws.
#include "kernels/cuda/gemm_f64.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

void gemm_tiled(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*, int64_t, double,
                double*, int64_t, int) {
  unavailable("gemm_tiled (f64)");
}

}  // namespace dmix::kernels::cuda
