// kernels/cuda/gather.h in a build without the CUDA backend: every function throws.
#include "kernels/cuda/gather.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

template <class T>
void copy_rows(const T*, int64_t, T*, int64_t, int64_t, int64_t, int) {
  unavailable("cuda::copy_rows");
}
template <class T>
void channel_shuffle(const T*, int64_t, int64_t, int64_t, int64_t, T*, int) {
  unavailable("cuda::channel_shuffle");
}
template <class T>
void index_select(const T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, T*, int) {
  unavailable("cuda::index_select");
}
template <class T>
void index_add(const T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, T*, int) {
  unavailable("cuda::index_add");
}

template void copy_rows<float>(const float*, int64_t, float*, int64_t, int64_t, int64_t, int);
template void channel_shuffle<float>(const float*, int64_t, int64_t, int64_t, int64_t, float*, int);
template void index_select<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t, float*, int);
template void index_add<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t, float*, int);
template void copy_rows<double>(const double*, int64_t, double*, int64_t, int64_t, int64_t, int);
template void channel_shuffle<double>(const double*, int64_t, int64_t, int64_t, int64_t, double*, int);
template void index_select<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*, int);
template void index_add<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*, int);
template void copy_rows<int64_t>(const int64_t*, int64_t, int64_t*, int64_t, int64_t, int64_t, int);
template void channel_shuffle<int64_t>(const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t*, int);
template void index_select<int64_t>(const int64_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, int64_t*, int);
template void index_add<int64_t>(const int64_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, int64_t*, int);
template void copy_rows<uint8_t>(const uint8_t*, int64_t, uint8_t*, int64_t, int64_t, int64_t, int);
template void channel_shuffle<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, int64_t, uint8_t*, int);
template void index_select<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, uint8_t*, int);
template void index_add<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, uint8_t*, int);

}  // namespace dmix::kernels::cuda
