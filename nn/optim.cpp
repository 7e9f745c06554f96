// Optimizers: state bookkeeping here, the per-element updates in the fused kernels of
// kernels/cpu/optimizer_step.h, or kernels/cuda/optimizer_step.h for parameters on a
// GPU (state buffers live on the parameter's device).
#include "nn/optim.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "kernels/cpu/optimizer_step.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/optimizer_step.h"

namespace dmix::nn {

namespace k = kernels::cpu;
namespace cu = kernels::cuda;

namespace {

void check_param(const char* op, const std::string& name, const Tensor& p) {
  check(p.dtype() == DType::f32, op, "parameter ", name, " is ", p.str(), "; optimizers update f32 parameters");
}

// The gradient a step reads: same shape, dtype and device as its parameter.
void check_grad(const char* op, const std::string& name, const Tensor& p, const Tensor& g) {
  check(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(), op, "gradient ", g.str(),
        " of parameter ", name, " does not match the parameter ", p.str());
}

Tensor find(const StateDict& s, const std::string& key, const Tensor& like, const char* op) {
  auto it = s.find(key);
  check(it != s.end(), op, "optimizer state lacks ", key);
  check(it->second.shape() == like.shape(), op, "optimizer state ", key, " has shape ", shape_str(it->second.shape()),
        ", expected ", shape_str(like.shape()));
  return it->second;
}

}  // namespace

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

SGD::SGD(NamedTensors params, const SgdOptions& opt) : Optimizer(std::move(params)), options(opt) {
  lr = opt.lr;
  check(opt.momentum >= 0 && opt.weight_decay >= 0 && opt.lr >= 0, "SGD", "lr, momentum and weight decay must be >= 0");
  check(!opt.nesterov || opt.momentum > 0, "SGD", "Nesterov momentum needs momentum > 0");
  for (auto& [name, p] : params_) {
    check_param("SGD", name, p);
    momentum_.push_back(opt.momentum > 0 ? Tensor::zeros(p.shape(), p.dtype(), p.device()) : Tensor());
  }
}

void SGD::step() {
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    check_grad("SGD", params_[i].first, p, g);
    float* buf = momentum_[i].defined() ? momentum_[i].data<float>() : nullptr;
    if constexpr (cu::kBuilt) {
      if (p.is_cuda()) {
        cu::sgd_step(p.data<float>(), g.data<float>(), buf, p.numel(), float(lr), float(options.momentum),
                     float(options.weight_decay), options.nesterov, steps_ == 0, p.device().index);
        continue;
      }
    }
    k::sgd_step(p.data<float>(), g.data<float>(), buf, p.numel(), float(lr), float(options.momentum),
                float(options.weight_decay), options.nesterov, steps_ == 0);
  }
  ++steps_;
}

StateDict SGD::state_dict() const {
  StateDict s;
  s["sgd.steps"] = Tensor::full({}, double(steps_), DType::i64);
  for (size_t i = 0; i < params_.size(); ++i)
    if (momentum_[i].defined()) s["sgd." + params_[i].first + ".momentum"] = momentum_[i];
  return s;
}

void SGD::load_state_dict(const StateDict& s) {
  auto it = s.find("sgd.steps");
  check(it != s.end(), "SGD", "optimizer state lacks sgd.steps (was it written by another optimizer?)");
  steps_ = static_cast<int64_t>(it->second.item());
  for (size_t i = 0; i < params_.size(); ++i)
    if (momentum_[i].defined()) momentum_[i].copy_(find(s, "sgd." + params_[i].first + ".momentum", momentum_[i], "SGD"));
}

Adam::Adam(NamedTensors params, const AdamOptions& opt) : Optimizer(std::move(params)), options(opt) {
  lr = opt.lr;
  check(opt.beta1 >= 0 && opt.beta1 < 1 && opt.beta2 >= 0 && opt.beta2 < 1 && opt.eps > 0, "Adam",
        "betas must be in [0, 1) and eps > 0");
  for (auto& [name, p] : params_) {
    check_param("Adam", name, p);
    m_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
    v_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
  }
}

void Adam::step() {
  autograd::NoGradGuard no_grad;
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    check_grad("Adam", params_[i].first, p, g);
    if constexpr (cu::kBuilt) {
      if (p.is_cuda()) {
        cu::adam_step(p.data<float>(), g.data<float>(), m_[i].data<float>(), v_[i].data<float>(), p.numel(), float(lr),
                      float(options.beta1), float(options.beta2), float(options.eps), float(options.weight_decay),
                      steps_, p.device().index);
        continue;
      }
    }
    k::adam_step(p.data<float>(), g.data<float>(), m_[i].data<float>(), v_[i].data<float>(), p.numel(), float(lr),
                 float(options.beta1), float(options.beta2), float(options.eps), float(options.weight_decay), steps_);
  }
}

StateDict Adam::state_dict() const {
  StateDict s;
  s["adam.steps"] = Tensor::full({}, double(steps_), DType::i64);
  for (size_t i = 0; i < params_.size(); ++i) {
    s["adam." + params_[i].first + ".m"] = m_[i];
    s["adam." + params_[i].first + ".v"] = v_[i];
  }
  return s;
}

void Adam::load_state_dict(const StateDict& s) {
  auto it = s.find("adam.steps");
  check(it != s.end(), "Adam", "optimizer state lacks adam.steps (was it written by another optimizer?)");
  steps_ = static_cast<int64_t>(it->second.item());
  for (size_t i = 0; i < params_.size(); ++i) {
    m_[i].copy_(find(s, "adam." + params_[i].first + ".m", m_[i], "Adam"));
    v_[i].copy_(find(s, "adam." + params_[i].first + ".v", v_[i], "Adam"));
  }
}

double clip_grad_norm(const TensorList& params, double max_norm) {
  check(max_norm > 0, "clip_grad_norm", "max_norm must be positive, got ", max_norm);
  double total = 0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    check(g.dtype() == DType::f32, "clip_grad_norm", "expects f32 gradients, got ", g.str());
    if constexpr (cu::kBuilt) {
      if (g.is_cuda()) {
        total += cu::sum_of_squares(g.data<float>(), g.numel(), g.device().index);
        continue;
      }
    }
    total += k::sum_of_squares(g.data<float>(), g.numel());
  }
  const double norm = std::sqrt(total);
  check(std::isfinite(norm), "clip_grad_norm", "gradient norm is not finite (", norm, ")");
  if (norm > max_norm) {
    autograd::NoGradGuard no_grad;
    const double scale = max_norm / (norm + 1e-6);
    // Gradients are never aliased between leaves (the engine clones them), so scaling in place is safe.
    for (const Tensor& p : params)
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  return norm;
}

}  // namespace dmix::nn
