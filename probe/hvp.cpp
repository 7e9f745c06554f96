// Hessian-vector products of a model's mean loss (see hvp.h for the algorithm and cost).
#include "probe/hvp.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/ops/shape.h"

namespace dmix::probe {

FixedBatch::FixedBatch(Tensor inputs, Tensor targets) {
  check(inputs.defined() && targets.defined(), "hessian", "a fixed batch needs inputs and targets");
  check(inputs.dim() >= 1 && inputs.size(0) > 0, "hessian", "the batch is empty: inputs ", inputs.str());
  check(targets.dim() >= 1 && targets.size(0) == inputs.size(0), "hessian", "inputs ", inputs.str(), " and targets ",
        targets.str(), " differ in batch size");
  batch_.images = std::move(inputs);
  batch_.labels = std::move(targets);
}

bool FixedBatch::next(augment::Batch& out) {
  if (done_) return false;
  out = batch_;
  done_ = true;
  return true;
}

Tensor classification_batch_loss(nn::Module& model, const augment::Batch& batch) {
  const Device device = model.device();
  const Tensor logits = model(batch.images.to(device));
  const Tensor targets = batch.labels.to(device);
  return targets.dtype() == DType::i64 ? cross_entropy(logits, targets) : soft_cross_entropy(logits, targets);
}

bool name_under_prefix(const std::string& name, const std::string& prefix) {
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  return name.size() == prefix.size() || name[prefix.size()] == '.';
}

HessianOperator::HessianOperator(nn::Module& model, BatchSource& batches, HessianOptions options)
    : model_(model), batches_(batches), options_(std::move(options)), was_training_(model.training()) {
  check(bool(options_.loss), "hessian", "no loss function given");
  std::vector<bool> prefix_used(options_.parameters.size(), false);
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    bool selected = options_.parameters.empty();
    for (size_t i = 0; i < options_.parameters.size(); ++i)
      if (name_under_prefix(name, options_.parameters[i])) selected = prefix_used[i] = true;
    if (!selected) continue;
    if (!params_.empty())
      check(p.dtype() == params_[0].dtype() && p.device() == params_[0].device(), "hessian", "parameter ", name, " is ",
            p.str(), " but ", names_[0], " is ", params_[0].str(),
            ": the selected parameters must share dtype and device");
    names_.push_back(name);
    params_.push_back(p);
    offsets_.push_back(size_);
    size_ += p.numel();
  }
  for (size_t i = 0; i < prefix_used.size(); ++i)
    check(prefix_used[i], "hessian", "no parameter that requires grad is named '", options_.parameters[i],
          "' or lies under it");
  check(!params_.empty(), "hessian", "the model has no parameter that requires grad");
  model_.train(options_.train_mode);
  if (options_.train_mode) {
    autograd::NoGradGuard no_grad;
    for (const auto& [name, b] : model.named_buffers()) {
      buffers_.push_back(b);
      buffer_snapshot_.push_back(b.clone());
    }
  }
}

HessianOperator::~HessianOperator() { model_.train(was_training_); }

void HessianOperator::restore_buffers() {
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < buffers_.size(); ++i) buffers_[i].copy_(buffer_snapshot_[i]);
}

HessianOperator::BatchGradient HessianOperator::gradient_of(const augment::Batch& batch) {
  autograd::EnableGradGuard grad_on;
  const Tensor loss = options_.loss(model_, batch);
  restore_buffers();
  check(loss.defined() && loss.numel() == 1, "hessian", "the loss function must return one value, got ",
        loss.defined() ? loss.str() : std::string("nothing"));
  const double value = loss.item();
  check(std::isfinite(value), "hessian", "the loss is ", value, " on batch ", batch.batch_index,
        " (the Hessian of a non-finite loss is meaningless)");
  BatchGradient g;
  if (!loss.requires_grad()) return g;  // no selected parameter on the loss's path: H = 0
  TensorList grads = autograd::grad({loss}, params_, {}, /*create_graph=*/true, /*allow_unused=*/true);
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].requires_grad()) continue;  // a gradient constant in the parameters adds no curvature
    g.grads.push_back(grads[i]);
    g.index.push_back(i);
  }
  return g;
}

