// Wide ResNet (Zagoruyko & Komodakis) for CIFAR as the PuzzleMix / Co-Mixup code defines
// it (snu-mllab/Co-Mixup models/wide_resnet.py; dropout removed there, and here), with its
// parameter names:
//   conv1, layer{1..3}.{i}.{bn1,conv1,bn2,conv2}, layer{k}.{i}.shortcut.0, bn1, linear.
// Every conv has a bias. A block is conv1(ReLU(BN(x))) then conv2(ReLU(BN(.))) with the
// stride on conv2, plus the shortcut applied to the raw x (a 1x1 conv with bias where the
// width or stride changes). The final BN uses PyTorch momentum 0.9, as the reference. Head:
// ReLU(BN) -> global average pool (the reference's avg_pool2d(8), equal at 32x32) -> linear.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/rng.h"
#include "nn/layers.h"

namespace dmix::nn {

struct WideResNetConfig {
  int64_t depth = 16;  // 6n + 4
  int64_t widen_factor = 8;
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  int64_t stem_stride = 1;
};

class WideBasicBlock : public Module {
 public:
  WideBasicBlock(int64_t in_channels, int64_t planes, int64_t stride, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<Sequential> shortcut;  // null for identity
};

class WideResNet : public Module {
 public:
  explicit WideResNet(const WideResNetConfig& cfg, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor features(const Tensor& x);
  const WideResNetConfig& config() const { return cfg_; }
  int64_t feature_channels() const { return feature_channels_; }

  std::shared_ptr<Conv2d> conv1;
  std::vector<std::shared_ptr<Sequential>> layers;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<Linear> linear;

 private:
  WideResNetConfig cfg_;
  int64_t feature_channels_ = 0;
};

}  // namespace dmix::nn
