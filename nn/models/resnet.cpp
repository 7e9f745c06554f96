#include "nn/models/resnet.h"

#include <map>
#include <string>

#include "engine/error.h"
#include "engine/ops.h"
#include "nn/models/model_util.h"

namespace dmix::nn {

using models_detail::make_bn;
using models_detail::make_conv;
using models_detail::pool_options;

namespace {

// torchvision's projection shortcut: Sequential(conv1x1(stride), BN), children "0" and "1".
std::shared_ptr<Sequential> make_projection(int64_t in, int64_t out, int64_t stride, Generator& gen) {
  if (stride == 1 && in == out) return nullptr;
  return std::make_shared<Sequential>(
      std::vector<std::shared_ptr<Module>>{make_conv(in, out, 1, stride, 0, gen), make_bn(out)});
}

}  // namespace

ResNetBasicBlock::ResNetBasicBlock(int64_t in, int64_t planes, int64_t stride, Generator& gen) {
  conv1 = register_module("conv1", make_conv(in, planes, 3, stride, 1, gen));
  bn1 = register_module("bn1", make_bn(planes));
  conv2 = register_module("conv2", make_conv(planes, planes, 3, 1, 1, gen));
  bn2 = register_module("bn2", make_bn(planes));
  downsample = make_projection(in, planes * expansion, stride, gen);
  if (downsample) register_module("downsample", downsample);
}

Tensor ResNetBasicBlock::forward(const Tensor& x) {
  Tensor out = relu(bn1->forward(conv1->forward(x)));
  out = bn2->forward(conv2->forward(out));
  return relu(add(out, downsample ? downsample->forward(x) : x));
}

ResNetBottleneck::ResNetBottleneck(int64_t in, int64_t planes, int64_t stride, Generator& gen) {
  conv1 = register_module("conv1", make_conv(in, planes, 1, 1, 0, gen));
  bn1 = register_module("bn1", make_bn(planes));
  conv2 = register_module("conv2", make_conv(planes, planes, 3, stride, 1, gen));
  bn2 = register_module("bn2", make_bn(planes));
  conv3 = register_module("conv3", make_conv(planes, planes * expansion, 1, 1, 0, gen));
  bn3 = register_module("bn3", make_bn(planes * expansion));
  downsample = make_projection(in, planes * expansion, stride, gen);
  if (downsample) register_module("downsample", downsample);
}

Tensor ResNetBottleneck::forward(const Tensor& x) {
  Tensor out = relu(bn1->forward(conv1->forward(x)));
  out = relu(bn2->forward(conv2->forward(out)));
  out = bn3->forward(conv3->forward(out));
  return relu(add(out, downsample ? downsample->forward(x) : x));
}

ResNet::ResNet(const ResNetConfig& cfg, Generator& gen) : cfg_(cfg) {
  const char* op = "ResNet";
  static const std::map<int64_t, std::vector<int64_t>> table{
      {18, {2, 2, 2, 2}}, {34, {3, 4, 6, 3}}, {50, {3, 4, 6, 3}}, {101, {3, 4, 23, 3}}, {152, {3, 8, 36, 3}}};
  auto it = table.find(cfg.depth);
  check(it != table.end(), op, "depth must be 18, 34, 50, 101 or 152, got ", cfg.depth);
  check(cfg.num_classes > 0 && cfg.in_channels > 0, op, "num_classes (", cfg.num_classes, ") and in_channels (",
        cfg.in_channels, ") must be positive");
  const bool bottleneck = cfg.depth >= 50;
  const int64_t expansion = bottleneck ? ResNetBottleneck::expansion : ResNetBasicBlock::expansion;

  conv1 = register_module("conv1", make_conv(cfg.in_channels, 64, 7, 2, 3, gen));
  bn1 = register_module("bn1", make_bn(64));
  maxpool = register_module("maxpool", std::make_shared<MaxPool2d>(pool_options(3, 2, 1)));

  int64_t in = 64;
  for (size_t stage = 0; stage < 4; ++stage) {
    const int64_t planes = int64_t(64) << stage;
    auto seq = std::make_shared<Sequential>();
    for (int64_t i = 0; i < it->second[stage]; ++i) {
      const int64_t stride = (stage > 0 && i == 0) ? 2 : 1;
      if (bottleneck)
        seq->push_back(std::make_shared<ResNetBottleneck>(in, planes, stride, gen));
      else
        seq->push_back(std::make_shared<ResNetBasicBlock>(in, planes, stride, gen));
      in = planes * expansion;
    }
    layers.push_back(register_module("layer" + std::to_string(stage + 1), seq));
  }
  feature_channels_ = in;
  fc = register_module("fc", std::make_shared<Linear>(in, cfg.num_classes, true, gen));
}

Tensor ResNet::features(const Tensor& x) {
  check(x.dim() == 4 && x.size(1) == cfg_.in_channels, "ResNet", "expected input (N, ", cfg_.in_channels,
        ", H, W), got ", shape_str(x.shape()));
  Tensor h = maxpool->forward(relu(bn1->forward(conv1->forward(x))));
  for (auto& layer : layers) h = layer->forward(h);
  return global_avg_pool2d(h);
}

Tensor ResNet::forward(const Tensor& x) { return fc->forward(features(x)); }

}  // namespace dmix::nn
