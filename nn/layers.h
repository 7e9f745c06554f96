// The basic layers. Each holds its parameters as public Tensor handles named as in
// PyTorch (weight, bias, running_mean, ...), initialised as the paper's reference code
// does: convolutions He-normal with fan-out (PyramidNet, ResNet), or PyTorch's default
// where the reference keeps it (PuzzleMix's PreActResNet); batch norm gamma=1 beta=0;
// Linear with PyTorch's default uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/ops/conv.h"
#include "engine/ops/pool.h"
#include "engine/rng.h"
#include "nn/module.h"

namespace dmix::nn {

// How a convolution's weight is drawn (fan_in = in/groups * k * k, fan_out = out * k * k):
//   HeFanOutNormal  N(0, 2 / fan_out), the PyramidNet / ResNet reference code's re-init;
//   PyTorchDefault  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), nn.Conv2d's own
//                   kaiming_uniform(a = sqrt(5)), for reference code that keeps it.
// The bias, if any, is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) either way.
enum class ConvInit { HeFanOutNormal, PyTorchDefault };

struct Conv2dConfig {
  int64_t in_channels, out_channels, kernel;
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = false;
  ConvInit init = ConvInit::HeFanOutNormal;
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dConfig& cfg, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  Conv2dOptions options;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, bool affine = true, double momentum = 0.1, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  double momentum, eps;
};

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const Pool2dOptions& opt) : options(opt) {}
  Tensor forward(const Tensor& x) override;
  Pool2dOptions options;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const Pool2dOptions& opt) : options(opt) {}
  Tensor forward(const Tensor& x) override;
  Pool2dOptions options;
};

// (N,C,H,W) -> (N,C): replaces fixed-size final pools so any input size works.
class GlobalAvgPool : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x.flatten(1); }
};

class Dropout : public Module {
 public:
  explicit Dropout(double p, Generator& gen = default_generator()) : p(p), gen_(&gen) {}
  Tensor forward(const Tensor& x) override;
  double p;

 private:
  Generator* gen_;
};

// Children named "0", "1", ... as torch.nn.Sequential names them.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace dmix::nn
