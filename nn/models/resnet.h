// ResNet-18/34/50/101/152 exactly as torchvision.models builds them (v1.5: in a
// bottleneck the stride sits on the 3x3 conv), with torchvision's parameter names:
//   conv1, bn1, layer{1..4}.{i}.{conv1,bn1,conv2,bn2[,conv3,bn3]},
//   layer{k}.0.downsample.0 (1x1 conv) / .1 (BN), fc.
// Post-activation blocks, ReLU after the addition, a 1x1 conv + BN projection where the
// stride or width changes. Stem 7x7/2 conv + BN + ReLU + maxpool 3/2 (pad 1); the head is a
// global average pool + fc, so inputs of any size of at least ~32x32 work.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/rng.h"
#include "nn/layers.h"

namespace dmix::nn {

struct ResNetConfig {
  int64_t depth = 50;  // 18, 34, 50, 101 or 152
  int64_t num_classes = 1000;
  int64_t in_channels = 3;
};

// conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, + shortcut, ReLU.
class ResNetBasicBlock : public Module {
 public:
  static constexpr int64_t expansion = 1;
  ResNetBasicBlock(int64_t in_channels, int64_t planes, int64_t stride, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Sequential> downsample;  // null for an identity shortcut
};

// conv1x1 -> BN -> ReLU -> conv3x3(stride) -> BN -> ReLU -> conv1x1(4 planes) -> BN, + shortcut, ReLU.
class ResNetBottleneck : public Module {
 public:
  static constexpr int64_t expansion = 4;
  ResNetBottleneck(int64_t in_channels, int64_t planes, int64_t stride, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Conv2d> conv1, conv2, conv3;
  std::shared_ptr<BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<Sequential> downsample;
};

class ResNet : public Module {
 public:
  explicit ResNet(const ResNetConfig& cfg, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor features(const Tensor& x);  // (N, feature_channels()) before fc
  const ResNetConfig& config() const { return cfg_; }
  int64_t feature_channels() const { return feature_channels_; }

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<MaxPool2d> maxpool;
  std::vector<std::shared_ptr<Sequential>> layers;
  std::shared_ptr<Linear> fc;

 private:
  ResNetConfig cfg_;
  int64_t feature_channels_ = 0;
};

}  // namespace dmix::nn
