// kernels/cuda/softmax.h in a build without the CUDA backend: every entry point throws.
#include "kernels/cuda/softmax.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

void softmax(const float*, int64_t, int64_t, int64_t, float*, int) { unavailable("cuda::softmax"); }
void softmax(const double*, int64_t, int64_t, int64_t, double*, int) { unavailable("cuda::softmax"); }
void log_softmax(const float*, int64_t, int64_t, int64_t, float*, int) { unavailable("cuda::log_softmax"); }
void log_softmax(const double*, int64_t, int64_t, int64_t, double*, int) { unavailable("cuda::log_softmax"); }

}  // namespace dmix::kernels::cuda
