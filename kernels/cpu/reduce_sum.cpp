// Sum over chosen dims of a contiguous tensor.
//
// The dims are first coalesced into alternating groups of kept (K) and reduced (R) dims.
// The shapes that training produces get a loop with a contiguous, vectorised inner loop:
//   (K, R)     row sums               e.g. softmax denominators
//   (R, K)     column sums            e.g. bias gradient of a linear layer
//   (R, K, R)  per-channel sums       e.g. NCHW -> C for conv bias / batch-norm gradients
//   (K, R, K)  middle-dim sums
// Anything else uses a general odometer loop. Each output element is summed by exactly
// one thread in a fixed order, so results do not depend on the thread count.
// Cost: one read per input element; memory bound.
#include "kernels/cpu/reduce_sum.h"

using std::size_t;

#include <algorithm>
#include <cstddef>
#include <vector>

namespace dmix::kernels::cpu {
namespace {

template <class T>
T row_sum(const T* x, int64_t n) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += x[i];
  return acc;
}

// out[j] = sum_i x[i*cols + j], for j in [0, cols).
template <class T>
void column_sums(const T* x, int64_t rows, int64_t cols, T* out) {
  for (int64_t j = 0; j < cols; ++j) out[j] = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const T* r = x + i * cols;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) out[j] += r[j];
  }
}

}  // namespace

template <class T>
void sum_dims(const T* in, int ndim, const int64_t* shape, const uint8_t* reduce, T* out) {
  // Coalesce into groups, skipping size-1 dims (they change nothing).
  std::vector<int64_t> size;
  std::vector<bool> reduced;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    const bool r = reduce[d] != 0;
    if (!size.empty() && reduced.back() == r) {
      size.back() *= shape[d];
    } else {
      size.push_back(shape[d]);
      reduced.push_back(r);
    }
  }
  const size_t g = size.size();
  if (g == 0) {  // one element
    out[0] = in[0];
    return;
  }
  if (g == 1) {
    if (reduced[0]) {
      out[0] = row_sum(in, size[0]);
    } else {
#pragma omp parallel for simd if (size[0] > 65536)
      for (int64_t i = 0; i < size[0]; ++i) out[i] = in[i];
    }
    return;
  }
  if (g == 2 && !reduced[0]) {  // (K, R)
    const int64_t rows = size[0], n = size[1];
#pragma omp parallel for schedule(static) if (rows * n > 32768)
    for (int64_t i = 0; i < rows; ++i) out[i] = row_sum(in + i * n, n);
    return;
  }
  if (g == 2 && reduced[0]) {  // (R, K): split the columns across threads
    const int64_t rows = size[0], cols = size[1];
    const int64_t chunk = 256;
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (int64_t j0 = 0; j0 < cols; j0 += chunk) {
      const int64_t w = std::min(chunk, cols - j0);
      for (int64_t j = 0; j < w; ++j) out[j0 + j] = 0;
      for (int64_t i = 0; i < rows; ++i) {
        const T* r = in + i * cols + j0;
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) out[j0 + j] += r[j];
      }
    }
    return;
  }
  if (g == 3 && reduced[0]) {  // (R, K, R)
    const int64_t outer = size[0], k = size[1], inner = size[2];
#pragma omp parallel for schedule(static) if (outer * k * inner > 32768)
    for (int64_t c = 0; c < k; ++c) {
      T acc = 0;
      for (int64_t n = 0; n < outer; ++n) acc += row_sum(in + (n * k + c) * inner, inner);
      out[c] = acc;
    }
    return;
  }
  if (g == 3 && !reduced[0]) {  // (K, R, K)
    const int64_t outer = size[0], r = size[1], inner = size[2];
#pragma omp parallel for schedule(static) if (outer * r * inner > 32768)
    for (int64_t o = 0; o < outer; ++o) column_sums(in + o * r * inner, r, inner, out + o * inner);
    return;
  }
  // General case: one output element at a time, walking the reduced dims with an odometer.
  std::vector<int64_t> kept_size, kept_stride, red_size, red_stride;
  int64_t stride = 1;
  std::vector<int64_t> strides(g);
  for (size_t d = g; d-- > 0;) {
    strides[d] = stride;
    stride *= size[d];
  }
  for (size_t d = 0; d < g; ++d) {
    (reduced[d] ? red_size : kept_size).push_back(size[d]);
    (reduced[d] ? red_stride : kept_stride).push_back(strides[d]);
  }
  int64_t n_out = 1, n_red = 1;
  for (int64_t s : kept_size) n_out *= s;
  for (int64_t s : red_size) n_red *= s;
#pragma omp parallel for schedule(static) if (n_out * n_red > 32768)
  for (int64_t o = 0; o < n_out; ++o) {
    int64_t base = 0, rem = o;
    for (size_t d = kept_size.size(); d-- > 0;) {
      base += (rem % kept_size[d]) * kept_stride[d];
      rem /= kept_size[d];
    }
    T acc = 0;
    for (int64_t r = 0; r < n_red; ++r) {
      int64_t off = base, q = r;
      for (size_t d = red_size.size(); d-- > 0;) {
        off += (q % red_size[d]) * red_stride[d];
        q /= red_size[d];
      }
      acc += in[off];
    }
    out[o] = acc;
  }
}

template void sum_dims<float>(const float*, int, const int64_t*, const uint8_t*, float*);
template void sum_dims<double>(const double*, int, const int64_t*, const uint8_t*, double*);

}  // namespace dmix::kernels::cpu
