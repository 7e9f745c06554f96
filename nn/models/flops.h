// Forward cost of a model, counted from what actually runs: one forward pass on a single
// zero image, then a walk of the autograd graph it recorded. Every conv2d and linear node
// contributes 2 * (output elements) * (multiply-adds per output element), read from its
// weight's shape; biases, normalisation, activations and pooling are not counted (the usual
// "FLOPs = 2 x MACs of conv and fc" convention). Works for any Module whose conv and linear
// weights are parameters (they require grad, so the ops record nodes).
#pragma once
#include <cstdint>

#include "engine/tensor.h"
#include "nn/module.h"

namespace dmix::nn {

struct FlopCount {
  int64_t conv = 0, linear = 0;
  int64_t total() const { return conv + linear; }
};

// input_chw: (C, H, W) of one image. Runs in eval mode (running statistics untouched) and
// restores the model's training flag afterwards.
FlopCount count_forward_flops(Module& model, const Shape& input_chw);
inline int64_t forward_flops_per_image(Module& model, const Shape& input_chw) {
  return count_forward_flops(model, input_chw).total();
}

}  // namespace dmix::nn
