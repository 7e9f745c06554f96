#include "nn/models/resnext.h"

#include <cmath>
#include <string>

#include "engine/error.h"
#include "engine/ops.h"
#include "nn/models/model_util.h"

namespace dmix::nn {

using models_detail::make_bn;
using models_detail::make_conv;

ResNeXtBottleneck::ResNeXtBottleneck(int64_t in, int64_t planes, int64_t cardinality, int64_t base_width,
                                     int64_t stride, Generator& gen) {
  // The reference's floor(planes * (base_width / 64.0)); dividing by 64 is exact in floating point.
  const int64_t group_width = planes * base_width / 64;
  const int64_t width = group_width * cardinality;
  check(width > 0, "ResNeXt", "block width is zero: planes ", planes, ", base_width ", base_width);
  conv_reduce = register_module("conv_reduce", make_conv(in, width, 1, 1, 0, gen));
  bn_reduce = register_module("bn_reduce", make_bn(width));
  conv_conv = register_module("conv_conv", make_conv(width, width, 3, stride, 1, gen, false, cardinality));
  bn = register_module("bn", make_bn(width));
  conv_expand = register_module("conv_expand", make_conv(width, planes * expansion, 1, 1, 0, gen));
  bn_expand = register_module("bn_expand", make_bn(planes * expansion));
  if (stride != 1 || in != planes * expansion) {
    downsample = register_module("downsample", std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
                                                   make_conv(in, planes * expansion, 1, stride, 0, gen),
                                                   make_bn(planes * expansion)}));
  }
}

Tensor ResNeXtBottleneck::forward(const Tensor& x) {
  Tensor out = relu(bn_reduce->forward(conv_reduce->forward(x)));
  out = relu(bn->forward(conv_conv->forward(out)));
  out = bn_expand->forward(conv_expand->forward(out));
  return relu(add(downsample ? downsample->forward(x) : x, out));
}

ResNeXt::ResNeXt(const ResNeXtConfig& cfg, Generator& gen) : cfg_(cfg) {
  const char* op = "ResNeXt";
  check(cfg.depth >= 11 && (cfg.depth - 2) % 9 == 0, op, "depth must be 9n+2 with n >= 1, got ", cfg.depth);
  check(cfg.cardinality > 0 && cfg.base_width > 0 && cfg.num_classes > 0 && cfg.in_channels > 0, op,
        "cardinality, base_width, num_classes and in_channels must be positive");
  const int64_t n = (cfg.depth - 2) / 9;

  conv_1_3x3 = register_module("conv_1_3x3", make_conv(cfg.in_channels, 64, 3, 1, 1, gen));
  bn_1 = register_module("bn_1", make_bn(64));
  int64_t in = 64;
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t planes = int64_t(64) << stage;
    auto seq = std::make_shared<Sequential>();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t stride = (stage > 0 && i == 0) ? 2 : 1;
      seq->push_back(std::make_shared<ResNeXtBottleneck>(in, planes, cfg.cardinality, cfg.base_width, stride, gen));
      in = planes * ResNeXtBottleneck::expansion;
    }
    stages.push_back(register_module("stage_" + std::to_string(stage + 1), seq));
  }
  feature_channels_ = in;
  classifier = register_module("classifier", std::make_shared<Linear>(in, cfg.num_classes, true, gen));
  // init.kaiming_normal(weight) (fan-in, gain sqrt 2) and a zero bias, as the reference.
  autograd::NoGradGuard no_grad;
  classifier->weight.copy_(gen.normal(classifier->weight.shape(), 0.0, std::sqrt(2.0 / double(in))));
  classifier->bias.zero_();
}

Tensor ResNeXt::features(const Tensor& x) {
  check(x.dim() == 4 && x.size(1) == cfg_.in_channels, "ResNeXt", "expected input (N, ", cfg_.in_channels,
        ", H, W), got ", shape_str(x.shape()));
  Tensor h = relu(bn_1->forward(conv_1_3x3->forward(x)));
  for (auto& stage : stages) h = stage->forward(h);
  return global_avg_pool2d(h);
}

Tensor ResNeXt::forward(const Tensor& x) { return classifier->forward(features(x)); }

}  // namespace dmix::nn
