// Reductions over given dims (negative dims count from the end; an empty list means
// all dims), broadcasting's adjoints (expand / sum_to), and softmax / log_softmax.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace dmix {

using Dims = std::vector<int64_t>;

Tensor sum(const Tensor& a, const Dims& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& a, const Dims& dims = {}, bool keepdim = false);
Tensor var(const Tensor& a, const Dims& dims = {}, bool unbiased = true, bool keepdim = false);

struct MaxResult {
  Tensor values;   // differentiable: the gradient goes to the (first) arg max
  Tensor indices;  // i64
};
MaxResult max(const Tensor& a, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& a, int64_t dim, bool keepdim = false);

Tensor softmax(const Tensor& a, int64_t dim);
Tensor log_softmax(const Tensor& a, int64_t dim);

// Broadcasts a to `shape` (materialised copy). Adjoint of sum_to.
Tensor expand(const Tensor& a, const Shape& shape);
// Sums the broadcast dims of g away so the result has `shape`. Adjoint of expand.
Tensor sum_to(const Tensor& g, const Shape& shape);

}  // namespace dmix
