// Sums over a set of dims of a contiguous row-major tensor on a CUDA device: the twin
// of kernels/cpu/reduce_sum.h. `in` and `out` are device pointers on `device`;
// `shape` and `reduce` are host arrays. Queued on the device's stream. Deterministic:
// the same sizes give the same summation order on every run (no atomics).
// Instantiated for float and double.
#pragma once
#include <cstdint>

namespace dmix::kernels::cuda {

// out (the kept dims, row-major) = sum of `in` over the dims where reduce[d] != 0.
template <class T>
void sum_dims(const T* in, int ndim, const int64_t* shape, const uint8_t* reduce, T* out, int device);

}  // namespace dmix::kernels::cuda
