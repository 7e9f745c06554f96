// Module: a node of a model tree holding named parameters, buffers and child modules.
// Names compose with dots exactly as PyTorch names the same model ("layer1.0.conv1.weight",
// "bn1.running_mean"), so state dicts move between dmix and PyTorch both ways.
//
// Parameters and buffers are Tensor handles. Layers keep their own copies of the handles
// (Conv2d::weight, ...); Module::to(device) moves storage inside those same handles, so
// the copies stay valid.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace dmix::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool training() const { return training_; }
  // Sets this module's own mode only (MC dropout: dropout layers on in an eval-mode model).
  void set_training_flag(bool on) { training_ = on; }
  // This module and every module below it, depth-first in registration order.
  std::vector<Module*> modules();

  NamedTensors named_parameters() const;  // depth-first, registration order
  NamedTensors named_buffers() const;
  TensorList parameters() const;
  int64_t num_parameters() const;
  void zero_grad();

  // Parameters and buffers, detached, by full name.
  StateDict state_dict() const;
  // Copies values into the model. Every problem (missing, unexpected, wrong shape) is
  // collected and reported in one Error. PyTorch's num_batches_tracked entries are
  // accepted whether or not the model has them. strict=false skips missing/unexpected.
  void load_state_dict(const StateDict& state, bool strict = true);

  void to(Device device);
  Device device() const;

 protected:
  Tensor register_parameter(const std::string& name, Tensor t);  // marks it requires_grad
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

 private:
  void collect(const std::string& prefix, NamedTensors& out, bool params) const;

  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace dmix::nn
