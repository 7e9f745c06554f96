#include "nn/models/wide_resnet.h"

#include <string>

#include "engine/error.h"
#include "engine/ops.h"
#include "nn/models/model_util.h"

namespace dmix::nn {

using models_detail::make_bn;
using models_detail::make_conv;

WideBasicBlock::WideBasicBlock(int64_t in, int64_t planes, int64_t stride, Generator& gen) {
  bn1 = register_module("bn1", make_bn(in));
  conv1 = register_module("conv1", make_conv(in, planes, 3, 1, 1, gen, /*bias=*/true));
  bn2 = register_module("bn2", make_bn(planes));
  conv2 = register_module("conv2", make_conv(planes, planes, 3, stride, 1, gen, /*bias=*/true));
  if (stride != 1 || in != planes) {
    shortcut = register_module("shortcut", std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
                                               make_conv(in, planes, 1, stride, 0, gen, /*bias=*/true)}));
  }
}

Tensor WideBasicBlock::forward(const Tensor& x) {
  Tensor out = conv1->forward(relu(bn1->forward(x)));
  out = conv2->forward(relu(bn2->forward(out)));
  return add(out, shortcut ? shortcut->forward(x) : x);
}

WideResNet::WideResNet(const WideResNetConfig& cfg, Generator& gen) : cfg_(cfg) {
  const char* op = "WideResNet";
  check(cfg.depth >= 10 && (cfg.depth - 4) % 6 == 0, op, "depth must be 6n+4 with n >= 1, got ", cfg.depth);
  check(cfg.widen_factor > 0 && cfg.num_classes > 0 && cfg.in_channels > 0 && cfg.stem_stride > 0, op,
        "widen_factor, num_classes, in_channels and stem_stride must be positive");
  const int64_t n = (cfg.depth - 4) / 6;
  const int64_t k = cfg.widen_factor;
  const int64_t widths[3] = {16 * k, 32 * k, 64 * k};

  conv1 = register_module("conv1", make_conv(cfg.in_channels, 16, 3, cfg.stem_stride, 1, gen, /*bias=*/true));
  int64_t in = 16;
  for (int stage = 0; stage < 3; ++stage) {
    auto seq = std::make_shared<Sequential>();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t stride = (stage > 0 && i == 0) ? 2 : 1;
      seq->push_back(std::make_shared<WideBasicBlock>(in, widths[stage], stride, gen));
      in = widths[stage];
    }
    layers.push_back(register_module("layer" + std::to_string(stage + 1), seq));
  }
  feature_channels_ = in;
  bn1 = register_module("bn1", make_bn(in, /*momentum=*/0.9));
  linear = register_module("linear", std::make_shared<Linear>(in, cfg.num_classes, true, gen));
}

Tensor WideResNet::features(const Tensor& x) {
  check(x.dim() == 4 && x.size(1) == cfg_.in_channels, "WideResNet", "expected input (N, ", cfg_.in_channels,
        ", H, W), got ", shape_str(x.shape()));
  Tensor h = conv1->forward(x);
  for (auto& layer : layers) h = layer->forward(h);
  return global_avg_pool2d(relu(bn1->forward(h)));
}

Tensor WideResNet::forward(const Tensor& x) { return linear->forward(features(x)); }

}  // namespace dmix::nn
