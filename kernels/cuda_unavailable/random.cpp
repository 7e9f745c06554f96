// kernels/cuda/random.h in a build without the CUDA backend: every function throws.
#include "kernels/cuda/random.h"

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {

template <class T>
void uniform(uint64_t, uint64_t, double, double, T*, int64_t, int) {
  unavailable("cuda::uniform");
}
template <class T>
void normal(uint64_t, uint64_t, double, double, T*, int64_t, int) {
  unavailable("cuda::normal");
}
template <class T>
void bernoulli(uint64_t, uint64_t, double, T*, int64_t, int) {
  unavailable("cuda::bernoulli");
}
void randint(uint64_t, uint64_t, int64_t, int64_t, int64_t*, int64_t, int) { unavailable("cuda::randint"); }
template <class T>
void gamma(uint64_t, uint64_t, double, T*, int64_t, int) {
  unavailable("cuda::gamma");
}
template <class T>
void beta(uint64_t, uint64_t, double, double, T*, int64_t, int) {
  unavailable("cuda::beta");
}
template <class T>
void dirichlet(uint64_t, uint64_t, const double*, int64_t, T*, int64_t, int) {
  unavailable("cuda::dirichlet");
}
void philox_blocks(uint64_t, uint64_t, uint64_t, int64_t, uint32_t*, int) { unavailable("cuda::philox_blocks"); }

template void uniform<float>(uint64_t, uint64_t, double, double, float*, int64_t, int);
template void uniform<double>(uint64_t, uint64_t, double, double, double*, int64_t, int);
template void normal<float>(uint64_t, uint64_t, double, double, float*, int64_t, int);
template void normal<double>(uint64_t, uint64_t, double, double, double*, int64_t, int);
template void bernoulli<float>(uint64_t, uint64_t, double, float*, int64_t, int);
template void bernoulli<double>(uint64_t, uint64_t, double, double*, int64_t, int);
template void bernoulli<int64_t>(uint64_t, uint64_t, double, int64_t*, int64_t, int);
template void bernoulli<uint8_t>(uint64_t, uint64_t, double, uint8_t*, int64_t, int);
template void gamma<float>(uint64_t, uint64_t, double, float*, int64_t, int);
template void gamma<double>(uint64_t, uint64_t, double, double*, int64_t, int);
template void beta<float>(uint64_t, uint64_t, double, double, float*, int64_t, int);
template void beta<double>(uint64_t, uint64_t, double, double, double*, int64_t, int);
template void dirichlet<float>(uint64_t, uint64_t, const double*, int64_t, float*, int64_t, int);
template void dirichlet<double>(uint64_t, uint64_t, const double*, int64_t, double*, int64_t, int);

}  // namespace dmix::kernels::cuda