TensorList HessianOperator::hvp_of(const BatchGradient& g, const TensorList& v) const {
  if (g.grads.empty()) {
    TensorList zeros;
    for (const Tensor& p : params_) zeros.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
    return zeros;
  }
  TensorList seeds;
  for (size_t i : g.index) seeds.push_back(v[i]);
  // d<g, v>/dtheta: the gradient graph is only read, so a cached one serves the next product too.
  TensorList h = autograd::grad(g.grads, params_, seeds, /*create_graph=*/false, /*allow_unused=*/true);
  for (Tensor& t : h) t = t.detach();
  return h;
}

Tensor HessianOperator::apply(const Tensor& v) {
  check(v.defined() && v.dim() == 1 && v.numel() == size_, "hessian", "expected a flat vector of ", size_,
        " elements, got ", v.defined() ? v.str() : std::string("nothing"));
  check(v.dtype() == params_[0].dtype() && v.device() == params_[0].device(), "hessian", "vector ", v.str(),
        " does not match the parameters' dtype and device (", params_[0].str(), ")");
  const TensorList vs = unflatten(v.detach());
  TensorList hv;
  if (batches_.single_batch()) {
    if (!cached_) {
      batches_.start();
      augment::Batch b;
      check(batches_.next(b), "hessian", "the batch source yields no samples");
      cached_ = std::make_unique<BatchGradient>(gradient_of(b));
    }
    hv = hvp_of(*cached_, vs);
  } else {
    int64_t total = 0;
    batches_.start();
    for (augment::Batch b; batches_.next(b);) {
      const int64_t n = b.images.size(0);
      if (n == 0) continue;
      TensorList h;
      {
        const BatchGradient g = gradient_of(b);
        h = hvp_of(g, vs);
      }  // this batch's graph is gone before the next batch's forward
      autograd::NoGradGuard no_grad;
      if (hv.empty()) {
        for (const Tensor& t : h) hv.push_back(mul_scalar(t, double(n)));
      } else {
        for (size_t i = 0; i < h.size(); ++i) hv[i].add_(h[i], double(n));
      }
      total += n;
    }
    check(total > 0, "hessian", "the batch source yields no samples");
    for (Tensor& t : hv) t.mul_(1.0 / double(total));
  }
  ++hvps_;
  return flatten(hv);
}

SymmetricOperator HessianOperator::as_operator() {
  SymmetricOperator op;
  op.size = size_;
  op.dtype = params_[0].dtype();
  op.device = params_[0].device();
  op.apply = [this](const Tensor& v) { return apply(v); };
  return op;
}

double HessianOperator::loss() {
  autograd::NoGradGuard no_grad;
  double weighted = 0;
  int64_t total = 0;
  batches_.start();
  for (augment::Batch b; batches_.next(b);) {
    const int64_t n = b.images.size(0);
    const double value = options_.loss(model_, b).item();
    restore_buffers();
    weighted += value * double(n);
    total += n;
  }
  check(total > 0, "hessian", "the batch source yields no samples");
  return weighted / double(total);
}

Tensor HessianOperator::flatten(const TensorList& per_parameter) const {
  check(per_parameter.size() == params_.size(), "hessian", "expected ", params_.size(), " tensors, got ",
        per_parameter.size());
  autograd::NoGradGuard no_grad;
  TensorList flat;
  for (size_t i = 0; i < per_parameter.size(); ++i) {
    check(per_parameter[i].shape() == params_[i].shape(), "hessian", "tensor ", per_parameter[i].str(),
          " does not match parameter ", names_[i], " ", params_[i].str());
    flat.push_back(per_parameter[i].detach().reshape({-1}));
  }
  return flat.size() == 1 ? flat[0].clone() : cat(flat, 0);
}

TensorList HessianOperator::unflatten(const Tensor& flat) const {
  check(flat.dim() == 1 && flat.numel() == size_, "hessian", "expected a flat vector of ", size_, " elements, got ",
        flat.str());
  autograd::NoGradGuard no_grad;
  TensorList out;
  for (size_t i = 0; i < params_.size(); ++i)
    out.push_back(narrow(flat.detach(), 0, offsets_[i], params_[i].numel()).reshape(params_[i].shape()));
  return out;
}

std::map<std::string, Tensor> HessianOperator::named(const Tensor& flat) const {
  const TensorList parts = unflatten(flat);
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < parts.size(); ++i) out[names_[i]] = parts[i];
  return out;
}

}  // namespace dmix::probe
