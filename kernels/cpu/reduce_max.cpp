// Maximum along a dim with its arg max, and the one-hot scatter of indices.
//
// Algorithm: one sweep over the n values of each line keeping the best value and its
// index; a strictly greater value (or the first NaN) replaces the best, so ties keep the
// first index, as PyTorch's max(dim) does on CPU. When inner > 1 the lines of one o are
// walked together, k innermost, so loads are contiguous. The scatter zero-fills its
// output and writes one 1 per line.
//
// Cost: max_along reads x once (n*outer*inner compares); one_hot_along writes its output once.
#include "kernels/cpu/reduce_max.h"

#include <algorithm>
#include <cstdint>

namespace dmix::kernels::cpu {
namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

template <class T> bool better(T v, T best) { return v > best || (v != v && best == best); }

}  // namespace

template <class T>
void max_along(const T* x, int64_t outer, int64_t n, int64_t inner, T* values, int64_t* indices) {
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * n * inner >= kParallelMin)
    for (int64_t o = 0; o < outer; ++o) {
      const T* line = x + o * n;
      T best = line[0];
      int64_t at = 0;
      for (int64_t i = 1; i < n; ++i)
        if (better(line[i], best)) {
          best = line[i];
          at = i;
        }
      if (values) values[o] = best;
      indices[o] = at;
    }
    return;
  }
#pragma omp parallel for schedule(static) if (outer * n * inner >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    const T* block = x + o * n * inner;
    T* best = values ? values + o * inner : nullptr;
    int64_t* at = indices + o * inner;
    // Without a values buffer the running maximum is read back through the index.
    for (int64_t k = 0; k < inner; ++k) {
      if (best) best[k] = block[k];
      at[k] = 0;
    }
    for (int64_t i = 1; i < n; ++i)
      for (int64_t k = 0; k < inner; ++k) {
        const T v = block[i * inner + k];
        const T b = best ? best[k] : block[at[k] * inner + k];
        if (better(v, b)) {
          if (best) best[k] = v;
          at[k] = i;
        }
      }
  }
}

template <class T>
void one_hot_along(const int64_t* indices, int64_t outer, int64_t n, int64_t inner, T* out) {
  std::fill_n(out, outer * n * inner, T(0));
#pragma omp parallel for schedule(static) if (outer * n * inner >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < inner; ++k) out[(o * n + indices[o * inner + k]) * inner + k] = T(1);
}

template void max_along<float>(const float*, int64_t, int64_t, int64_t, float*, int64_t*);
template void max_along<double>(const double*, int64_t, int64_t, int64_t, double*, int64_t*);
template void one_hot_along<float>(const int64_t*, int64_t, int64_t, int64_t, float*);
template void one_hot_along<double>(const int64_t*, int64_t, int64_t, int64_t, double*);

}  // namespace dmix::kernels::cpu
