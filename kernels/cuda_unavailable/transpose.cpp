// kernels/cuda/transpose.h in a build without the CUDA backend: every function throws.
#include "kernels/cuda/transpose.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

template <class T>
void transpose(const T*, int64_t, int64_t, T*, int) {
  unavailable("cuda::transpose");
}

template void transpose<float>(const float*, int64_t, int64_t, float*, int);
template void transpose<double>(const double*, int64_t, int64_t, double*, int);

}  // namespace dmix::kernels::cuda
