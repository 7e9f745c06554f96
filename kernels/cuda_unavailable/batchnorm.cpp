// kernels/cuda/batchnorm.h in a build without the CUDA backend: every entry point throws.
#include "kernels/cuda/batchnorm.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

void batch_norm_forward_train(const float*, int64_t, int64_t, int64_t, const float*, const float*, double, float*,
                              float*, float*, float*, int) {
  unavailable("cuda::batch_norm_forward_train");
}
void batch_norm_forward_train(const double*, int64_t, int64_t, int64_t, const double*, const double*, double, double*,
                              double*, double*, double*, int) {
  unavailable("cuda::batch_norm_forward_train");
}
void batch_norm_apply(const float*, int64_t, int64_t, int64_t, const float*, const float*, const float*, const float*,
                      float*, int) {
  unavailable("cuda::batch_norm_apply");
}
void batch_norm_apply(const double*, int64_t, int64_t, int64_t, const double*, const double*, const double*,
                      const double*, double*, int) {
  unavailable("cuda::batch_norm_apply");
}
void batch_norm_backward_train(const float*, const float*, int64_t, int64_t, int64_t, const float*, const float*,
                               const float*, float*, float*, float*, int) {
  unavailable("cuda::batch_norm_backward_train");
}
void batch_norm_backward_train(const double*, const double*, int64_t, int64_t, int64_t, const double*, const double*,
                               const double*, double*, double*, double*, int) {
  unavailable("cuda::batch_norm_backward_train");
}
void batch_norm_invstd(const float*, int64_t, double, float*, int) { unavailable("cuda::batch_norm_invstd"); }
void batch_norm_invstd(const double*, int64_t, double, double*, int) { unavailable("cuda::batch_norm_invstd"); }
void batch_norm_update_running(float*, float*, const float*, const float*, int64_t, double, int64_t, int) {
  unavailable("cuda::batch_norm_update_running");
}
void batch_norm_update_running(double*, double*, const double*, const double*, int64_t, double, int64_t, int) {
  unavailable("cuda::batch_norm_update_running");
}

}  // namespace dmix::kernels::cuda
