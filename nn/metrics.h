// Classification metrics on logits (N, C) and integer labels (N).
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace dmix::nn {

// How many rows have their label among the k largest logits (ties broken by lower class index).
int64_t count_topk_correct(const Tensor& logits, const Tensor& labels, int64_t k);

}  // namespace dmix::nn
