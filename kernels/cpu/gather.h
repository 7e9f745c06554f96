// Copy kernels for the data-movement ops (engine/ops/shape.h): concatenation, slicing,
// zero padding, channel shuffle, and gathers / scatter-adds of rows along one dim.
// Every tensor is viewed as (outer, size along dim, inner) with inner contiguous, so
// each op is a loop over contiguous runs. T = float, double, int64_t, uint8_t.
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

// dst[r * dst_stride + c] = src[r * src_stride + c] for r < rows, c < cols.
// cat, narrow and pad are this copy with different strides and offsets.
template <class T>
void copy_rows(const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t rows, int64_t cols);

// x: (n, groups * per_group, plane) -> y: channel i*per_group + j moves to j*groups + i.
template <class T>
void channel_shuffle(const T* x, int64_t n, int64_t groups, int64_t per_group, int64_t plane, T* y);

// y (outer, m, inner) = x (outer, x_size, inner) at rows index[0..m). Indices in range.
template <class T>
void index_select(const T* x, int64_t outer, int64_t x_size, int64_t inner, const int64_t* index, int64_t m, T* y);

// y (outer, y_size, inner) += src (outer, m, inner) added at rows index[0..m); repeated
// indices accumulate in index order, whatever the thread count. Indices in range.
template <class T>
void index_add(const T* src, int64_t outer, int64_t m, int64_t inner, const int64_t* index, int64_t y_size, T* y);

}  // namespace dmix::kernels::cpu
