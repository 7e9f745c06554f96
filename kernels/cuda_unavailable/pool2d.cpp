// kernels/cuda/pool2d.h in a build without the CUDA backend: every entry point throws.
#include "kernels/cuda/pool2d.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

template <class T>
void max_pool2d_forward(const Pool2dGeometry&, const T*, T*, int64_t*, int) {
  unavailable("cuda::max_pool2d_forward");
}
template <class T>
void max_pool2d_backward(const Pool2dGeometry&, const T*, const int64_t*, T*, int) {
  unavailable("cuda::max_pool2d_backward");
}
template <class T>
void max_pool2d_gather(int64_t, int64_t, int64_t, const T*, const int64_t*, T*, int) {
  unavailable("cuda::max_pool2d_gather");
}
template <class T>
void avg_pool2d_forward(const Pool2dGeometry&, bool, const T*, T*, int) {
  unavailable("cuda::avg_pool2d_forward");
}
template <class T>
void avg_pool2d_backward(const Pool2dGeometry&, bool, const T*, T*, int) {
  unavailable("cuda::avg_pool2d_backward");
}
template <class T>
void adaptive_avg_pool2d_forward(int64_t, int64_t, int64_t, int64_t, int64_t, const T*, T*, int) {
  unavailable("cuda::adaptive_avg_pool2d_forward");
}
template <class T>
void adaptive_avg_pool2d_backward(int64_t, int64_t, int64_t, int64_t, int64_t, const T*, T*, int) {
  unavailable("cuda::adaptive_avg_pool2d_backward");
}

template void max_pool2d_forward<float>(const Pool2dGeometry&, const float*, float*, int64_t*, int);
template void max_pool2d_forward<double>(const Pool2dGeometry&, const double*, double*, int64_t*, int);
template void max_pool2d_backward<float>(const Pool2dGeometry&, const float*, const int64_t*, float*, int);
template void max_pool2d_backward<double>(const Pool2dGeometry&, const double*, const int64_t*, double*, int);
template void max_pool2d_gather<float>(int64_t, int64_t, int64_t, const float*, const int64_t*, float*, int);
template void max_pool2d_gather<double>(int64_t, int64_t, int64_t, const double*, const int64_t*, double*, int);
template void avg_pool2d_forward<float>(const Pool2dGeometry&, bool, const float*, float*, int);
template void avg_pool2d_forward<double>(const Pool2dGeometry&, bool, const double*, double*, int);
template void avg_pool2d_backward<float>(const Pool2dGeometry&, bool, const float*, float*, int);
template void avg_pool2d_backward<double>(const Pool2dGeometry&, bool, const double*, double*, int);
template void adaptive_avg_pool2d_forward<float>(int64_t, int64_t, int64_t, int64_t, int64_t, const float*, float*,
                                                 int);
template void adaptive_avg_pool2d_forward<double>(int64_t, int64_t, int64_t, int64_t, int64_t, const double*,
                                                  double*, int);
template void adaptive_avg_pool2d_backward<float>(int64_t, int64_t, int64_t, int64_t, int64_t, const float*, float*,
                                                  int);
template void adaptive_avg_pool2d_backward<double>(int64_t, int64_t, int64_t, int64_t, int64_t, const double*,
                                                   double*, int);

}  // namespace dmix::kernels::cuda
