// kernels/cuda/reduce_max.h in a build without the CUDA backend: every entry point throws.
#include "kernels/cuda/reduce_max.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

void max_along(const float*, int64_t, int64_t, int64_t, float*, int64_t*, int) { unavailable("cuda::max_along"); }
void max_along(const double*, int64_t, int64_t, int64_t, double*, int64_t*, int) { unavailable("cuda::max_along"); }
void one_hot_along(const int64_t*, int64_t, int64_t, int64_t, float*, int) { unavailable("cuda::one_hot_along"); }
void one_hot_along(const int64_t*, int64_t, int64_t, int64_t, double*, int) { unavailable("cuda::one_hot_along"); }

}  // namespace dmix::kernels::cuda
