// Models to and from files, in a few calls. A registry model (nn/models/registry.h) is
// saved as a dmix checkpoint whose metadata names it, the format `dmix train` writes, so
// load_model() rebuilds it from the file alone and `dmix eval --weights` / `dmix predict`
// read it too. A model built by hand from layers is saved as its plain state dict
// (PyTorch's parameter names; safetensors.torch.load_file reads it) and loaded into an
// instance the caller built the same way.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "nas/eval_network.h"
#include "nn/checkpoint.h"
#include "nn/models/registry.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace dmix {

struct ModelSpec {
  std::string name;         // a registry name, e.g. "pyramidnet20_a48", "resnet18" (nn::model_names())
  int64_t num_classes = 0;  // 0: unknown (load_model reads it from the file)
  int64_t in_channels = 0;
  // Settings beyond the name (darts_cifar's genotype, layers, ...: nas/eval_network.h),
  // stored in a checkpoint's metadata as "model.<key>" entries.
  nn::ModelSettings settings = {};
};

// A registry model on `device`. Its weights come from the default generator: call
// default_generator().set_state(seed, 0) first for the same weights on every run.
inline std::shared_ptr<nn::Module> build_model(const ModelSpec& spec, Device device = Device::cpu()) {
  check(spec.num_classes > 0 && spec.in_channels > 0, "build_model", spec.name,
        ": num_classes and in_channels must be positive, got ", spec.num_classes, " and ", spec.in_channels);
  nas::register_models();
  auto model = nn::make_model(spec.name, spec.num_classes, spec.in_channels, spec.settings, default_generator());
  model->to(device);
  return model;
}

// Writes `model` (and the optimizer's state, when given) atomically as a dmix checkpoint;
// `metadata` adds string entries of the caller's own (epoch, accuracy, ...).
inline void save_model(const std::string& path, const nn::Module& model, const ModelSpec& spec,
                       const nn::Optimizer* optimizer = nullptr, std::map<std::string, std::string> metadata = {}) {
  check(!spec.name.empty() && spec.num_classes > 0 && spec.in_channels > 0, "save_model", path,
        ": the spec must name the model and its num_classes and in_channels");
  metadata["model"] = spec.name;
  metadata["num_classes"] = std::to_string(spec.num_classes);
  metadata["in_channels"] = std::to_string(spec.in_channels);
  for (const auto& [key, value] : spec.settings) metadata["model." + key] = value;
  nn::save_checkpoint(path, model, optimizer, std::move(metadata));
}

struct LoadedModel {
  std::shared_ptr<nn::Module> model;  // weights loaded, on the device asked for, in training mode
  ModelSpec spec;                     // as read from the file (or given)
  nn::Checkpoint checkpoint;          // everything the file holds: optimizer state, metadata

  // A metadata entry of the file (dataset, image_size, epoch, ...), or `fallback` where it
  // has none (a plain state dict has no metadata).
  std::string meta_or(const std::string& key, const std::string& fallback = "") const {
    auto it = checkpoint.metadata.find(key);
    return it == checkpoint.metadata.end() ? fallback : it->second;
  }
};

// The words load_model's errors use: the op they start with, and what the caller sets to
// give the model name, class count and input channels. A program with flags names its
// flags, so the one-line error says what to pass (`dmix eval` gives --model, --num-classes
// and --in-channels).
struct ModelSpecNames {
  const char* op = "load_model";
  const char* name = "spec.name";
  const char* num_classes = "spec.num_classes";
  const char* in_channels = "spec.in_channels";
};

