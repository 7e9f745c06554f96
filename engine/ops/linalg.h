// Matrix products. matmul of 2-D tensors (M,K)x(K,N); linear is PyTorch's
// y = x W^T + b with W of shape (out, in).
#pragma once
#include "engine/tensor.h"

namespace dmix {

Tensor matmul(const Tensor& a, const Tensor& b);
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
Tensor transpose(const Tensor& a);  // 2-D only

}  // namespace dmix
