// ResNeXt for CIFAR (Xie et al., bottleneck type C) as the PuzzleMix / Co-Mixup code
// defines it (snu-mllab/Co-Mixup models/resnext.py), with its parameter names:
//   conv_1_3x3, bn_1, stage_{1..3}.{i}.{conv_reduce,bn_reduce,conv_conv,bn,conv_expand,bn_expand},
//   stage_{k}.0.downsample.0 (1x1 conv) / .1 (BN), classifier.
// depth = 9n + 2; stage widths 64/128/256 with expansion 4; a block's grouped width is
// cardinality * floor(planes * base_width / 64). Post-activation, ReLU after the addition.
// Head: global average pool (the reference's AvgPool2d(8), equal at 32x32) -> classifier,
// whose weight is He-normal with fan-in and bias zero, as the reference initialises it.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/rng.h"
#include "nn/layers.h"

namespace dmix::nn {

struct ResNeXtConfig {
  int64_t depth = 29;
  int64_t cardinality = 4;
  int64_t base_width = 24;
  int64_t num_classes = 10;
  int64_t in_channels = 3;
};

class ResNeXtBottleneck : public Module {
 public:
  static constexpr int64_t expansion = 4;
  ResNeXtBottleneck(int64_t in_channels, int64_t planes, int64_t cardinality, int64_t base_width, int64_t stride,
                    Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Conv2d> conv_reduce, conv_conv, conv_expand;
  std::shared_ptr<BatchNorm2d> bn_reduce, bn, bn_expand;
  std::shared_ptr<Sequential> downsample;  // null for identity
};

class ResNeXt : public Module {
 public:
  explicit ResNeXt(const ResNeXtConfig& cfg, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor features(const Tensor& x);
  const ResNeXtConfig& config() const { return cfg_; }
  int64_t feature_channels() const { return feature_channels_; }

  std::shared_ptr<Conv2d> conv_1_3x3;
  std::shared_ptr<BatchNorm2d> bn_1;
  std::vector<std::shared_ptr<Sequential>> stages;
  std::shared_ptr<Linear> classifier;

 private:
  ResNeXtConfig cfg_;
  int64_t feature_channels_ = 0;
};

}  // namespace dmix::nn
