// Models by name, for the CLI, benchmarks and checkpoints' model config.
//
// Names (num_classes and in_channels are free for every one):
//   pyramidnet<depth>_a<alpha>[_basic][_imagenet]  PyramidNet, CIFAR stem and bottleneck blocks
//       unless suffixed: pyramidnet110_a64, pyramidnet200_a240 (CutMix's CIFAR models),
//       pyramidnet20_a48 (small, for Fashion-MNIST), pyramidnet50_a300_imagenet, ...
//   resnet18 resnet34 resnet50 resnet101 resnet152    torchvision ResNets (v1.5)
//   preactresnet18|34|50|101|152                       PuzzleMix / Co-Mixup CIFAR PreActResNets
//   wrn<depth>_<widen>                                 CIFAR Wide ResNets, e.g. wrn16_8, wrn28_10
//   resnext<depth>_<cardinality>_<base width>          CIFAR ResNeXts, e.g. resnext29_4_24
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "nn/module.h"

namespace dmix::nn {

// Throws dmix::Error listing the known names when `name` is not one of them.
std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes, int64_t in_channels,
                                   Generator& gen);
std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes, int64_t in_channels);

// The ready-made names, followed by the generic patterns above.
std::vector<std::string> model_names();

}  // namespace dmix::nn
