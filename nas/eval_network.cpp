#include "nas/eval_network.h"

#include <mutex>

#include "engine/error.h"
#include "engine/ops.h"
#include "nas/operations.h"

namespace dmix::nas {

namespace {

std::shared_ptr<nn::Conv2d> conv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding,
                                 Generator& gen) {
  nn::Conv2dConfig c{c_in, c_out, kernel, stride, padding};
  c.init = nn::ConvInit::PyTorchDefault;
  return std::make_shared<nn::Conv2d>(c, gen);
}

// Per sample: zero with probability p, else scale by 1 / (1 - p) (utils.drop_path).
Tensor drop_path(const Tensor& x, double p) {
  const double keep = 1.0 - p;
  const Tensor mask = default_generator().bernoulli({x.size(0), 1, 1, 1}, keep, x.dtype(), x.device());
  return mul(mul_scalar(x, 1.0 / keep), mask);
}

bool is_reduction_cell(int64_t i, int64_t layers) { return i == layers / 3 || i == 2 * layers / 3; }

}  // namespace

EvalNetworkConfig cifar_network_config() {
  EvalNetworkConfig c;
  c.genotype = builtin_genotype("PC_DARTS_cifar");
  return c;
}

EvalNetworkConfig imagenet_network_config() {
  EvalNetworkConfig c;
  c.genotype = builtin_genotype("PC_DARTS_image");
  c.init_channels = 48;
  c.layers = 14;
  c.num_classes = 1000;
  c.imagenet = true;
  return c;
}

EvalCell::EvalCell(const Genotype& genotype, int64_t c_prev_prev, int64_t c_prev, int64_t c, bool reduction,
                   bool reduction_prev, Generator& gen)
    : reduction_(reduction) {
  if (reduction_prev)
    preprocess0 = register_module("preprocess0", std::make_shared<FactorizedReduce>(c_prev_prev, c, true, gen));
  else
    preprocess0 = register_module("preprocess0", std::make_shared<ReLUConvBN>(c_prev_prev, c, 1, 1, 0, true, gen));
  preprocess1 = register_module("preprocess1", std::make_shared<ReLUConvBN>(c_prev, c, 1, 1, 0, true, gen));
  const auto& edges = reduction ? genotype.reduce : genotype.normal;
  concat_ = reduction ? genotype.reduce_concat : genotype.normal_concat;
  ops = register_module("_ops", std::make_shared<nn::Sequential>());
  for (const auto& [name, input] : edges) {
    const int64_t stride = reduction && input < 2 ? 2 : 1;
    ops->push_back(make_primitive(name, c, stride, true, gen));
    inputs_.push_back(input);
  }
  out_channels_ = int64_t(concat_.size()) * c;
}

Tensor EvalCell::forward(const Tensor& s0, const Tensor& s1, double drop_prob) {
  TensorList states{preprocess0->forward(s0), preprocess1->forward(s1)};
  const bool drop = training() && drop_prob > 0.0;
  for (size_t node = 0; node < inputs_.size() / 2; ++node) {
    Tensor sum;
    for (size_t k = 2 * node; k < 2 * node + 2; ++k) {
      nn::Module& op = (*ops)[k];
      Tensor h = op.forward(states[size_t(inputs_[k])]);
      if (drop && !is_identity(op)) h = drop_path(h, drop_prob);
      sum = sum.defined() ? add(sum, h) : h;
    }
    states.push_back(sum);
  }
  TensorList out;
  for (int64_t n : concat_) out.push_back(states[size_t(n)]);
  return cat(out, 1);
}

AuxiliaryHead::AuxiliaryHead(int64_t channels, int64_t num_classes, bool imagenet, Generator& gen)
    : pool_stride_(imagenet ? 2 : 3) {
  features = register_module("features", std::make_shared<nn::Sequential>());
  Pool2dOptions pool;
  pool.kernel = {5, 5};
  pool.stride = {pool_stride_, pool_stride_};
  pool.count_include_pad = false;
  features->push_back(std::make_shared<nn::ReLU>());
  features->push_back(std::make_shared<nn::AvgPool2d>(pool));
  features->push_back(conv(channels, 128, 1, 1, 0, gen));
  features->push_back(std::make_shared<nn::BatchNorm2d>(128));
  features->push_back(std::make_shared<nn::ReLU>());
  features->push_back(conv(128, 768, 2, 1, 0, gen));
  // The ImageNet head has no BN here: the reference left it out of its experiments.
  if (!imagenet) features->push_back(std::make_shared<nn::BatchNorm2d>(768));
  features->push_back(std::make_shared<nn::ReLU>());
  classifier = register_module("classifier", std::make_shared<nn::Linear>(768, num_classes, true, gen));
}

