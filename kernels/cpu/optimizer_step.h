// Fused parameter updates: one pass over each parameter per step.
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

// PyTorch's SGD: d = g + wd*p; buf = first ? d : momentum*buf + d; p -= lr * (nesterov ? d + momentum*buf : buf).
// With momentum == 0 the buffer is not touched (may be null): p -= lr * d.
void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float weight_decay,
              bool nesterov, bool first_step);

// PyTorch's Adam (L2 weight decay added to the gradient): step t >= 1.
void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2, float eps,
               float weight_decay, int64_t t);

// Sum of squares of n values, accumulated in double (for gradient-norm clipping).
double sum_of_squares(const float* x, int64_t n);

}  // namespace dmix::kernels::cpu
