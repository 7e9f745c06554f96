#include "nn/models/preact_resnet.h"

#include <map>
#include <string>

#include "engine/error.h"
#include "engine/ops.h"
#include "nn/models/model_util.h"

namespace dmix::nn {

using models_detail::make_bn;
using models_detail::make_conv;

namespace {

// PuzzleMix's preresnet.py keeps nn.Conv2d's default init (no re-initialisation), so
// this model does too. Note that without a final batch norm the residual stream is not
// normalised: at lr 0.1, batch 128 and no warm-up PreActResNet-18 diverges on
// Fashion-MNIST within 20 steps, in PyTorch as here (checked with the same recipe).
constexpr ConvInit kInit = ConvInit::PyTorchDefault;

std::shared_ptr<Sequential> make_shortcut(int64_t in, int64_t out, int64_t stride, Generator& gen) {
  if (stride == 1 && in == out) return nullptr;
  return std::make_shared<Sequential>(
      std::vector<std::shared_ptr<Module>>{make_conv(in, out, 1, stride, 0, gen, false, 1, kInit)});
}

}  // namespace

PreActBlock::PreActBlock(int64_t in, int64_t planes, int64_t stride, Generator& gen) {
  bn1 = register_module("bn1", make_bn(in));
  conv1 = register_module("conv1", make_conv(in, planes, 3, stride, 1, gen, false, 1, kInit));
  bn2 = register_module("bn2", make_bn(planes));
  conv2 = register_module("conv2", make_conv(planes, planes, 3, 1, 1, gen, false, 1, kInit));
  shortcut = make_shortcut(in, planes * expansion, stride, gen);
  if (shortcut) register_module("shortcut", shortcut);
}

Tensor PreActBlock::forward(const Tensor& x) {
  Tensor pre = relu(bn1->forward(x));
  // The projection reads the pre-activated input, the identity the raw one (as the reference).
  Tensor skip = shortcut ? shortcut->forward(pre) : x;
  Tensor out = conv1->forward(pre);
  out = conv2->forward(relu(bn2->forward(out)));
  return add(out, skip);
}

PreActBottleneck::PreActBottleneck(int64_t in, int64_t planes, int64_t stride, Generator& gen) {
  bn1 = register_module("bn1", make_bn(in));
  conv1 = register_module("conv1", make_conv(in, planes, 1, 1, 0, gen, false, 1, kInit));
  bn2 = register_module("bn2", make_bn(planes));
  conv2 = register_module("conv2", make_conv(planes, planes, 3, stride, 1, gen, false, 1, kInit));
  bn3 = register_module("bn3", make_bn(planes));
  conv3 = register_module("conv3", make_conv(planes, planes * expansion, 1, 1, 0, gen, false, 1, kInit));
  shortcut = make_shortcut(in, planes * expansion, stride, gen);
  if (shortcut) register_module("shortcut", shortcut);
}

Tensor PreActBottleneck::forward(const Tensor& x) {
  Tensor pre = relu(bn1->forward(x));
  Tensor skip = shortcut ? shortcut->forward(pre) : x;
  Tensor out = conv1->forward(pre);
  out = conv2->forward(relu(bn2->forward(out)));
  out = conv3->forward(relu(bn3->forward(out)));
  return add(out, skip);
}

PreActResNet::PreActResNet(const PreActResNetConfig& cfg, Generator& gen) : cfg_(cfg) {
  const char* op = "PreActResNet";
  static const std::map<int64_t, std::vector<int64_t>> table{
      {18, {2, 2, 2, 2}}, {34, {3, 4, 6, 3}}, {50, {3, 4, 6, 3}}, {101, {3, 4, 23, 3}}, {152, {3, 8, 36, 3}}};
  auto it = table.find(cfg.depth);
  check(it != table.end(), op, "depth must be 18, 34, 50, 101 or 152, got ", cfg.depth);
  check(cfg.num_classes > 0 && cfg.in_channels > 0 && cfg.initial_channels > 0 && cfg.stem_stride > 0, op,
        "num_classes, in_channels, initial_channels and stem_stride must be positive");
  const bool bottleneck = cfg.depth >= 50;
  const int64_t expansion = bottleneck ? PreActBottleneck::expansion : PreActBlock::expansion;

  conv1 = register_module("conv1",
                          make_conv(cfg.in_channels, cfg.initial_channels, 3, cfg.stem_stride, 1, gen, false, 1, kInit));
  int64_t in = cfg.initial_channels;
  for (size_t stage = 0; stage < 4; ++stage) {
    const int64_t planes = cfg.initial_channels << stage;
    auto seq = std::make_shared<Sequential>();
    for (int64_t i = 0; i < it->second[stage]; ++i) {
      const int64_t stride = (stage > 0 && i == 0) ? 2 : 1;
      if (bottleneck)
        seq->push_back(std::make_shared<PreActBottleneck>(in, planes, stride, gen));
      else
        seq->push_back(std::make_shared<PreActBlock>(in, planes, stride, gen));
      in = planes * expansion;
    }
    layers.push_back(register_module("layer" + std::to_string(stage + 1), seq));
  }
  feature_channels_ = in;
  linear = register_module("linear", std::make_shared<Linear>(in, cfg.num_classes, true, gen));
}

Tensor PreActResNet::features(const Tensor& x) {
  check(x.dim() == 4 && x.size(1) == cfg_.in_channels, "PreActResNet", "expected input (N, ", cfg_.in_channels,
        ", H, W), got ", shape_str(x.shape()));
  Tensor h = conv1->forward(x);
  for (auto& layer : layers) h = layer->forward(h);
  return global_avg_pool2d(h);
}

Tensor PreActResNet::forward(const Tensor& x) { return linear->forward(features(x)); }

}  // namespace dmix::nn
