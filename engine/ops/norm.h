// Batch normalisation over (N,H,W) per channel of an NCHW tensor (or over N of (N,C)).
#pragma once
#include "engine/tensor.h"

namespace dmix {

// training: normalise with the batch mean and biased variance, and update the running
// statistics in place (running = (1-momentum)*running + momentum*batch, with the unbiased
// batch variance for running_var). eval: normalise with the running statistics.
// weight/bias may be undefined (affine=false); running stats may be undefined in training.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

}  // namespace dmix
