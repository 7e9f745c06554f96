#include "nn/checkpoint.h"

#include <charconv>
#include <cstdint>

#include "engine/error.h"
#include "engine/safetensors.h"

namespace dmix::nn {

const std::string& Checkpoint::meta(const std::string& key) const {
  auto it = metadata.find(key);
  check(it != metadata.end(), "checkpoint", "metadata lacks '", key, "'");
  return it->second;
}

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     std::map<std::string, std::string> metadata) {
  std::map<std::string, Tensor> tensors;
  for (auto& [name, t] : model.state_dict()) tensors["model." + name] = t;
  if (optimizer)
    for (auto& [name, t] : optimizer->state_dict()) tensors["optim." + name] = t;
  metadata["format"] = kCheckpointFormat;
  metadata["format_version"] = std::to_string(kCheckpointMajorVersion) + ".0";
  save_safetensors(path, tensors, metadata);
}

namespace {

Checkpoint checkpoint_from_file(SafetensorsFile file, const std::string& path) {
  Checkpoint c;
  c.metadata = file.metadata;
  auto fmt = file.metadata.find("format");
  c.is_dmix_checkpoint = fmt != file.metadata.end() && fmt->second == kCheckpointFormat;
  if (!c.is_dmix_checkpoint) {
    c.model = std::move(file.tensors);
    return c;
  }
  const std::string& version = c.meta("format_version");
  // The digits before the first '.'; std::atoi's overflow on a long digit string is undefined.
  int64_t major = -1;
  std::from_chars(version.data(), version.data() + version.size(), major);
  check(major == kCheckpointMajorVersion, "load_checkpoint", path, ": checkpoint format version ", version,
        " is not readable by this dmix (reads ", kCheckpointMajorVersion, ".x)");
  for (auto& [name, t] : file.tensors) {
    if (name.rfind("model.", 0) == 0) {
      c.model[name.substr(6)] = t;
    } else if (name.rfind("optim.", 0) == 0) {
      c.optimizer[name.substr(6)] = t;
    } else {
      fail("load_checkpoint", path, ": unexpected tensor '", name, "' (neither model.* nor optim.*)");
    }
  }
  return c;
}

}  // namespace

Checkpoint load_checkpoint(const std::string& path) { return checkpoint_from_file(load_safetensors(path), path); }

Checkpoint load_checkpoint_from_memory(const void* data, size_t size, const std::string& what) {
  return checkpoint_from_file(load_safetensors_from_memory(data, size, what), what);
}

}  // namespace dmix::nn
