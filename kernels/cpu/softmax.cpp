// Softmax and log-softmax along one dim, numerically stable.
//
// Algorithm: per line of n values, subtract the line's maximum before exponentiating
// (exp never overflows and the largest term is exactly 1, so the sum is >= 1):
//   softmax:     y = exp(x - max) / sum exp(x - max)
//   log_softmax: y = x - (max + log sum exp(x - max))
// The sum is accumulated in double. When the dim is the last one (inner == 1) each line is
// contiguous and a thread takes whole lines; otherwise a thread takes a block of up to
// kBlock neighbouring lines (consecutive k) and walks them together, so its loads stay
// contiguous and the loops over k vectorise. Every line is computed by one thread in a
// fixed order: results do not depend on the thread count.
//
// Cost: per element one exp, a few flops; x is read two or three times (from cache for
// lines that fit), y written once.
#include "kernels/cpu/softmax.h"

#include <algorithm>
#include <cmath>

namespace dmix::kernels::cpu {
namespace {

constexpr int64_t kBlock = 64;
// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

template <class T, bool Log>
void contiguous_lines(const T* x, int64_t outer, int64_t n, T* y) {
#pragma omp parallel for schedule(static) if (outer * n >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    const T* xr = x + o * n;
    T* yr = y + o * n;
    T mx = xr[0];
    for (int64_t i = 1; i < n; ++i) mx = std::max(mx, xr[i]);
    double s = 0;
    if (Log) {
      for (int64_t i = 0; i < n; ++i) s += static_cast<double>(std::exp(xr[i] - mx));
      const T lse = static_cast<T>(static_cast<double>(mx) + std::log(s));
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] - lse;
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const T e = std::exp(xr[i] - mx);
        yr[i] = e;
        s += static_cast<double>(e);
      }
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
    }
  }
}

template <class T, bool Log>
void strided_lines(const T* x, int64_t outer, int64_t n, int64_t inner, T* y) {
  const int64_t kblocks = (inner + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (outer * n * inner >= kParallelMin)
  for (int64_t t = 0; t < outer * kblocks; ++t) {
    const int64_t o = t / kblocks, k0 = (t % kblocks) * kBlock, w = std::min(inner, k0 + kBlock) - k0;
    const T* xb = x + o * n * inner + k0;
    T* yb = y + o * n * inner + k0;
    T mx[kBlock];
    double s[kBlock];
    for (int64_t k = 0; k < w; ++k) {
      mx[k] = xb[k];
      s[k] = 0;
    }
    for (int64_t i = 1; i < n; ++i)
      for (int64_t k = 0; k < w; ++k) mx[k] = std::max(mx[k], xb[i * inner + k]);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < w; ++k) {
        const T e = std::exp(xb[i * inner + k] - mx[k]);
        if (!Log) yb[i * inner + k] = e;
        s[k] += static_cast<double>(e);
      }
    T factor[kBlock];
    for (int64_t k = 0; k < w; ++k)
      factor[k] = Log ? static_cast<T>(static_cast<double>(mx[k]) + std::log(s[k])) : static_cast<T>(1.0 / s[k]);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < w; ++k) {
        if (Log)
          yb[i * inner + k] = xb[i * inner + k] - factor[k];
        else
          yb[i * inner + k] *= factor[k];
      }
  }
}

template <class T, bool Log>
void normalise(const T* x, int64_t outer, int64_t n, int64_t inner, T* y) {
  if (outer == 0 || n == 0 || inner == 0) return;
  if (inner == 1)
    contiguous_lines<T, Log>(x, outer, n, y);
  else
    strided_lines<T, Log>(x, outer, n, inner, y);
}

}  // namespace

template <class T> void softmax(const T* x, int64_t outer, int64_t n, int64_t inner, T* y) {
  normalise<T, false>(x, outer, n, inner, y);
}
template <class T> void log_softmax(const T* x, int64_t outer, int64_t n, int64_t inner, T* y) {
  normalise<T, true>(x, outer, n, inner, y);
}

template void softmax<float>(const float*, int64_t, int64_t, int64_t, float*);
template void softmax<double>(const double*, int64_t, int64_t, int64_t, double*);
template void log_softmax<float>(const float*, int64_t, int64_t, int64_t, float*);
template void log_softmax<double>(const double*, int64_t, int64_t, int64_t, double*);

}  // namespace dmix::kernels::cpu
