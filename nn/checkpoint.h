// Training checkpoints as safetensors files: the model's state dict under "model.<name>",
// the optimizer's state under "optim.<name>", and everything else (format version, model
// name and config, epoch, best error, RNG state, schedule) as string metadata. Writes are
// atomic, so a crash never leaves a half-written checkpoint in place of a good one.
#pragma once
#include <cstddef>
#include <map>
#include <string>

#include "nn/module.h"
#include "nn/optim.h"

namespace dmix::nn {

// Bumped on any incompatible change of what a checkpoint holds (semantic versioning:
// a reader accepts the same major version).
inline constexpr const char* kCheckpointFormat = "dmix-checkpoint";
inline constexpr int kCheckpointMajorVersion = 1;

struct Checkpoint {
  StateDict model;
  StateDict optimizer;
  std::map<std::string, std::string> metadata;
  bool is_dmix_checkpoint = false;  // false: a plain state dict (e.g. exported from PyTorch)

  const std::string& meta(const std::string& key) const;  // throws naming the key if absent
};

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     std::map<std::string, std::string> metadata);

// Reads a dmix checkpoint or a plain safetensors state dict (then every tensor is a model tensor).
Checkpoint load_checkpoint(const std::string& path);
// The same from a file's bytes in memory; `what` stands for the path in the messages.
Checkpoint load_checkpoint_from_memory(const void* data, size_t size, const std::string& what = "<memory>");

}  // namespace dmix::nn
