// Maximum along one dim of a contiguous device buffer seen as (outer, n, inner), with the
// index of the first maximum, and the one-hot scatter of indices: the CUDA twins of
// kernels/cpu/reduce_max.h, same semantics (ties and NaN included). Every pointer is
// device memory of `device`; the work is queued on that device's stream.
#pragma once
#include <cstdint>

namespace dmix::kernels::cuda {

// values[o, k] = max_i x[o, i, k]; indices[o, k] = the smallest i reaching it. A NaN
// counts as the maximum (the first NaN wins). values may be null (argmax). n >= 1.
void max_along(const float* x, int64_t outer, int64_t n, int64_t inner, float* values, int64_t* indices, int device);
void max_along(const double* x, int64_t outer, int64_t n, int64_t inner, double* values, int64_t* indices,
               int device);

// out (outer, n, inner) = 1 where i == indices[o, k], else 0. Every index must be in
// [0, n); the caller checks (an index outside it leaves that line all zeros).
void one_hot_along(const int64_t* indices, int64_t outer, int64_t n, int64_t inner, float* out, int device);
void one_hot_along(const int64_t* indices, int64_t outer, int64_t n, int64_t inner, double* out, int device);

}  // namespace dmix::kernels::cuda
