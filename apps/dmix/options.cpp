#include "apps/dmix/options.h"

#include <algorithm>
#include <cstdio>

#include "apps/dmix/commands.h"
#include "apps/dmix/datasets.h"
#include "augment/transforms.h"
#include "dmix/data.h"
#include "dmix/device.h"
#include "dmix/nas.h"
#include "engine/error.h"
#include "engine/safetensors.h"

namespace dmix::app {

bool imagenet_style(const std::string& model) {
  return model.rfind("resnet", 0) == 0 || model.find("_imagenet") != std::string::npos;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void RunOptions::add_to(CLI::App& cmd, const std::string& device_help) {
  cmd.add_option("--device", device, device_help)->capture_default_str()->group("Run");
  cmd.add_option("--threads", threads, "CPU threads (default: all cores)")->check(positive())->group("Run");
}

Device RunOptions::resolve() const {
  if (threads > 0) dmix::set_num_threads(threads);
  return dmix::select_device(device);
}

void ModelOptions::add_to(CLI::App& cmd, bool required) {
  cmd.add_option("--weights,--checkpoint", weights, "Checkpoint or safetensors state dict (PyTorch names)")
      ->required(required)
      ->group("Model");
  cmd.add_option("--model", model, "Model name (default: from the checkpoint)")->group("Model");
  cmd.add_option("--num-classes", num_classes, "Classes (default: from the checkpoint)")->group("Model");
  cmd.add_option("--in-channels", in_channels, "Input channels (default: from the checkpoint)")->group("Model");
}

LoadedModel ModelOptions::load(Device device, const char* op) const {
  const ModelSpecNames flags = {op, "--model", "--num-classes", "--in-channels"};
  LoadedModel m = dmix::load_model(weights, {model, num_classes, in_channels}, device, flags);
  m.checkpoint.model.clear();
  m.checkpoint.optimizer.clear();
  return m;
}

namespace {

// The names --dataset takes: the datasets a split is read from, and for image files also
// the ImageNet presets (imagenet, imagenet-a, ...).
CLI::Validator dataset_name() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        const auto& names = dataset_names();
        if (std::find(names.begin(), names.end(), v) != names.end() || v.rfind("imagenet", 0) == 0) return "";
        return "must be " + dataset_names_text() + " (for image files also imagenet or imagenet-*), got " + v;
      },
      "DATASET");
}

}  // namespace

void ImageOptions::add_to(CLI::App& cmd, const std::string& dataset_help, const std::string& default_text) {
  cmd.add_option("--dataset", dataset, dataset_help + " (default: " + default_text + ")")
      ->check(dataset_name())
      ->group("Data");
  cmd.add_option("--image-size", image_size, "Folder datasets: centre-crop size (default: the checkpoint's, else 224)")
      ->check(positive())
      ->group("Data");
}

std::string ImageOptions::dataset_for(const LoadedModel& m, const std::string& fallback) const {
  if (!dataset.empty()) return dataset;
  return m.meta_or("dataset", fallback);
}

int64_t ImageOptions::image_size_for(const std::string& name, const LoadedModel& m) const {
  return preset_image_size(name, image_size, m.meta_or("image_size"));
}

void SplitOptions::add_to(CLI::App& cmd) {
  cmd.add_option("--data", data,
                 train ? "Dataset folder (for folder: DIR/<class>/<images>, or DIR/train holding them)"
                       : "Dataset folder (for folder: DIR/<class>/<images>, or DIR/val holding them)")
      ->group("Data");
  cmd.add_option("--class-index", class_index,
                 "Folder datasets: file of class names, one per line (line k = class k), e.g. ImageNet's wnids "
                 "for ImageNet-A/-O")
      ->group("Data");
  if (train)
    cmd.add_option("--samples", samples, "Use only the first N images of the training split")
        ->check(positive())
        ->group("Data");
  else
    cmd.add_option("--samples,--limit-test", samples, "Use only the first N images of the test split")
        ->check(positive())
        ->group("Data");
  cmd.add_option("--batch", batch, "Batch size")->check(positive())->capture_default_str()->group("Data");
  cmd.add_option("--workers", workers, "Data-loader threads (decoding, for folders)")
      ->check(non_negative())
      ->capture_default_str()
      ->group("Data");
}

