// Softmax and log-softmax along one dim of a contiguous buffer seen as (outer, n, inner):
// element (o, i, k) sits at (o*n + i)*inner + k and the dim being normalised is i.
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

// y = exp(x - max) / sum exp(x - max) along the n dim.
template <class T> void softmax(const T* x, int64_t outer, int64_t n, int64_t inner, T* y);
// y = x - max - log(sum exp(x - max)) along the n dim.
template <class T> void log_softmax(const T* x, int64_t outer, int64_t n, int64_t inner, T* y);

}  // namespace dmix::kernels::cpu
