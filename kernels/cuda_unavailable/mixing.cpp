// kernels/cuda/mixing.h for a build without the CUDA backend: the functions exist and
// throw the one "built without CUDA" error.
#include "kernels/cuda/mixing.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

void mix_blend(const float*, int64_t, int64_t, int64_t, const int64_t*, const float*, float*, int) {
  unavailable("cuda::mix_blend");
}

void mix_paste(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, const int64_t*, const int64_t*, float*,
               int) {
  unavailable("cuda::mix_paste");
}

}  // namespace dmix::kernels::cuda
