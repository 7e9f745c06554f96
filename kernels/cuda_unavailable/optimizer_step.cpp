// kernels/cuda/optimizer_step.h in a build without the CUDA backend: every function throws.
#include "kernels/cuda/optimizer_step.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

void sgd_step(float*, const float*, float*, int64_t, float, float, float, bool, bool, int) {
  unavailable("cuda::sgd_step");
}
void adam_step(float*, const float*, float*, float*, int64_t, float, float, float, float, float, int64_t, int) {
  unavailable("cuda::adam_step");
}
double sum_of_squares(const float*, int64_t, int) { unavailable("cuda::sum_of_squares"); }

}  // namespace dmix::kernels::cuda
