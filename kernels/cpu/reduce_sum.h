// Sums over a set of dims of a contiguous row-major tensor.
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

// out (the kept dims, row-major) = sum of `in` over the dims where reduce[d] != 0.
template <class T>
void sum_dims(const T* in, int ndim, const int64_t* shape, const uint8_t* reduce, T* out);

}  // namespace dmix::kernels::cpu