Tensor AuxiliaryHead::forward(const Tensor& x) {
  check(x.dim() == 4, "AuxiliaryHead", "expects (N, C, H, W), got ", x.dim(), " dimensions");
  // The reference pool where it leaves the 2x2 map the 2x2 convolution turns into one
  // 768-vector; an adaptive 2x2 pool on maps of other sizes.
  const bool reference_pool = x.size(2) >= 5 && x.size(3) >= 5 && (x.size(2) - 5) / pool_stride_ == 1 &&
                              (x.size(3) - 5) / pool_stride_ == 1;
  Tensor h = (*features)[0].forward(x);
  h = reference_pool ? (*features)[1].forward(h) : adaptive_avg_pool2d(h, 2, 2);
  for (size_t i = 2; i < features->size(); ++i) h = (*features)[i].forward(h);
  return classifier->forward(h.flatten(1));
}

EvalNetwork::EvalNetwork(const EvalNetworkConfig& c, Generator& gen) : config_(c) {
  validate_genotype(c.genotype);
  check(c.init_channels > 0 && c.layers > 0 && c.num_classes > 0 && c.in_channels > 0, "EvalNetwork",
        "init_channels (", c.init_channels, "), layers (", c.layers, "), num_classes (", c.num_classes,
        ") and in_channels (", c.in_channels, ") must be positive");
  const int64_t C = c.init_channels;
  int64_t c_prev_prev, c_prev;
  if (c.imagenet) {
    check(C % 2 == 0, "EvalNetwork", "the ImageNet network needs an even init_channels, got ", C);
    stem0 = register_module("stem0", std::make_shared<nn::Sequential>());
    stem0->push_back(conv(c.in_channels, C / 2, 3, 2, 1, gen));
    stem0->push_back(std::make_shared<nn::BatchNorm2d>(C / 2));
    stem0->push_back(std::make_shared<nn::ReLU>());
    stem0->push_back(conv(C / 2, C, 3, 2, 1, gen));
    stem0->push_back(std::make_shared<nn::BatchNorm2d>(C));
    stem1 = register_module("stem1", std::make_shared<nn::Sequential>());
    stem1->push_back(std::make_shared<nn::ReLU>());
    stem1->push_back(conv(C, C, 3, 2, 1, gen));
    stem1->push_back(std::make_shared<nn::BatchNorm2d>(C));
    c_prev_prev = c_prev = C;
  } else {
    const int64_t stem_channels = 3 * C;
    stem = register_module("stem", std::make_shared<nn::Sequential>());
    stem->push_back(conv(c.in_channels, stem_channels, 3, 1, 1, gen));
    stem->push_back(std::make_shared<nn::BatchNorm2d>(stem_channels));
    c_prev_prev = c_prev = stem_channels;
  }
  cells = register_module("cells", std::make_shared<nn::Sequential>());
  // The ImageNet stem1 halves the resolution after stem0, so its first cell reduces s0.
  bool reduction_prev = c.imagenet;
  int64_t c_curr = C, c_auxiliary = 0;
  auxiliary_cell_ = 2 * c.layers / 3;
  for (int64_t i = 0; i < c.layers; ++i) {
    const bool reduction = is_reduction_cell(i, c.layers);
    if (reduction) c_curr *= 2;
    auto cell = std::make_shared<EvalCell>(c.genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, gen);
    cells->push_back(cell);
    reduction_prev = reduction;
    c_prev_prev = c_prev;
    c_prev = cell->out_channels();
    if (i == auxiliary_cell_) c_auxiliary = c_prev;
  }
  if (c.auxiliary)
    auxiliary_head = register_module("auxiliary_head",
                                     std::make_shared<AuxiliaryHead>(c_auxiliary, c.num_classes, c.imagenet, gen));
  classifier = register_module("classifier", std::make_shared<nn::Linear>(c_prev, c.num_classes, true, gen));
}

Tensor EvalNetwork::forward(const Tensor& x) {
  check(x.dim() == 4 && x.size(1) == config_.in_channels, "EvalNetwork", "expects (N, ", config_.in_channels,
        ", H, W) input, got ", shape_str(x.shape()));
  auxiliary_logits_ = Tensor();
  Tensor s0, s1;
  if (config_.imagenet) {
    s0 = stem0->forward(x);
    s1 = stem1->forward(s0);
  } else {
    s0 = s1 = stem->forward(x);
  }
  for (int64_t i = 0; i < config_.layers; ++i) {
    auto& cell = static_cast<EvalCell&>((*cells)[size_t(i)]);
    Tensor next = cell.forward(s0, s1, drop_path_prob_);
    s0 = s1;
    s1 = next;
    if (i == auxiliary_cell_ && auxiliary_head && training()) auxiliary_logits_ = auxiliary_head->forward(s1);
  }
  return classifier->forward(global_avg_pool2d(s1));
}