namespace api_detail {
// The size along `dim` of the first of `names` the state dict holds; 0 when none is there.
// An empty tensor does not count: its sizes are not bounded by the bytes of the file.
inline int64_t size_of_first(const nn::StateDict& state, std::initializer_list<const char*> names, int64_t dim) {
  for (const char* name : names) {
    auto it = state.find(name);
    if (it != state.end() && it->second.dim() > dim && it->second.numel() > 0) return it->second.size(dim);
  }
  return 0;
}

inline int64_t classifier_rows(const nn::StateDict& state) {
  return size_of_first(state, {"fc.weight", "linear.weight", "classifier.weight"}, 0);
}
inline int64_t stem_in_channels(const nn::StateDict& state) {
  return size_of_first(state, {"conv1.weight", "conv_1_3x3.weight", "stem.0.weight", "stem0.0.weight"}, 1);
}

// The "model.<key>" entries of a checkpoint's metadata, as ModelSpec::settings.
inline nn::ModelSettings settings_of(const nn::Checkpoint& c) {
  nn::ModelSettings out;
  for (const auto& [key, value] : c.metadata)
    if (key.rfind("model.", 0) == 0) out[key.substr(6)] = value;
  return out;
}

// A number in a checkpoint's metadata; a file whose metadata says otherwise is named in the error.
inline int64_t meta_int(const nn::Checkpoint& c, const std::string& key, const std::string& path, const char* op) {
  const std::string& v = c.meta(key);
  try {
    size_t used = 0;
    const int64_t n = std::stoll(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  fail(op, path, ": metadata ", key, " is '", v, "', not a number");
}
}  // namespace api_detail

// Reads a checkpoint written by `dmix train` or save_model() and rebuilds its model; fields
// set in `spec` must agree with the file. A plain safetensors state dict (from save_weights
// or PyTorch) needs spec.name; its class count and input channels are read off the
// classifier (fc, linear or classifier) and stem (conv1, conv_1_3x3, stem.0 or stem0.0)
// weights when spec leaves them 0, and its settings (a darts model's genotype) are spec's.
// Errors are one line in the words of `names`.
inline LoadedModel load_model(const std::string& path, ModelSpec spec = {}, Device device = Device::cpu(),
                              const ModelSpecNames& names = {}) {
  const char* op = names.op;
  LoadedModel out;
  out.checkpoint = nn::load_checkpoint(path);
  const nn::Checkpoint& c = out.checkpoint;
  if (c.is_dmix_checkpoint) {
    const std::string name = c.meta("model");
    const int64_t classes = api_detail::meta_int(c, "num_classes", path, op);
    const int64_t channels = api_detail::meta_int(c, "in_channels", path, op);
    check(spec.name.empty() || spec.name == name, op, path, " holds model ", name, ", not ", spec.name);
    check(spec.num_classes <= 0 || spec.num_classes == classes, op, path, " has ", classes, " classes, not ",
          spec.num_classes, " (", names.num_classes, ")");
    check(spec.in_channels <= 0 || spec.in_channels == channels, op, path, " takes ", channels,
          " input channels, not ", spec.in_channels, " (", names.in_channels, ")");
    const nn::ModelSettings settings = api_detail::settings_of(c);
    if (nas::is_eval_network_name(name))
      nas::check_weights_fit(nas::eval_network_config(name, classes, channels, settings), c.model, path);
    for (const auto& [key, value] : spec.settings) {
      auto it = settings.find(key);
      check(it != settings.end() && it->second == value, op, path, " holds ", name, " with ",
            it == settings.end() ? "no setting " + key : key + " '" + it->second + "'", ", not '", value, "'");
    }
    // The numbers must agree with the weights the file holds, whose sizes its bytes bound:
    // otherwise a few bytes of metadata could make build_model allocate any amount.
    const int64_t file_classes = api_detail::classifier_rows(c.model);
    const int64_t file_channels = api_detail::stem_in_channels(c.model);
    check(file_classes == classes, op, path, ": metadata num_classes is ", classes, " but ",
          file_classes > 0 ? "its classifier weight has " + std::to_string(file_classes) + " rows"
                           : std::string("it holds no classifier weight (fc, linear or classifier)"));
    check(file_channels == channels, op, path, ": metadata in_channels is ", channels, " but ",
          file_channels > 0 ? "its stem convolution takes " + std::to_string(file_channels) + " channels"
                            : std::string("it holds no stem convolution weight (conv1, conv_1_3x3, stem.0, stem0.0)"));
    spec = {name, classes, channels, settings};
  } else {
    check(!spec.name.empty(), op, path, " is a plain state dict: pass ", names.name, " (the model it holds)");
    if (spec.num_classes <= 0) spec.num_classes = api_detail::classifier_rows(c.model);
    check(spec.num_classes > 0, op, "cannot tell the class count of ", path, ": pass ", names.num_classes);
    if (spec.in_channels <= 0) spec.in_channels = api_detail::stem_in_channels(c.model);
    check(spec.in_channels > 0, op, "cannot tell the input channels of ", path, ": pass ", names.in_channels);
  }
  out.model = build_model(spec, device);
  out.model->load_state_dict(c.model);
  out.spec = spec;
  return out;
}

// The model's state dict (parameters and buffers) as a plain safetensors file, written atomically.
inline void save_weights(const std::string& path, const nn::Module& model) {
  save_safetensors(path, model.state_dict());
}

// Loads weights into `model`, which must have the parameter names and shapes the file has:
// a plain state dict or the model part of a dmix checkpoint. strict=false skips names
// present on one side only. Every mismatch is reported in one dmix::Error.
inline void load_weights(const std::string& path, nn::Module& model, bool strict = true) {
  model.load_state_dict(nn::load_checkpoint(path).model, strict);
}

}  // namespace dmix
