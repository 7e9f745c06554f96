// Softmax and log-softmax along one dim on the GPU: the CUDA twins of kernels/cpu/softmax.h.
// A contiguous device buffer is seen as (outer, n, inner); element (o, i, k) sits at
// (o*n + i)*inner + k and the dim being normalised is i. Every pointer is device memory
// of `device`; the work is queued on that device's stream (no synchronisation).
#pragma once
#include <cstdint>

namespace dmix::kernels::cuda {

// y = exp(x - max) / sum exp(x - max) along the n dim.
void softmax(const float* x, int64_t outer, int64_t n, int64_t inner, float* y, int device);
void softmax(const double* x, int64_t outer, int64_t n, int64_t inner, double* y, int device);
// y = x - max - log(sum exp(x - max)) along the n dim.
void log_softmax(const float* x, int64_t outer, int64_t n, int64_t inner, float* y, int device);
void log_softmax(const double* x, int64_t outer, int64_t n, int64_t inner, double* y, int device);

}  // namespace dmix::kernels::cuda
