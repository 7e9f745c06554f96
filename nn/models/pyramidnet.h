// PyramidNet (Han et al., "Deep Pyramidal Residual Networks"), as clovaai/CutMix-PyTorch's
// pyramidnet.py builds it (DCutMix uses an identical copy), with the same parameter names:
//   conv1, bn1, layer{1..K}.{i}.{bn1,conv1,bn2,conv2,bn3[,conv3,bn4]}, bn_final, fc.
//
// The width grows additively: a running float width d starts at the stem width and each
// block adds alpha / (number of blocks); a block's `planes` is Python's round(d) (ties
// to even). Shortcuts carry no parameters: identity, or AvgPool2d(2, 2, ceil_mode) where the
// block strides, then zero channels appended where the residual is wider. There is no
// ReLU after the addition. The head is BN -> ReLU -> global average pool -> fc, so any
// input size works (the reference's AvgPool2d(8) / (7) equal it at 32x32 / 224x224).
//
// Two variants, as in the reference:
//  - cifar: 3x3 stem conv (16 channels) + BN (no ReLU), 3 stages of n blocks each, with
//    n = (depth-2)/9 bottleneck or (depth-2)/6 basic blocks, strides 1, 2, 2.
//  - imagenet: 7x7/2 stem conv (64 channels) + BN + ReLU + maxpool 3/2, 4 stages with the
//    layer table {18:[2,2,2,2], 34:[3,4,6,3], 50:[3,4,6,3], 101:[3,4,23,3], 152:[3,8,36,3],
//    200:[3,24,36,3]} (basic blocks for 18 and 34, bottlenecks otherwise); other depths get
//    (depth-2)/12 bottleneck or (depth-2)/8 basic blocks per stage.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/rng.h"
#include "nn/layers.h"

namespace dmix::nn {

struct PyramidNetConfig {
  int64_t depth = 110;
  double alpha = 64;  // total width added over all blocks (the paper's alpha-tilde)
  int64_t num_classes = 100;
  int64_t in_channels = 3;
  bool bottleneck = true;  // imagenet variant: only consulted for depths outside the table
  bool imagenet = false;
};

// BN -> conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, + shortcut.
class PyramidBasicBlock : public Module {
 public:
  static constexpr int64_t expansion = 1;
  PyramidBasicBlock(int64_t in_channels, int64_t planes, int64_t stride, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<AvgPool2d> downsample;  // null where the block does not stride
};

// BN -> conv1x1 -> BN -> ReLU -> conv3x3(stride) -> BN -> ReLU -> conv1x1(4 planes) -> BN, + shortcut.
class PyramidBottleneck : public Module {
 public:
  static constexpr int64_t expansion = 4;
  PyramidBottleneck(int64_t in_channels, int64_t planes, int64_t stride, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<BatchNorm2d> bn1, bn2, bn3, bn4;
  std::shared_ptr<Conv2d> conv1, conv2, conv3;
  std::shared_ptr<AvgPool2d> downsample;
};

class PyramidNet : public Module {
 public:
  explicit PyramidNet(const PyramidNetConfig& cfg, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  // The pooled features the classifier sees: (N, feature_channels()).
  Tensor features(const Tensor& x);
  const PyramidNetConfig& config() const { return cfg_; }
  int64_t feature_channels() const { return feature_channels_; }
  // Blocks per stage, in order.
  const std::vector<int64_t>& stage_blocks() const { return stage_blocks_; }

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1, bn_final;
  std::shared_ptr<MaxPool2d> maxpool;  // imagenet variant only
  std::vector<std::shared_ptr<Sequential>> layers;
  std::shared_ptr<Linear> fc;

 private:
  PyramidNetConfig cfg_;
  std::vector<int64_t> stage_blocks_;
  int64_t feature_channels_ = 0;
};

}  // namespace dmix::nn
