// The DARTS evaluation networks built from a genotype, as quark0/darts model.py (which
// PC-DARTS reuses) defines them, with its parameter names:
//
//   NetworkCIFAR (darts_cifar; 20 cells, C = 36 by default):
//     stem (conv 3x3 in -> 3C, BN), cells.0..L-1, auxiliary_head, classifier
//   NetworkImageNet (darts_imagenet; 14 cells, C = 48 by default):
//     stem0 (conv 3x3/2 in -> C/2, BN, ReLU, conv 3x3/2 -> C, BN), stem1 (ReLU, conv 3x3/2, BN), cells, ...
//
// Cells L/3 and 2L/3 are reduction cells (channels double, resolution halves). A cell
// preprocesses its two inputs (the outputs of the two cells before it) to C channels with
// ReLUConvBN 1x1 (`preprocess0`, `preprocess1`; FactorizedReduce for preprocess0 after a
// reduction cell), runs the genotype's 8 edges (`_ops.0..7`; stride 2 on edges from the
// inputs of a reduction cell) and concatenates the nodes of the genotype's concat list.
//
// The auxiliary head (`auxiliary_head.features`, `auxiliary_head.classifier`) reads the
// output of cell 2L/3 in training mode: ReLU, 5x5 average pool (stride 3 for CIFAR, 2 for
// ImageNet, padding excluded), 1x1 conv to 128, BN, ReLU, 2x2 conv to 768, BN (CIFAR only,
// as the reference), ReLU, Linear. The reference assumes that pool leaves a 2x2 map (8x8
// CIFAR maps, 7x7 ImageNet maps); where it would not (Fashion-MNIST's 28x28 images give 7x7
// maps), the head pools adaptively to 2x2 instead, so any input size works. Likewise the
// final pooling is global (the reference's AvgPool2d(7) at 224x224).
//
// Drop-path (training mode, probability set per epoch by the trainer): the output of every
// edge except identities is zeroed per sample with probability p and scaled by 1/(1 - p)
// otherwise, drawn from the default generator (saved in checkpoints, so resumes are exact).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine/rng.h"
#include "nas/genotype.h"
#include "nn/layers.h"
#include "nn/models/registry.h"
#include "nn/module.h"

namespace dmix::nas {

struct EvalNetworkConfig {
  Genotype genotype;
  int64_t init_channels = 36;  // C
  int64_t layers = 20;         // cells
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  bool auxiliary = true;       // build the auxiliary head (its loss weight is the trainer's)
  bool imagenet = false;       // NetworkImageNet instead of NetworkCIFAR
};

// The reference configurations: NetworkCIFAR(36, 10, 20, aux, PC_DARTS_cifar) and
// NetworkImageNet(48, 1000, 14, aux, PC_DARTS_image).
EvalNetworkConfig cifar_network_config();
EvalNetworkConfig imagenet_network_config();

class EvalCell : public nn::Module {
 public:
  EvalCell(const Genotype& genotype, int64_t c_prev_prev, int64_t c_prev, int64_t c, bool reduction,
           bool reduction_prev, Generator& gen);
  // A cell reads two states; forward(x) is cell(x, x).
  Tensor forward(const Tensor& x) override { return forward(x, x, 0.0); }
  Tensor forward(const Tensor& s0, const Tensor& s1, double drop_prob);
  int64_t out_channels() const { return out_channels_; }
  bool reduction() const { return reduction_; }

  std::shared_ptr<nn::Module> preprocess0, preprocess1;
  std::shared_ptr<nn::Sequential> ops;  // "_ops"

 private:
  std::vector<int64_t> inputs_, concat_;
  int64_t out_channels_;
  bool reduction_;
};

class AuxiliaryHead : public nn::Module {
 public:
  AuxiliaryHead(int64_t channels, int64_t num_classes, bool imagenet, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::Linear> classifier;

 private:
  int64_t pool_stride_;
};

class EvalNetwork : public nn::Module {
 public:
  explicit EvalNetwork(const EvalNetworkConfig& config, Generator& gen = default_generator());
  // The logits. In training mode with an auxiliary head, the head's logits of the same
  // forward are kept for auxiliary_logits().
  Tensor forward(const Tensor& x) override;
  // The auxiliary logits of the last forward, undefined unless it ran in training mode with
  // an auxiliary head. The reference trainer adds 0.4 x their cross-entropy to the loss.
  const Tensor& auxiliary_logits() const { return auxiliary_logits_; }

  // Drop-path probability of the edges, 0 (off) until set; the reference raises it
  // linearly, p = 0.3 * epoch / epochs for CIFAR.
  void set_drop_path_prob(double p);
  double drop_path_prob() const { return drop_path_prob_; }

  bool has_auxiliary() const { return auxiliary_head != nullptr; }
  // The figure papers report: every parameter but the auxiliary head's.
  int64_t num_parameters_without_auxiliary() const;
  const EvalNetworkConfig& config() const { return config_; }

  std::shared_ptr<nn::Sequential> stem, stem0, stem1;  // stem (CIFAR) or stem0, stem1 (ImageNet)
  std::shared_ptr<nn::Sequential> cells;
  std::shared_ptr<AuxiliaryHead> auxiliary_head;  // null without one
  std::shared_ptr<nn::Linear> classifier;

 private:
  EvalNetworkConfig config_;
  int64_t auxiliary_cell_;
  double drop_path_prob_ = 0.0;
  Tensor auxiliary_logits_;
};

// ---- the registry names darts_cifar and darts_imagenet -------------------------------
// Their nn::ModelSettings, all optional:
//   genotype       a built-in name or DARTS JSON text (default PC_DARTS_cifar / PC_DARTS_image)
//   layers         cells (default 20 / 14)
//   init_channels  C (default 36 / 48)
//   auxiliary      "true" or "false" (default true)
// A file path is not a setting: callers read the file (load_genotype) and pass its JSON,
// so a checkpoint holds everything its model needs.
bool is_eval_network_name(const std::string& name);
EvalNetworkConfig eval_network_config(const std::string& name, int64_t num_classes, int64_t in_channels,
                                      const nn::ModelSettings& settings);
// The settings that rebuild exactly this configuration (the genotype as JSON text).
nn::ModelSettings eval_network_settings(const EvalNetworkConfig& config);
// Throws a one-line error naming `what` unless `state` (a checkpoint's weights) has the stem
// width and the number of cells `config` asks for: a file's settings then cannot make the
// network larger than its own tensors, whose sizes its bytes bound.
void check_weights_fit(const EvalNetworkConfig& config, const nn::StateDict& state, const std::string& what);
// Adds darts_cifar and darts_imagenet to nn::make_model / nn::model_names. Idempotent.
void register_models();

}  // namespace dmix::nas
