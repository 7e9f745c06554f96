// PC-DARTS in a few calls: the search space's primitives, genotypes (DARTS's JSON files and
// the built-ins DARTS_V1, DARTS_V2, PC_DARTS_cifar, PC_DARTS_image) and the evaluation
// networks built from a genotype, which are registry models (darts_cifar, darts_imagenet)
// whose checkpoints hold their genotype, so load_model() rebuilds them from the file alone.
//
//   dmix::ModelSpec spec = dmix::darts_model_spec("darts_cifar", 10, 3, "genotype.json");
//   auto model = dmix::build_model(spec, device);        // nas::EvalNetwork, 20 cells, C = 36
//   auto* net = dynamic_cast<dmix::nas::EvalNetwork*>(model.get());
//   net->set_drop_path_prob(0.3 * epoch / epochs);
//   Tensor logits = net->forward(x);                     // training mode: also net->auxiliary_logits()
//   dmix::save_model("darts.safetensors", *model, spec);
#pragma once
#include <cstdint>
#include <string>

#include "dmix/model_io.h"
#include "nas/eval_network.h"
#include "nas/genotype.h"
#include "nas/operations.h"

namespace dmix {

// The ModelSpec of a DARTS evaluation network: `name` is darts_cifar or darts_imagenet;
// `genotype` a built-in name or a JSON file ("" for the name's default, PC_DARTS_cifar or
// PC_DARTS_image); layers and init_channels 0 for the reference's (20 and 36, 14 and 48);
// `auxiliary` builds the auxiliary head. The settings hold the genotype as JSON text.
inline ModelSpec darts_model_spec(const std::string& name, int64_t num_classes, int64_t in_channels,
                                  const std::string& genotype = "", int64_t layers = 0, int64_t init_channels = 0,
                                  bool auxiliary = true) {
  nn::ModelSettings raw{{"auxiliary", auxiliary ? "true" : "false"}};
  if (!genotype.empty()) raw["genotype"] = nas::genotype_to_json(nas::load_genotype(genotype));
  if (layers > 0) raw["layers"] = std::to_string(layers);
  if (init_channels > 0) raw["init_channels"] = std::to_string(init_channels);
  const nas::EvalNetworkConfig config = nas::eval_network_config(name, num_classes, in_channels, raw);
  return {name, num_classes, in_channels, nas::eval_network_settings(config)};
}

}  // namespace dmix
