// The training loop's pieces in the words of `dmix train`: an optimizer, one optimisation
// step, and evaluation / prediction without recording gradients.
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

// An optimizer as `dmix train --optimizer --lr --momentum --wd --nesterov` sets it.
struct OptimizerOptions {
  std::string name = "sgd";  // "sgd" or "adam"
  double lr = 0.1;
  double weight_decay = 0.0;  // coupled (L2 added to the gradient), on every parameter
  double momentum = 0.9;      // sgd only
  bool nesterov = true;       // sgd only; plain momentum where momentum is 0
};

// "sgd": SGD with momentum, Nesterov and weight decay as the options say; "adam": Adam with
// the usual betas. The learning rate can be changed between steps through Optimizer::lr
// (e.g. from an nn::LrSchedule).
inline std::unique_ptr<nn::Optimizer> make_optimizer(const nn::Module& model, const OptimizerOptions& options) {
  if (options.name == "sgd") {
    nn::SgdOptions o;
    o.lr = options.lr;
    o.momentum = options.momentum;
    o.weight_decay = options.weight_decay;
    o.nesterov = options.nesterov && options.momentum > 0;
    return std::make_unique<nn::SGD>(model.named_parameters(), o);
  }
  check(options.name == "adam", "make_optimizer", "unknown optimizer '", options.name, "' (expected sgd or adam)");
  nn::AdamOptions o;
  o.lr = options.lr;
  o.weight_decay = options.weight_decay;
  return std::make_unique<nn::Adam>(model.named_parameters(), o);
}

// The short form: SGD with momentum 0.9 and Nesterov (dmix train's default), or Adam.
inline std::unique_ptr<nn::Optimizer> make_optimizer(const std::string& name, const nn::Module& model, double lr,
                                                     double weight_decay = 0.0) {
  OptimizerOptions o;
  o.name = name;
  o.lr = lr;
  o.weight_decay = weight_decay;
  return make_optimizer(model, o);
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

// Errors in percent and the mean cross-entropy of a model over one pass of a loader.
struct Evaluation {
  int64_t images = 0;
  double top1_error = 0, top5_error = 0;  // top-5: top-k for k = min(5, classes)
  double loss = 0;
};

// One pass of the loader (its epoch 0) in eval mode with autograd off, as `dmix train`
// evaluates after every epoch and `dmix eval` evaluates a checkpoint.
inline Evaluation evaluate(nn::Module& model, augment::DataLoader& loader) {
  const Device device = model.device();
  model.eval();
  autograd::NoGradGuard no_grad;
  Evaluation r;
  int64_t top1 = 0, top5 = 0;
  double loss_sum = 0;
  loader.start_epoch(0);
  for (augment::Batch b; loader.next(b);) {
    Tensor logits = model(b.images.to(device));
    const int64_t n = b.labels.size(0);
    loss_sum += cross_entropy(logits, b.labels.to(device)).item() * double(n);
    top1 += nn::count_topk_correct(logits, b.labels, 1);
    top5 += nn::count_topk_correct(logits, b.labels, std::min<int64_t>(5, logits.size(1)));
    r.images += n;
  }
  check(r.images > 0, "evaluate", "the loader yields no samples");
  r.top1_error = 100.0 * double(r.images - top1) / double(r.images);
  r.top5_error = 100.0 * double(r.images - top5) / double(r.images);
  r.loss = loss_sum / double(r.images);
  return r;
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
