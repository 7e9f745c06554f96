#include "nn/models/pyramidnet.h"

#include <map>
#include <numeric>
#include <string>

#include "engine/error.h"
#include "engine/ops.h"
#include "nn/models/model_util.h"

namespace dmix::nn {

using models_detail::make_bn;
using models_detail::make_conv;
using models_detail::pool_options;
using models_detail::python_round;

namespace {

// The parameter-free shortcut: pooled where the block strides, then zero channels
// appended up to the residual's width (the reference concatenates a zero tensor).
Tensor pyramid_shortcut(const Tensor& x, const std::shared_ptr<AvgPool2d>& downsample, const Tensor& residual) {
  Tensor s = downsample ? downsample->forward(x) : x;
  const int64_t extra = residual.size(1) - s.size(1);
  check(extra >= 0, "PyramidNet", "shortcut has ", s.size(1), " channels, more than the residual's ", residual.size(1));
  return extra > 0 ? pad_channels(s, extra) : s;
}

std::shared_ptr<AvgPool2d> make_downsample(int64_t stride) {
  // AvgPool2d((2,2), stride=(2,2), ceil_mode=True): on odd sizes it matches the strided
  // 3x3 conv's ceil(H/2) output.
  return stride != 1 ? std::make_shared<AvgPool2d>(pool_options(2, 2, 0, /*ceil_mode=*/true)) : nullptr;
}

}  // namespace

PyramidBasicBlock::PyramidBasicBlock(int64_t in, int64_t planes, int64_t stride, Generator& gen) {
  bn1 = register_module("bn1", make_bn(in));
  conv1 = register_module("conv1", make_conv(in, planes, 3, stride, 1, gen));
  bn2 = register_module("bn2", make_bn(planes));
  conv2 = register_module("conv2", make_conv(planes, planes, 3, 1, 1, gen));
  bn3 = register_module("bn3", make_bn(planes));
  downsample = make_downsample(stride);
  if (downsample) register_module("downsample", downsample);
}

Tensor PyramidBasicBlock::forward(const Tensor& x) {
  Tensor out = conv1->forward(bn1->forward(x));
  out = conv2->forward(relu(bn2->forward(out)));
  out = bn3->forward(out);
  return add(out, pyramid_shortcut(x, downsample, out));
}

PyramidBottleneck::PyramidBottleneck(int64_t in, int64_t planes, int64_t stride, Generator& gen) {
  bn1 = register_module("bn1", make_bn(in));
  conv1 = register_module("conv1", make_conv(in, planes, 1, 1, 0, gen));
  bn2 = register_module("bn2", make_bn(planes));
  conv2 = register_module("conv2", make_conv(planes, planes, 3, stride, 1, gen));
  bn3 = register_module("bn3", make_bn(planes));
  conv3 = register_module("conv3", make_conv(planes, planes * expansion, 1, 1, 0, gen));
  bn4 = register_module("bn4", make_bn(planes * expansion));
  downsample = make_downsample(stride);
  if (downsample) register_module("downsample", downsample);
}

Tensor PyramidBottleneck::forward(const Tensor& x) {
  Tensor out = conv1->forward(bn1->forward(x));
  out = conv2->forward(relu(bn2->forward(out)));
  out = conv3->forward(relu(bn3->forward(out)));
  out = bn4->forward(out);
  return add(out, pyramid_shortcut(x, downsample, out));
}

PyramidNet::PyramidNet(const PyramidNetConfig& cfg, Generator& gen) : cfg_(cfg) {
  const char* op = "PyramidNet";
  check(cfg.num_classes > 0 && cfg.in_channels > 0, op, "num_classes (", cfg.num_classes, ") and in_channels (",
        cfg.in_channels, ") must be positive");
  check(cfg.alpha >= 0, op, "alpha must be non-negative, got ", cfg.alpha);

  bool bottleneck = cfg.bottleneck;
  int64_t stem_width = 16;
  if (!cfg.imagenet) {
    const int64_t n = bottleneck ? (cfg.depth - 2) / 9 : (cfg.depth - 2) / 6;
    check(n >= 1, op, "depth ", cfg.depth, " is too small for ", bottleneck ? "bottleneck" : "basic",
          " blocks (needs at least ", bottleneck ? 11 : 8, ")");
    stage_blocks_ = {n, n, n};
  } else {
    stem_width = 64;
    static const std::map<int64_t, std::vector<int64_t>> table{
        {18, {2, 2, 2, 2}}, {34, {3, 4, 6, 3}}, {50, {3, 4, 6, 3}}, {101, {3, 4, 23, 3}}, {152, {3, 8, 36, 3}},
        {200, {3, 24, 36, 3}}};
    auto it = table.find(cfg.depth);
    if (it != table.end()) {
      stage_blocks_ = it->second;
      bottleneck = cfg.depth >= 50;
    } else {
      const int64_t n = bottleneck ? (cfg.depth - 2) / 12 : (cfg.depth - 2) / 8;
      check(n >= 1, op, "depth ", cfg.depth, " is too small for the imagenet variant with ",
            bottleneck ? "bottleneck" : "basic", " blocks");
      stage_blocks_ = {n, n, n, n};
    }
  }
  cfg_.bottleneck = bottleneck;
  const int64_t total_blocks = std::accumulate(stage_blocks_.begin(), stage_blocks_.end(), int64_t(0));
  // Evaluated exactly as the reference's alpha / (3*n*1.0), so the running width, and
  // with it every rounding decision, is bit-identical.
  const double addrate = cfg.alpha / double(total_blocks);
  const int64_t expansion = bottleneck ? PyramidBottleneck::expansion : PyramidBasicBlock::expansion;

  if (!cfg.imagenet) {
    conv1 = register_module("conv1", make_conv(cfg.in_channels, stem_width, 3, 1, 1, gen));
    bn1 = register_module("bn1", make_bn(stem_width));
  } else {
    conv1 = register_module("conv1", make_conv(cfg.in_channels, stem_width, 7, 2, 3, gen));
    bn1 = register_module("bn1", make_bn(stem_width));
    maxpool = register_module("maxpool", std::make_shared<MaxPool2d>(pool_options(3, 2, 1)));
  }

  auto make_block = [&](int64_t in, int64_t planes, int64_t stride) -> std::shared_ptr<Module> {
    if (bottleneck) return std::make_shared<PyramidBottleneck>(in, planes, stride, gen);
    return std::make_shared<PyramidBasicBlock>(in, planes, stride, gen);
  };

  // pyramidal_make_layer: the running width d and the next block's input width.
  double width = double(stem_width);
  int64_t input_channels = stem_width;
  for (size_t stage = 0; stage < stage_blocks_.size(); ++stage) {
    const int64_t stride = stage == 0 ? 1 : 2;
    auto seq = std::make_shared<Sequential>();
    width += addrate;
    seq->push_back(make_block(input_channels, python_round(width), stride));
    for (int64_t i = 1; i < stage_blocks_[stage]; ++i) {
      const double next = width + addrate;
      seq->push_back(make_block(python_round(width) * expansion, python_round(next), 1));
      width = next;
    }
    input_channels = python_round(width) * expansion;
    layers.push_back(register_module("layer" + std::to_string(stage + 1), seq));
  }

  feature_channels_ = input_channels;
  bn_final = register_module("bn_final", make_bn(feature_channels_));
  fc = register_module("fc", std::make_shared<Linear>(feature_channels_, cfg.num_classes, true, gen));
}

Tensor PyramidNet::features(const Tensor& x) {
  check(x.dim() == 4 && x.size(1) == cfg_.in_channels, "PyramidNet", "expected input (N, ", cfg_.in_channels,
        ", H, W), got ", shape_str(x.shape()));
  Tensor h = bn1->forward(conv1->forward(x));
  if (maxpool) h = maxpool->forward(relu(h));
  for (auto& layer : layers) h = layer->forward(h);
  return global_avg_pool2d(relu(bn_final->forward(h)));
}

Tensor PyramidNet::forward(const Tensor& x) { return fc->forward(features(x)); }

}  // namespace dmix::nn
