// Copy kernels for the data-movement ops on a CUDA device: the twins of
// kernels/cpu/gather.h (same arguments plus the device). Every tensor is viewed as
// (outer, size along dim, inner) with inner contiguous. All pointers, index included,
// are device pointers on `device`; the work is queued on the device's stream.
// T = float, double, int64_t, uint8_t. Results are bit-identical to the CPU kernels
// (index_add adds in index order, as the CPU does).
#pragma once
#include <cstdint>

namespace dmix::kernels::cuda {

// dst[r * dst_stride + c] = src[r * src_stride + c] for r < rows, c < cols.
// src_stride may be 0 (every row of dst gets the same src row: a bias broadcast).
template <class T>
void copy_rows(const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t rows, int64_t cols, int device);

// x: (n, groups * per_group, plane) -> y: channel i*per_group + j moves to j*groups + i.
template <class T>
void channel_shuffle(const T* x, int64_t n, int64_t groups, int64_t per_group, int64_t plane, T* y, int device);

// y (outer, m, inner) = x (outer, x_size, inner) at rows index[0..m). Indices in range.
template <class T>
void index_select(const T* x, int64_t outer, int64_t x_size, int64_t inner, const int64_t* index, int64_t m, T* y,
                  int device);

// y (outer, y_size, inner) += src (outer, m, inner) added at rows index[0..m); repeated
// indices accumulate in index order. Indices in range. Costs O(m) index reads per
// element of y (see gather.cu): meant for batch-sized indices.
template <class T>
void index_add(const T* src, int64_t outer, int64_t m, int64_t inner, const int64_t* index, int64_t y_size, T* y,
               int device);

}  // namespace dmix::kernels::cuda
