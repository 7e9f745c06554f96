#include "nn/layers.h"

#include <cmath>

#include "engine/error.h"
#include "engine/ops.h"

namespace dmix::nn {

Conv2d::Conv2d(const Conv2dConfig& c, Generator& gen) {
  check(c.in_channels > 0 && c.out_channels > 0 && c.kernel > 0 && c.groups > 0, "Conv2d", "bad configuration: in ",
        c.in_channels, " out ", c.out_channels, " kernel ", c.kernel, " groups ", c.groups);
  check(c.in_channels % c.groups == 0 && c.out_channels % c.groups == 0, "Conv2d", "channels ", c.in_channels, "->",
        c.out_channels, " are not divisible by groups ", c.groups);
  const Shape shape{c.out_channels, c.in_channels / c.groups, c.kernel, c.kernel};
  const double fan_out = double(c.kernel * c.kernel * c.out_channels);
  const int64_t fan_in = c.in_channels / c.groups * c.kernel * c.kernel;  // exact: checked divisible above
  const double bound = 1.0 / std::sqrt(double(fan_in));
  weight = register_parameter("weight", c.init == ConvInit::HeFanOutNormal
                                            ? gen.normal(shape, 0.0, std::sqrt(2.0 / fan_out))
                                            : gen.uniform(shape, -bound, bound));
  if (c.bias) bias = register_parameter("bias", gen.uniform({c.out_channels}, -bound, bound));
  options.stride = {c.stride, c.stride};
  options.padding = {c.padding, c.padding};
  options.dilation = {c.dilation, c.dilation};
  options.groups = c.groups;
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, options); }

BatchNorm2d::BatchNorm2d(int64_t channels, bool affine, double momentum, double eps) : momentum(momentum), eps(eps) {
  check(channels > 0, "BatchNorm2d", "channels must be positive, got ", channels);
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({channels}));
    bias = register_parameter("bias", Tensor::zeros({channels}));
  }
  running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var = register_buffer("running_var", Tensor::ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  if (training()) {
    autograd::NoGradGuard no_grad;
    num_batches_tracked.fill_(num_batches_tracked.item() + 1);
  }
  return batch_norm(x, weight, bias, running_mean, running_var, training(), momentum, eps);
}

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, Generator& gen) {
  check(in_features > 0 && out_features > 0, "Linear", "bad sizes ", in_features, " -> ", out_features);
  // PyTorch's default: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in)); same bound for the bias.
  const double bound = 1.0 / std::sqrt(double(in_features));
  weight = register_parameter("weight", gen.uniform({out_features, in_features}, -bound, bound));
  if (with_bias) bias = register_parameter("bias", gen.uniform({out_features}, -bound, bound));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, options); }
Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, options); }
Tensor GlobalAvgPool::forward(const Tensor& x) { return global_avg_pool2d(x); }
Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, training(), *gen_); }

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> m) {
  register_module(std::to_string(layers_.size()), m);
  layers_.push_back(std::move(m));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& m : layers_) h = m->forward(h);
  return h;
}

}  // namespace dmix::nn
