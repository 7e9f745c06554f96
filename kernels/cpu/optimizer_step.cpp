// Fused SGD and Adam parameter updates, and the squared norm used by gradient clipping.
// Each element is updated independently: one read of p, g and the state, one write
// each; memory bound, parallel over elements with OpenMP, vectorised.
#include "kernels/cpu/optimizer_step.h"

#include <cmath>

namespace dmix::kernels::cpu {

void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd, bool nesterov,
              bool first_step) {
  if (momentum == 0.0f) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i]);
    return;
  }
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float d = g[i] + wd * p[i];
    const float b = first_step ? d : momentum * buf[i] + d;
    buf[i] = b;
    p[i] -= lr * (nesterov ? d + momentum * b : b);
  }
}

void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2, float eps,
               float wd, int64_t t) {
  const float c1 = 1.0f - std::pow(beta1, float(t)), c2 = 1.0f - std::pow(beta2, float(t));
  const float step = lr / c1, root_c2 = std::sqrt(c2);
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float d = g[i] + wd * p[i];
    m[i] = beta1 * m[i] + (1.0f - beta1) * d;
    v[i] = beta2 * v[i] + (1.0f - beta2) * d * d;
    p[i] -= step * m[i] / (std::sqrt(v[i]) / root_c2 + eps);
  }
}

double sum_of_squares(const float* x, int64_t n) {
  double acc = 0;
#pragma omp parallel for simd reduction(+ : acc) schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) acc += double(x[i]) * double(x[i]);
  return acc;
}

}  // namespace dmix::kernels::cpu
