// Pooling over NCHW tensors, with PyTorch's semantics for padding, ceil_mode and
// count_include_pad (a ceil_mode window that would start in the right padding is dropped).
#pragma once
#include <array>
#include <cstdint>

#include "engine/tensor.h"

namespace dmix {

struct Pool2dOptions {
  std::array<int64_t, 2> kernel{2, 2};
  std::array<int64_t, 2> stride{0, 0};  // 0 means "same as kernel"
  std::array<int64_t, 2> padding{0, 0};
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg_pool2d only
};

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt);
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt);
// PyTorch's adaptive bins: bin i covers [floor(i*H/out), ceil((i+1)*H/out)).
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
// (N,C,H,W) -> (N,C): the mean over H and W.
Tensor global_avg_pool2d(const Tensor& x);

}  // namespace dmix
