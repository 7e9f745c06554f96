// Pre-activation ResNet for CIFAR as the PuzzleMix / Co-Mixup code defines it
// (snu-mllab/Co-Mixup models/preresnet.py, itself Kuang Liu's pytorch-cifar version),
// with its parameter names:
//   conv1, layer{1..4}.{i}.{bn1,conv1,bn2,conv2[,bn3,conv3]}, layer{k}.{i}.shortcut.0, linear.
// Stem: one 3x3 conv (64 channels), no BN. Blocks: ReLU(BN(x)) feeds both the residual
// branch and, where the width or stride changes, the 1x1 conv shortcut; otherwise the
// shortcut is x itself. No ReLU after the addition, and no final BN: layer4's output is
// pooled (global average instead of the reference's avg_pool2d(4), equal at 32x32) and fed
// to `linear`.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/rng.h"
#include "nn/layers.h"

namespace dmix::nn {

struct PreActResNetConfig {
  int64_t depth = 18;  // 18, 34 (basic blocks) or 50, 101, 152 (bottlenecks)
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  int64_t initial_channels = 64;
  int64_t stem_stride = 1;
};

class PreActBlock : public Module {
 public:
  static constexpr int64_t expansion = 1;
  PreActBlock(int64_t in_channels, int64_t planes, int64_t stride, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<Sequential> shortcut;  // null for identity
};

class PreActBottleneck : public Module {
 public:
  static constexpr int64_t expansion = 4;
  PreActBottleneck(int64_t in_channels, int64_t planes, int64_t stride, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<Conv2d> conv1, conv2, conv3;
  std::shared_ptr<Sequential> shortcut;
};

class PreActResNet : public Module {
 public:
  explicit PreActResNet(const PreActResNetConfig& cfg, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor features(const Tensor& x);
  const PreActResNetConfig& config() const { return cfg_; }
  int64_t feature_channels() const { return feature_channels_; }

  std::shared_ptr<Conv2d> conv1;
  std::vector<std::shared_ptr<Sequential>> layers;
  std::shared_ptr<Linear> linear;

 private:
  PreActResNetConfig cfg_;
  int64_t feature_channels_ = 0;
};

}  // namespace dmix::nn
