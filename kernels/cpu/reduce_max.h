// Maximum along one dim of a contiguous buffer seen as (outer, n, inner), with the index
// of the first maximum, and its adjoint pattern: ones at given indices along that dim.
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

// values[o, k] = max_i x[o, i, k]; indices[o, k] = the smallest i reaching it. A NaN
// counts as the maximum (the first NaN wins). values may be null (argmax). n >= 1.
template <class T>
void max_along(const T* x, int64_t outer, int64_t n, int64_t inner, T* values, int64_t* indices);

// out (outer, n, inner) = 1 where i == indices[o, k], else 0. Every index must be in
// [0, n); the caller checks. Gives one_hot (inner = 1) and the mask max's gradient uses.
template <class T>
void one_hot_along(const int64_t* indices, int64_t outer, int64_t n, int64_t inner, T* out);

}  // namespace dmix::kernels::cpu
