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
//
// Layers above nn/ add their own families with register_model_family (nas/ registers the
// DARTS evaluation networks, darts_cifar and darts_imagenet, through nas::register_models()).
// A family may take settings beyond the name, class count and input channels (a genotype,
// a depth): string key/value pairs that checkpoints store beside the model's name.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "nn/module.h"

namespace dmix::nn {

// A model's settings beyond its name, class count and input channels; empty for the
// families of nn/ itself, which reject any.
using ModelSettings = std::map<std::string, std::string>;

// Throws dmix::Error listing the known names when `name` is not one of them.
std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes, int64_t in_channels,
                                   Generator& gen);
std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes, int64_t in_channels);
std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes, int64_t in_channels,
                                   const ModelSettings& settings, Generator& gen);

// The ready-made names, followed by the generic patterns above and the registered families.
std::vector<std::string> model_names();

// A family of models that a higher layer builds. `names` are listed by model_names();
// `matches` says whether a name is the family's; `make` builds it (num_classes and
// in_channels already checked positive) and throws dmix::Error for settings it rejects.
struct ModelFamily {
  std::vector<std::string> names;
  std::function<bool(const std::string& name)> matches;
  std::function<std::shared_ptr<Module>(const std::string& name, int64_t num_classes, int64_t in_channels,
                                        const ModelSettings& settings, Generator& gen)>
      make;
};
// Families are tried in registration order before nn's own. Registering a family whose
// first name is already registered replaces it, so a layer may register idempotently.
void register_model_family(ModelFamily family);

}  // namespace dmix::nn
