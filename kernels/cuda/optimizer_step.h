// Fused parameter updates on a CUDA device: the twins of kernels/cpu/optimizer_step.h
// (same arguments and formulas, plus the device). p, g and the state buffers are device
// pointers on `device`; updates are queued on the device's stream. f32 only, like the
// CPU kernels: optimizers keep f32 parameters.
#pragma once
#include <cstdint>

namespace dmix::kernels::cuda {

// PyTorch's SGD: d = g + wd*p; buf = first ? d : momentum*buf + d; p -= lr * (nesterov ? d + momentum*buf : buf).
// With momentum == 0 the buffer is not touched (may be null): p -= lr * d.
void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float weight_decay,
              bool nesterov, bool first_step, int device);

// PyTorch's Adam (L2 weight decay added to the gradient): step t >= 1.
void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2, float eps,
               float weight_decay, int64_t t, int device);

// Sum of squares of n values, accumulated in double (for gradient-norm clipping).
// Waits for the result (it is a host value). Deterministic: the summation order
// depends only on n.
double sum_of_squares(const float* x, int64_t n, int device);

}  // namespace dmix::kernels::cuda
