// Classification losses. Soft targets are primary: every mixing method produces them.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace dmix {

// labels: i64 (N) in [0, classes) -> (N, classes) of 0/1 in `dtype`.
Tensor one_hot(const Tensor& labels, int64_t classes, DType dtype = DType::f32);
// mean over the batch of -sum_c targets[n,c] * log_softmax(logits)[n,c]; targets (N,C).
Tensor soft_cross_entropy(const Tensor& logits, const Tensor& targets);
// Integer labels (N, i64); label_smoothing e gives targets (1-e)*onehot + e/C.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0);

}  // namespace dmix
