// Ops that move data without arithmetic: concatenation, slicing, zero channel padding
// (PyramidNet shortcuts), channel shuffle (PC-DARTS), and batch gathers (mixing).
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace dmix {

class Generator;

Tensor cat(const TensorList& xs, int64_t dim);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
// (N,C,H,W) -> (N,C+extra,H,W), the new channels zero.
Tensor pad_channels(const Tensor& x, int64_t extra);
// (N, g*c, H, W): channel (i*c + j) moves to (j*g + i).
Tensor channel_shuffle(const Tensor& x, int64_t groups);
// Rows of x picked along `dim` by an i64 index (repeats allowed).
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// Adjoint of index_select: zeros of x's shape with size `size` along dim, src rows added at index.
Tensor index_add(const Tensor& src, int64_t dim, const Tensor& index, int64_t size);
// Inverted dropout: zero with probability p, scale survivors by 1/(1-p). Identity when !training.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

}  // namespace dmix
