// kernels/cuda/elementwise.h for a build without the CUDA backend: every function
// exists (same instantiations) and throws the one "built without CUDA" error.
#include "kernels/cuda/elementwise.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

template <class T>
void binary(BinaryOp, int, const int64_t*, const T*, const int64_t*, const T*, const int64_t*, T*, int) {
  unavailable("cuda::binary");
}
template <class T> void unary(UnaryOp, const T*, T*, int64_t, int) { unavailable("cuda::unary"); }
template <class T> void pow_scalar(const T*, T, T*, int64_t, int) { unavailable("cuda::pow_scalar"); }
template <class T> void clamp(const T*, T, T, T*, int64_t, int) { unavailable("cuda::clamp"); }
template <class T> void affine_scalar(const T*, T, T, T*, int64_t, int) { unavailable("cuda::affine_scalar"); }
template <class T> void fill(T*, T, int64_t, int) { unavailable("cuda::fill"); }
template <class T> void range_mask(const T*, T, T, T*, int64_t, int) { unavailable("cuda::range_mask"); }
template <class T> void relu_backward(const T*, const T*, T*, int64_t, int) { unavailable("cuda::relu_backward"); }
template <class T> void axpy(T, const T*, T*, int64_t, int) { unavailable("cuda::axpy"); }
template <class T>
void greater(int, const int64_t*, const T*, const int64_t*, const T*, const int64_t*, uint8_t*, int) {
  unavailable("cuda::greater");
}
template <class T>
void where(int, const int64_t*, const uint8_t*, const int64_t*, const T*, const int64_t*, const T*, const int64_t*, T*,
           int) {
  unavailable("cuda::where");
}
template <class T> void broadcast_to(int, const int64_t*, const T*, const int64_t*, T*, int) {
  unavailable("cuda::broadcast_to");
}
template <class From, class To> void convert(const From*, To*, int64_t, int) { unavailable("cuda::convert"); }

#define DMIX_INSTANTIATE(T)                                                                                  \
  template void binary<T>(BinaryOp, int, const int64_t*, const T*, const int64_t*, const T*, const int64_t*, T*, \
                          int);                                                                              \
  template void unary<T>(UnaryOp, const T*, T*, int64_t, int);                                               \
  template void pow_scalar<T>(const T*, T, T*, int64_t, int);                                                \
  template void clamp<T>(const T*, T, T, T*, int64_t, int);                                                  \
  template void affine_scalar<T>(const T*, T, T, T*, int64_t, int);                                          \
  template void axpy<T>(T, const T*, T*, int64_t, int);                                                      \
  template void range_mask<T>(const T*, T, T, T*, int64_t, int);                                             \
  template void relu_backward<T>(const T*, const T*, T*, int64_t, int);                                      \
  template void broadcast_to<T>(int, const int64_t*, const T*, const int64_t*, T*, int);                     \
  template void greater<T>(int, const int64_t*, const T*, const int64_t*, const T*, const int64_t*, uint8_t*, \
                           int);
DMIX_INSTANTIATE(float)
DMIX_INSTANTIATE(double)
#undef DMIX_INSTANTIATE

template void fill<float>(float*, float, int64_t, int);
template void fill<double>(double*, double, int64_t, int);
template void fill<int64_t>(int64_t*, int64_t, int64_t, int);
template void fill<uint8_t>(uint8_t*, uint8_t, int64_t, int);

#define DMIX_INSTANTIATE_WHERE(T)                                                                             \
  template void where<T>(int, const int64_t*, const uint8_t*, const int64_t*, const T*, const int64_t*, const T*, \
                         const int64_t*, T*, int);
DMIX_INSTANTIATE_WHERE(float)
DMIX_INSTANTIATE_WHERE(double)
DMIX_INSTANTIATE_WHERE(int64_t)
#undef DMIX_INSTANTIATE_WHERE

#define DMIX_CONVERT(A, B) template void convert<A, B>(const A*, B*, int64_t, int);
#define DMIX_CONVERT_FROM(A) DMIX_CONVERT(A, float) DMIX_CONVERT(A, double) DMIX_CONVERT(A, int64_t) DMIX_CONVERT(A, uint8_t)
DMIX_CONVERT_FROM(float)
DMIX_CONVERT_FROM(double)
DMIX_CONVERT_FROM(int64_t)
DMIX_CONVERT_FROM(uint8_t)
#undef DMIX_CONVERT_FROM
#undef DMIX_CONVERT

}  // namespace dmix::kernels::cuda
