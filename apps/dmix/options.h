// The flag bundles the dmix commands are built from. Each bundle adds its flags to a
// command under one heading of its --help (Run, Model, Data, Input, Output) and turns them
// into what the library takes: a Device, a loaded model, a data loader, a batch. A command
// is then its own few flags, one call into a library and its output (eval_command.cpp,
// predict_command.cpp). --device and --threads are declared here and nowhere else.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "augment/datasets.h"
#include "augment/loader.h"
#include "dmix/model_io.h"
#include "engine/device.h"
#include "engine/tensor.h"
#include "probe/hvp.h"

namespace dmix::app {

// Registry models of ImageNet shapes (224x224 inputs, 1000 classes): resnet*, *_imagenet.
bool imagenet_style(const std::string& model);
bool ends_with(const std::string& s, const std::string& suffix);

// --device, --threads: where a command runs.
struct RunOptions {
  std::string device = "cpu";
  int threads = 0;  // 0: every core

  // device_help says what --device means for the command ("cpu or cuda[:N]" by default).
  void add_to(CLI::App& cmd, const std::string& device_help = "cpu or cuda[:N]");
  // Sets the CPU threads (when --threads is given) and returns the device, checked by
  // dmix::select_device: a GPU this machine or build cannot give is one clear error.
  Device resolve() const;
};

// --weights (--checkpoint), --model, --num-classes, --in-channels: a model read from a dmix
// checkpoint (which names it) or a plain safetensors state dict (which needs --model).
struct ModelOptions {
  std::string weights, model;
  int64_t num_classes = 0, in_channels = 0;  // 0: from the file

  // required: whether --weights must be given (dmix subsample can train a model instead).
  void add_to(CLI::App& cmd, bool required = true);
  // dmix::load_model on `device`; its errors start with `op` and name these flags. The
  // file's tensors are dropped once loaded (the model holds its own copy); its metadata stays.
  LoadedModel load(Device device, const char* op) const;
};

// --dataset, --image-size: the dataset whose evaluation pipeline prepares images (a split
// read through SplitOptions, or image files given to --input), by default the checkpoint's.
struct ImageOptions {
  std::string dataset;     // "": the checkpoint's
  int64_t image_size = 0;  // 0: the checkpoint's, else the pipeline's own

  // default_text ends the --dataset help: what is used when neither flag nor checkpoint says.
  void add_to(CLI::App& cmd, const std::string& dataset_help, const std::string& default_text);
  // --dataset, else the checkpoint's dataset, else `fallback` ("" when there is none).
  std::string dataset_for(const LoadedModel& m, const std::string& fallback) const;
  // --image-size, else the checkpoint's, else 0 (datasets.h: preset_image_size).
  int64_t image_size_for(const std::string& dataset, const LoadedModel& m) const;
};

// --data, --class-index, --batch, --samples (alias --limit-test), --workers: the test split
// of a dataset, read in order through its evaluation pipeline; or, with train set before
// add_to, the training split (--samples without the alias), as `dmix subsample` scores it.
struct SplitOptions {
  std::string data, class_index;
  int64_t batch = 256;
  int64_t samples = 0;  // > 0: the split's first `samples` images only
  int workers = 2;
  bool train = false;   // the training split instead of the test split

  void add_to(CLI::App& cmd);
  // The split of `dataset`, checked against the model it is fed to.
  augment::Dataset load(const std::string& dataset, const LoadedModel& m, const char* op) const;
  augment::LoaderOptions loader_options(const augment::Dataset& split, int64_t image_size) const;
};

// --input, --labels: one fixed batch, as `dmix predict` reads it.
struct BatchInputOptions {
  std::vector<std::string> inputs;
  std::string labels;
  CLI::Option* input_flag = nullptr;  // for a command to make --input required

  struct Batch {
    Tensor images;               // f32 (N, C, H, W), prepared as the model expects
    Tensor labels;               // undefined without --labels; i64 (N) or f32 (N, classes)
    bool from_image_files = false;
  };

  void add_to(CLI::App& cmd);
  // A safetensors file holding `input`, or image files prepared through the evaluation
  // pipeline of `images`' dataset (the checkpoint's, or imagenet for ImageNet-style models).
  Batch read(const LoadedModel& m, const ImageOptions& images, const char* op) const;
};

// What an analysis of the loss (dmix hessian, dmix landscape) evaluates: the fixed --input
// batch (with --labels), or the test split: as one fixed batch when it fits in one --batch,
// so that a Hessian's gradient graph is built once, else batch after batch.
struct AnalysisBatches {
  std::optional<probe::FixedBatch> fixed;
  std::unique_ptr<augment::DataLoader> loader;
  std::optional<probe::LoaderBatches> loader_batches;  // reads *loader
  std::string source;  // for the output: "N inputs" or "<dataset> test split (N images)"
  int64_t images = 0;

  probe::BatchSource& batches() {
    return fixed ? static_cast<probe::BatchSource&>(*fixed) : static_cast<probe::BatchSource&>(*loader_batches);
  }
};
// Errors start with `op`: an empty split, --input without --labels, both an input and a split.
std::unique_ptr<AnalysisBatches> read_analysis_batches(const BatchInputOptions& input, const ImageOptions& images,
                                                       const SplitOptions& split, const LoadedModel& m, const char* op);

// --genotype, --layers, --init-channels: the settings of a network built from a genotype
// (darts_cifar, darts_imagenet: nas/eval_network.h), stored in its checkpoints.
struct ArchitectureOptions {
  std::string genotype;                   // built-in name or JSON file; "": the model's default
  int64_t layers = 0, init_channels = 0;  // 0: the model's default

  void add_to(CLI::App& cmd);
  // The model settings of `model` (the genotype as JSON text), with or without its auxiliary
  // head; empty for models built from a name alone, which take none of these flags.
  nn::ModelSettings settings(const std::string& model, bool auxiliary) const;
};

// --json: one JSON object on stdout instead of a sentence.
struct JsonOption {
  bool on = false;

  void add_to(CLI::App& cmd, const std::string& help = "Print one JSON object");
};

}  // namespace dmix::app
