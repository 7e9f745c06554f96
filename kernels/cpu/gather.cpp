// Copy kernels: strided row copies (cat / narrow / pad), the channel shuffle
// permutation, and row gathers / scatter-adds along one dim (index_select / index_add).
//
// Algorithm: each op is a set of contiguous runs (rows of `inner` elements) moved with
// std::copy_n, which compiles to memmove / vector loads; work is split over runs, and
// long runs are cut into chunks so a single large copy still uses every thread.
// index_add gives each thread whole output columns and walks the index in order, so
// repeated indices sum in the same order for any thread count.
//
// Cost: no arithmetic (index_add: one add per source element); memory traffic is one
// read and one write of every element moved.
#include "kernels/cpu/gather.h"

#include <algorithm>

namespace dmix::kernels::cpu {
namespace {

constexpr int64_t kChunk = 16384;              // elements per parallel work item
constexpr int64_t kMinParallelElements = 1 << 16;

}  // namespace

template <class T>
void copy_rows(const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t chunks_per_row = (cols + kChunk - 1) / kChunk;
  const int64_t items = rows * chunks_per_row;
#pragma omp parallel for schedule(static) if (rows * cols >= kMinParallelElements)
  for (int64_t t = 0; t < items; ++t) {
    const int64_t r = t / chunks_per_row;
    const int64_t c0 = (t % chunks_per_row) * kChunk;
    const int64_t len = std::min(kChunk, cols - c0);
    std::copy_n(src + r * src_stride + c0, len, dst + r * dst_stride + c0);
  }
}

template <class T>
void channel_shuffle(const T* x, int64_t n, int64_t groups, int64_t per_group, int64_t plane, T* y) {
  const int64_t channels = groups * per_group;
  const int64_t items = n * channels;
#pragma omp parallel for schedule(static) if (items * plane >= kMinParallelElements)
  for (int64_t t = 0; t < items; ++t) {
    const int64_t b = t / channels, ch = t % channels;
    const int64_t i = ch / per_group, j = ch % per_group;
    std::copy_n(x + (b * channels + ch) * plane, plane, y + (b * channels + j * groups + i) * plane);
  }
}

template <class T>
void index_select(const T* x, int64_t outer, int64_t x_size, int64_t inner, const int64_t* index, int64_t m, T* y) {
  const int64_t items = outer * m;
#pragma omp parallel for schedule(static) if (items * inner >= kMinParallelElements)
  for (int64_t t = 0; t < items; ++t) {
    const int64_t o = t / m, k = t % m;
    std::copy_n(x + (o * x_size + index[k]) * inner, inner, y + (o * m + k) * inner);
  }
}

template <class T>
void index_add(const T* src, int64_t outer, int64_t m, int64_t inner, const int64_t* index, int64_t y_size, T* y) {
  if (inner <= 0) return;
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  const int64_t items = outer * chunks;
#pragma omp parallel for schedule(static) if (outer * m * inner >= kMinParallelElements)
  for (int64_t t = 0; t < items; ++t) {
    const int64_t o = t / chunks;
    const int64_t c0 = (t % chunks) * kChunk;
    const int64_t len = std::min(kChunk, inner - c0);
    for (int64_t k = 0; k < m; ++k) {
      const T* s = src + (o * m + k) * inner + c0;
      T* d = y + (o * y_size + index[k]) * inner + c0;
      for (int64_t c = 0; c < len; ++c) d[c] += s[c];
    }
  }
}

template void copy_rows<float>(const float*, int64_t, float*, int64_t, int64_t, int64_t);
template void channel_shuffle<float>(const float*, int64_t, int64_t, int64_t, int64_t, float*);
template void index_select<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t, float*);
template void index_add<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t, float*);
template void copy_rows<double>(const double*, int64_t, double*, int64_t, int64_t, int64_t);
template void channel_shuffle<double>(const double*, int64_t, int64_t, int64_t, int64_t, double*);
template void index_select<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*);
template void index_add<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, int64_t, double*);
template void copy_rows<int64_t>(const int64_t*, int64_t, int64_t*, int64_t, int64_t, int64_t);
template void channel_shuffle<int64_t>(const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t*);
template void index_select<int64_t>(const int64_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, int64_t*);
template void index_add<int64_t>(const int64_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, int64_t*);
template void copy_rows<uint8_t>(const uint8_t*, int64_t, uint8_t*, int64_t, int64_t, int64_t);
template void channel_shuffle<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, int64_t, uint8_t*);
template void index_select<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, uint8_t*);
template void index_add<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, const int64_t*, int64_t, uint8_t*);

}  // namespace dmix::kernels::cpu
