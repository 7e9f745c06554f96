// kernels/cuda/reduce_sum.h for a build without the CUDA backend.
#include "kernels/cuda/reduce_sum.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

template <class T> void sum_dims(const T*, int, const int64_t*, const uint8_t*, T*, int) { unavailable("cuda::sum_dims"); }

template void sum_dims<float>(const float*, int, const int64_t*, const uint8_t*, float*, int);
template void sum_dims<double>(const double*, int, const int64_t*, const uint8_t*, double*, int);

}  // namespace dmix::kernels::cuda
