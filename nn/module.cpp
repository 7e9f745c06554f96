#include "nn/module.h"

#include <sstream>

#include "engine/autograd.h"
#include "engine/error.h"

namespace dmix::nn {

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

std::vector<Module*> Module::modules() {
  std::vector<Module*> out{this};
  for (auto& [name, child] : children_) {
    const std::vector<Module*> below = child->modules();
    out.insert(out.end(), below.begin(), below.end());
  }
  return out;
}

void Module::collect(const std::string& prefix, NamedTensors& out, bool params) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out, params);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out, true);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", out, false);
  return out;
}

TensorList Module::parameters() const {
  TensorList out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::zero_grad() {
  for (auto& [name, t] : named_parameters()) t.zero_grad();
}

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& [name, t] : named_parameters()) out[name] = t.detach();
  for (auto& [name, t] : named_buffers()) out[name] = t.detach();
  return out;
}

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void Module::load_state_dict(const StateDict& state, bool strict) {
  StateDict own;
  for (auto& [name, t] : named_parameters()) own[name] = t;
  for (auto& [name, t] : named_buffers()) own[name] = t;
  std::ostringstream problems;
  int count = 0;
  auto problem = [&](const std::string& what) {
    problems << (count++ ? "; " : "") << what;
  };
  for (auto& [name, t] : own) {
    auto it = state.find(name);
    if (it == state.end()) {
      if (strict && !ends_with(name, "num_batches_tracked")) problem("missing " + name);
      continue;
    }
    if (it->second.shape() != t.shape())
      problem(name + " has shape " + shape_str(it->second.shape()) + ", the model expects " + shape_str(t.shape()));
  }
  if (strict)
    for (auto& [name, t] : state)
      if (!own.count(name) && !ends_with(name, "num_batches_tracked")) problem("unexpected " + name);
  check(count == 0, "load_state_dict", count, " problem(s): ", problems.str());
  autograd::NoGradGuard no_grad;
  for (auto& [name, t] : own) {
    auto it = state.find(name);
    if (it != state.end()) t.copy_(it->second.to(t.device()));
  }
}

void Module::to(Device device) {
  auto move = [&](Tensor& t) {
    if (t.device() == device) return;
    Tensor moved = t.detach().to(device);
    TensorImpl& impl = t.impl();
    impl.storage = moved.impl().storage;
    impl.offset = moved.impl().offset;
    impl.device = device;
    impl.grad.reset();
  };
  for (auto& [name, t] : params_) move(t);
  for (auto& [name, t] : buffers_) move(t);
  for (auto& [name, child] : children_) child->to(device);
}

Device Module::device() const {
  auto ps = named_parameters();
  return ps.empty() ? Device::cpu() : ps.front().second.device();
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  if (t.defined()) t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return t;
}

}  // namespace dmix::nn