augment::Dataset SplitOptions::load(const std::string& dataset, const LoadedModel& m, const char* op) const {
  const auto& names = dataset_names();
  check(std::find(names.begin(), names.end(), dataset) != names.end(), op, "--dataset ", dataset,
        " only says how image files are prepared; a split is read from ", dataset_names_text());
  augment::Dataset split = app::load_dataset(dataset, data, train, class_index);
  check(split.channels() == m.spec.in_channels, op, dataset, " images have ", split.channels(),
        " channels but the model takes ", m.spec.in_channels);
  check(split.num_classes <= m.spec.num_classes, op, dataset, " has ", split.num_classes,
        " classes but the model only ", m.spec.num_classes);
  return split;
}

augment::LoaderOptions SplitOptions::loader_options(const augment::Dataset& split, int64_t image_size) const {
  augment::LoaderOptions o = dmix::loader_options(split, /*train=*/false, batch, samples, 0, image_size);
  o.num_workers = workers;
  return o;
}

namespace {

// Image files as one batch, through the evaluation pipeline of `dataset` (resize and
// centre crop for image folders; fixed-size datasets get their images resized and
// centre-cropped to their one size first, then the same normalisation as in training).
Tensor images_as_batch(const std::vector<std::string>& files, const std::string& dataset, int64_t image_size,
                       int64_t channels, const char* op) {
  check(channels == 1 || channels == 3, op, "image files need a model of 1 or 3 input channels, this one takes ",
        channels);
  const augment::Pipeline p = any_size_eval_pipeline(dataset, image_size);
  const int64_t n = static_cast<int64_t>(files.size());
  const auto [h, w] = p.output_hw(p.resize_center_crop.resize, p.resize_center_crop.resize);
  Tensor x = Tensor::empty({n, channels, h, w}, DType::f32);
  for (int64_t i = 0; i < n; ++i) {
    const Tensor img = augment::decode_image_file(files[i], channels);
    augment::SampleRng rng(0, 0, static_cast<uint64_t>(i));  // the eval pipeline draws nothing
    try {
      augment::apply(p, img.data<uint8_t>(), channels, img.size(1), img.size(2),
                     x.data<float>() + i * channels * h * w, h, w, rng);
    } catch (const Error& e) {
      fail(op, files[i], ": ", e.what());
    }
  }
  return x;
}

// --labels: a safetensors file holding `labels`, or class indices written out ("3,1,4").
Tensor read_labels(const std::string& spec, int64_t n, int64_t classes, const char* op) {
  Tensor y;
  const bool index_list = !spec.empty() && spec.find_first_not_of("0123456789,") == std::string::npos;
  if (index_list && !ends_with(spec, ".safetensors")) {
    std::vector<int64_t> v;
    size_t start = 0;
    while (start <= spec.size()) {
      const size_t comma = std::min(spec.find(',', start), spec.size());
      const std::string item = spec.substr(start, comma - start);
      check(!item.empty() && item.size() <= 18, op, "--labels '", spec, "' is not a list of class indices");
      v.push_back(std::stoll(item));
      start = comma + 1;
    }
    y = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  } else {
    SafetensorsFile lf = load_safetensors(spec);
    auto lt = lf.tensors.find("labels");
    check(lt != lf.tensors.end(), op, spec, " has no tensor named `labels`");
    y = lt->second;
  }
  if (y.dtype() == DType::i64) {
    check(y.dim() == 1 && y.size(0) == n, op, "`labels` must be i64 (", n, ") for ", n, " inputs, got ", y.str());
    for (int64_t label : y.to_vector<int64_t>())
      check(label >= 0 && label < classes, op, "label ", label, " is outside [0, ", classes, ")");
  } else {
    check(y.dtype() == DType::f32 && y.dim() == 2 && y.size(0) == n && y.size(1) == classes, op,
          "`labels` must be i64 (", n, ") class indices or f32 (", n, ", ", classes, ") soft labels, got ", y.str());
  }
  return y;
}

}  // namespace

void BatchInputOptions::add_to(CLI::App& cmd) {
  input_flag = cmd.add_option("--input", inputs,
                              "A safetensors file holding `input` (N,C,H,W f32, prepared as the model expects), or "
                              "image files (JPEG, PNG, ...), which go through the dataset's evaluation pipeline")
                   ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
                   ->expected(1, -1)
                   ->group("Input");
  cmd.add_option("--labels", labels,
                 "safetensors file holding `labels` (N i64, or N x classes f32 soft labels), or class indices "
                 "\"3,1,4\"; adds the mean cross-entropy `loss`")
      ->group("Input");
}

