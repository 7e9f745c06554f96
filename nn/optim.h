// Optimizers over a model's named parameters. Weight decay is coupled (added to the
// gradient as L2) on every parameter, as the reference recipes do. The optimizer state
// (momentum / moment buffers, step count) is exported by name for checkpoints.
#pragma once
#include <cstdint>
#include <string>

#include "nn/module.h"

namespace dmix::nn {

class Optimizer {
 public:
  explicit Optimizer(NamedTensors params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  virtual void step() = 0;  // uses each parameter's .grad(); parameters without a grad are skipped
  void zero_grad();
  double lr = 0.1;
  int64_t steps() const { return steps_; }

  // "<kind>.<param name>.<buffer>" -> tensor, plus "<kind>.steps" (i64 scalar).
  virtual StateDict state_dict() const = 0;
  virtual void load_state_dict(const StateDict& state) = 0;

 protected:
  NamedTensors params_;
  int64_t steps_ = 0;
};

struct SgdOptions {
  double lr = 0.1, momentum = 0.9, weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, const SgdOptions& opt);
  void step() override;
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  SgdOptions options;

 private:
  TensorList momentum_;
};

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class Adam : public Optimizer {
 public:
  Adam(NamedTensors params, const AdamOptions& opt);
  void step() override;
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  AdamOptions options;

 private:
  TensorList m_, v_;
};

// Scales all gradients so their global L2 norm is at most max_norm; returns the norm before.
double clip_grad_norm(const TensorList& params, double max_norm);

}  // namespace dmix::nn