void EvalNetwork::set_drop_path_prob(double p) {
  check(p >= 0.0 && p < 1.0, "EvalNetwork", "drop-path probability must be in [0, 1), got ", p);
  drop_path_prob_ = p;
}

int64_t EvalNetwork::num_parameters_without_auxiliary() const {
  return num_parameters() - (auxiliary_head ? auxiliary_head->num_parameters() : 0);
}

// ---- registry ----------------------------------------------------------------------

bool is_eval_network_name(const std::string& name) { return name == "darts_cifar" || name == "darts_imagenet"; }

namespace {

int64_t positive_setting(const nn::ModelSettings& s, const std::string& key, int64_t fallback,
                         const std::string& name) {
  auto it = s.find(key);
  if (it == s.end()) return fallback;
  int64_t v = 0;
  size_t used = 0;
  try {
    v = std::stoll(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used > 0 && used == it->second.size() && v > 0 && v <= 100000, "make_model", name, ": setting ", key,
        " must be a positive integer, got '", it->second, "'");
  return v;
}

}  // namespace

EvalNetworkConfig eval_network_config(const std::string& name, int64_t num_classes, int64_t in_channels,
                                      const nn::ModelSettings& settings) {
  check(is_eval_network_name(name), "make_model", "'", name, "' is not darts_cifar or darts_imagenet");
  for (const auto& [key, value] : settings)
    check(key == "genotype" || key == "layers" || key == "init_channels" || key == "auxiliary", "make_model", name,
          ": unknown setting '", key, "' (known: genotype, layers, init_channels, auxiliary)");
  EvalNetworkConfig c = name == "darts_imagenet" ? imagenet_network_config() : cifar_network_config();
  c.num_classes = num_classes;
  c.in_channels = in_channels;
  c.layers = positive_setting(settings, "layers", c.layers, name);
  c.init_channels = positive_setting(settings, "init_channels", c.init_channels, name);
  if (auto it = settings.find("auxiliary"); it != settings.end()) {
    check(it->second == "true" || it->second == "false", "make_model", name,
          ": setting auxiliary must be true or false, got '", it->second, "'");
    c.auxiliary = it->second == "true";
  }
  if (auto it = settings.find("genotype"); it != settings.end())
    c.genotype = is_builtin_genotype(it->second) ? builtin_genotype(it->second)
                                                 : genotype_from_json(it->second, name + " setting genotype");
  return c;
}

nn::ModelSettings eval_network_settings(const EvalNetworkConfig& c) {
  return {{"genotype", genotype_to_json(c.genotype)},
          {"layers", std::to_string(c.layers)},
          {"init_channels", std::to_string(c.init_channels)},
          {"auxiliary", c.auxiliary ? "true" : "false"}};
}

void check_weights_fit(const EvalNetworkConfig& c, const nn::StateDict& state, const std::string& what) {
  const char* stem_name = c.imagenet ? "stem0.0.weight" : "stem.0.weight";
  const int64_t stem_width = c.imagenet ? c.init_channels / 2 : 3 * c.init_channels;
  auto stem = state.find(stem_name);
  check(stem != state.end() && stem->second.dim() == 4 && stem->second.size(0) == stem_width, "load_model", what,
        ": init_channels ", c.init_channels, " needs a ", stem_name, " of ", stem_width, " rows, which the file ",
        stem == state.end() ? std::string("does not hold") : "holds as " + shape_str(stem->second.shape()));
  auto has_cell = [&](int64_t i) { return state.count("cells." + std::to_string(i) + ".preprocess1.op.1.weight") > 0; };
  check(has_cell(c.layers - 1) && !has_cell(c.layers), "load_model", what, ": layers ", c.layers,
        " does not match the cells the file holds");
}

void register_models() {
  static std::once_flag once;
  std::call_once(once, [] {
    nn::ModelFamily family;
    family.names = {"darts_cifar", "darts_imagenet"};
    family.matches = is_eval_network_name;
    family.make = [](const std::string& name, int64_t num_classes, int64_t in_channels,
                     const nn::ModelSettings& settings, Generator& gen) -> std::shared_ptr<nn::Module> {
      return std::make_shared<EvalNetwork>(eval_network_config(name, num_classes, in_channels, settings), gen);
    };
    nn::register_model_family(std::move(family));
  });
}

}  // namespace dmix::nas