BatchInputOptions::Batch BatchInputOptions::read(const LoadedModel& m, const ImageOptions& images,
                                                 const char* op) const {
  Batch out;
  const std::string& name = m.spec.name;
  const bool tensor_input = inputs.size() == 1 && ends_with(inputs[0], ".safetensors");
  if (tensor_input) {
    SafetensorsFile in = load_safetensors(inputs[0]);
    auto it = in.tensors.find("input");
    check(it != in.tensors.end(), op, inputs[0], " has no tensor named `input`");
    out.images = it->second;
    check(out.images.dtype() == DType::f32 && out.images.dim() == 4, op, "`input` must be f32 (N,C,H,W), got ",
          out.images.str());
  } else {
    for (const std::string& f : inputs)
      check(!ends_with(f, ".safetensors"), op, "give either one safetensors input or image files, not both (", f,
            ")");
    const std::string dataset = images.dataset_for(m, imagenet_style(name) ? "imagenet" : "");
    check(!dataset.empty(), op, "cannot tell how to prepare images for ", name,
          " (its weights name no dataset): pass --dataset (", dataset_names_text(), ")");
    out.images = images_as_batch(inputs, dataset, images.image_size_for(dataset, m), m.spec.in_channels, op);
    out.from_image_files = true;
  }
  const int64_t n = out.images.size(0);
  check(n > 0, op, "`input` holds no sample");
  check(out.images.size(1) == m.spec.in_channels, op, "`input` has ", out.images.size(1), " channels but ", name,
        " takes ", m.spec.in_channels, " (input ", out.images.str(), ")");
  if (!labels.empty()) out.labels = read_labels(labels, n, m.spec.num_classes, op);
  return out;
}

void ArchitectureOptions::add_to(CLI::App& cmd) {
  cmd.add_option("--genotype", genotype,
                 "darts_cifar / darts_imagenet: a genotype JSON file (DARTS's layout, as dmix search writes) or a "
                 "built-in: DARTS_V1, DARTS_V2, PC_DARTS_cifar, PC_DARTS_image (default: PC_DARTS_cifar / "
                 "PC_DARTS_image)")
      ->group("Model");
  cmd.add_option("--layers", layers, "darts_cifar / darts_imagenet: cells (default 20 / 14)")
      ->check(positive())
      ->group("Model");
  cmd.add_option("--init-channels", init_channels, "darts_cifar / darts_imagenet: initial channels C (default 36 / 48)")
      ->check(positive())
      ->group("Model");
}

nn::ModelSettings ArchitectureOptions::settings(const std::string& model, bool auxiliary) const {
  if (!nas::is_eval_network_name(model)) {
    check(genotype.empty() && layers == 0 && init_channels == 0, "model",
          "--genotype, --layers and --init-channels apply to darts_cifar and darts_imagenet, not ", model);
    return {};
  }
  // Class count and channels do not change the settings; any positive pair will do here.
  return darts_model_spec(model, 1, 1, genotype, layers, init_channels, auxiliary).settings;
}

void JsonOption::add_to(CLI::App& cmd, const std::string& help) {
  cmd.add_flag("--json", on, help)->group("Output");
}

std::unique_ptr<AnalysisBatches> read_analysis_batches(const BatchInputOptions& input, const ImageOptions& images,
                                                       const SplitOptions& split, const LoadedModel& m, const char* op) {
  auto out = std::make_unique<AnalysisBatches>();
  if (!input.inputs.empty()) {
    check(!input.labels.empty(), op, "--input needs --labels: the analysis is of the loss");
    check(split.samples == 0 && split.data.empty(), op,
          "give either --input or a dataset split (--samples, --data), not both");
    const BatchInputOptions::Batch b = input.read(m, images, op);
    out->images = b.images.size(0);
    out->fixed.emplace(b.images, b.labels);
    out->source = std::to_string(out->images) + " inputs";
    return out;
  }
  const std::string dataset = images.dataset_for(m, "fashion-mnist");
  const augment::Dataset data = split.load(dataset, m, op);
  out->loader = std::make_unique<augment::DataLoader>(data, split.loader_options(data, images.image_size_for(dataset, m)));
  out->images = out->loader->size();
  check(out->images > 0, op, "the ", dataset, " test split holds no image");
  out->source = dataset + " test split (" + std::to_string(out->images) + " images)";
  if (out->loader->batches_per_epoch() == 1) {
    augment::Batch b;
    out->loader->start_epoch(0);
    check(out->loader->next(b), op, "the ", dataset, " test split yields no batch");
    out->fixed.emplace(b.images, b.labels);
  } else {
    out->loader_batches.emplace(*out->loader);
  }
  return out;
}

}  // namespace dmix::app
