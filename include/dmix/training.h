// The training loop's pieces in the words of `dmix train`: an optimizer by name, one
// optimisation step, and evaluation / prediction without recording gradients.
//
//   auto opt = dmix::make_optimizer("sgd", *model, 0.1, 5e-4);
//   for (dmix::augment::Batch b; loader.next(b);) dmix::train_step(*model, *opt, b.images, b.labels);
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "augment/loader.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"
#include "nn/metrics.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace dmix {

// "sgd": SGD with momentum 0.9, Nesterov, coupled weight decay (dmix train's default);
// "adam": Adam with the usual betas. The learning rate can be changed between steps
// through Optimizer::lr (e.g. from an nn::LrSchedule).
inline std::unique_ptr<nn::Optimizer> make_optimizer(const std::string& name, const nn::Module& model, double lr,
                                                     double weight_decay = 0.0) {
  if (name == "sgd") {
    nn::SgdOptions o;
    o.lr = lr;
    o.weight_decay = weight_decay;
    o.nesterov = true;
    return std::make_unique<nn::SGD>(model.named_parameters(), o);
  }
  check(name == "adam", "make_optimizer", "unknown optimizer '", name, "' (expected sgd or adam)");
  nn::AdamOptions o;
  o.lr = lr;
  o.weight_decay = weight_decay;
  return std::make_unique<nn::Adam>(model.named_parameters(), o);
}

// The classification loss of logits against targets: cross entropy for i64 labels (N),
// soft cross entropy for float targets (N, C) such as augment::mix_batch's.
inline Tensor classification_loss(const Tensor& logits, const Tensor& targets) {
  return targets.dtype() == DType::i64 ? cross_entropy(logits, targets) : soft_cross_entropy(logits, targets);
}

// One step: forward in training mode, loss, backward, optimizer step. Inputs and targets
// are moved to the model's device. Returns the loss of the batch (before the step).
inline double train_step(nn::Module& model, nn::Optimizer& optimizer, const Tensor& inputs, const Tensor& targets) {
  const Device device = model.device();
  model.train();
  Tensor loss = classification_loss(model(inputs.to(device)), targets.to(device));
  optimizer.zero_grad();
  loss.backward();
  optimizer.step();
  return loss.item();
}

// The model's outputs in eval mode (running statistics, no dropout) with autograd off,
// on the model's device. The model is left in eval mode.
inline Tensor predict_logits(nn::Module& model, const Tensor& inputs) {
  model.eval();
  autograd::NoGradGuard no_grad;
  return model(inputs.to(model.device()));
}

// Class probabilities (N, C) and the most probable class (N, i64) of each input.
inline Tensor predict_probabilities(nn::Module& model, const Tensor& inputs) {
  autograd::NoGradGuard no_grad;
  return softmax(predict_logits(model, inputs), 1);
}
inline Tensor predict_classes(nn::Module& model, const Tensor& inputs) {
  autograd::NoGradGuard no_grad;
  return argmax(predict_logits(model, inputs), 1);
}

// Top-1 accuracy in percent over one pass of the loader (its epoch 0), in eval mode.
inline double accuracy(nn::Module& model, augment::DataLoader& loader) {
  int64_t correct = 0, seen = 0;
  loader.start_epoch(0);
  for (augment::Batch b; loader.next(b);) {
    correct += nn::count_topk_correct(predict_logits(model, b.images), b.labels, 1);
    seen += b.labels.size(0);
  }
  check(seen > 0, "accuracy", "the loader yields no samples");
  return 100.0 * double(correct) / double(seen);
}

}  // namespace dmix
