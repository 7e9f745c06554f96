// `dmix info`, `dmix eval` and `dmix predict`: what a model costs, how well a checkpoint
// does on a dataset, and its outputs (and gradients) on given inputs: a safetensors
// tensor, or image files prepared like the dataset's evaluation images.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "apps/dmix/datasets.h"
#include "augment/loader.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "kernels/cpu/threads.h"
#include "nn/checkpoint.h"
#include "nn/metrics.h"
#include "nn/models/flops.h"
#include "nn/models/registry.h"

namespace dmix::app {

namespace {

bool imagenet_style(const std::string& model) {
  return model.rfind("resnet", 0) == 0 || model.find("_imagenet") != std::string::npos;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct LoadedModel {
  std::shared_ptr<nn::Module> module;
  std::string name;
  int64_t classes = 0, channels = 0;
  std::map<std::string, std::string> metadata;  // empty for a plain state dict

  std::string meta_or(const std::string& key, const std::string& fallback = "") const {
    auto it = metadata.find(key);
    return it == metadata.end() ? fallback : it->second;
  }
};

int64_t meta_int(const nn::Checkpoint& c, const std::string& key, const std::string& weights, const char* op) {
  const std::string& v = c.meta(key);
  try {
    return std::stoll(v);
  } catch (const std::exception&) {
    fail(op, weights, ": metadata ", key, " is '", v, "', not a number");
  }
}

// A model built from a checkpoint: the model name and head come from its metadata unless
// given; a plain state dict needs --model.
LoadedModel model_from_weights(const std::string& weights, std::string model_name, int64_t classes, int64_t channels,
                               const char* op) {
  nn::Checkpoint c = nn::load_checkpoint(weights);
  LoadedModel m;
  if (c.is_dmix_checkpoint) {
    if (model_name.empty()) model_name = c.meta("model");
    check(model_name == c.meta("model"), op, weights, " holds model ", c.meta("model"), ", not ", model_name);
    if (classes <= 0) classes = meta_int(c, "num_classes", weights, op);
    if (channels <= 0) channels = meta_int(c, "in_channels", weights, op);
    m.metadata = c.metadata;
  }
  check(!model_name.empty(), op, weights, " is a plain state dict: pass --model");
  if (classes <= 0) {
    auto it = c.model.find("fc.weight");
    check(it != c.model.end(), op, "cannot tell the class count of ", weights, ": pass --num-classes");
    classes = it->second.size(0);
  }
  if (channels <= 0) {
    auto it = c.model.find("conv1.weight");
    check(it != c.model.end(), op, "cannot tell the input channels of ", weights, ": pass --in-channels");
    channels = it->second.size(1);
  }
  m.module = nn::make_model(model_name, classes, channels);
  m.module->load_state_dict(c.model);
  m.name = model_name;
  m.classes = classes;
  m.channels = channels;
  return m;
}

Device parse_device(const std::string& name, const char* op) {
  const Device device = Device::parse(name);
  check(device.is_cpu() || cuda_available(), op, "--device ", name, " requested but no GPU is available on this machine");
  return device;
}

// Image files as one batch, through the evaluation pipeline of `dataset` (resize and
// centre crop for image folders; fixed-size datasets get their images resized and
// centre-cropped to their one size first, then the same normalisation as in training).
Tensor images_as_batch(const std::vector<std::string>& files, const std::string& dataset, int64_t image_size,
                       int64_t channels) {
  const char* op = "predict";
  check(channels == 1 || channels == 3, op, "image files need a model of 1 or 3 input channels, this one takes ",
        channels);
  augment::Pipeline p = augment::eval_pipeline(dataset, image_size);
  if (!p.random_resized_crop.enabled && !p.resize_center_crop.enabled) {
    const int64_t side = native_image_size(dataset);
    check(side > 0, op, "no image size known for dataset ", dataset);
    p.resize_center_crop.enabled = true;
    p.resize_center_crop.resize = side;
    p.resize_center_crop.crop = side;
  }
  const int64_t n = static_cast<int64_t>(files.size());
  const auto [h, w] = p.output_hw(p.resize_center_crop.resize, p.resize_center_crop.resize);
  Tensor x = Tensor::empty({n, channels, h, w}, DType::f32);
  for (int64_t i = 0; i < n; ++i) {
    const Tensor img = augment::decode_image_file(files[i], channels);
    augment::SampleRng rng(0, 0, static_cast<uint64_t>(i));  // the eval pipeline draws nothing
    try {
      augment::apply(p, img.data<uint8_t>(), channels, img.size(1), img.size(2), x.data<float>() + i * channels * h * w,
                  h, w, rng);
    } catch (const Error& e) {
      fail(op, files[i], ": ", e.what());
    }
  }
  return x;
}

// --labels: a safetensors file holding `labels`, or class indices written out ("3,1,4").
Tensor read_labels(const std::string& spec, int64_t n, int64_t classes) {
  const char* op = "predict";
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

// One JSON line per sample: the most probable classes (softmax of the logits).
void print_top_classes(const Tensor& logits, const std::vector<std::string>& sources, int64_t top,
                       const std::vector<std::string>& names) {
  const int64_t n = logits.size(0), k = logits.size(1);
  const std::vector<float> v = logits.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    const float* row = v.data() + i * k;
    const double mx = *std::max_element(row, row + k);
    double total = 0;
    for (int64_t c = 0; c < k; ++c) total += std::exp(double(row[c]) - mx);
    std::vector<int64_t> order(static_cast<size_t>(k));
    for (int64_t c = 0; c < k; ++c) order[c] = c;
    const int64_t shown = std::min(top, k);
    std::partial_sort(order.begin(), order.begin() + shown, order.end(),
                      [&](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    nlohmann::json classes = nlohmann::json::array();
    for (int64_t j = 0; j < shown; ++j) {
      const int64_t c = order[j];
      nlohmann::json entry = {{"class", c}, {"prob", std::exp(double(row[c]) - mx) / total}};
      if (c < static_cast<int64_t>(names.size())) entry["name"] = names[c];
      classes.push_back(entry);
    }
    nlohmann::json line = {{"input", i < static_cast<int64_t>(sources.size()) ? sources[i] : std::to_string(i)},
                           {"top", classes}};
    std::printf("%s\n", line.dump().c_str());
  }
}

}  // namespace

void add_model_commands(CLI::App& app) {
  {
    auto* cmd = app.add_subcommand("info", "Parameters and forward FLOPs per image of a model");
    struct Options {
      std::string model;
      int64_t classes = 0, channels = 3, size = 0;
      bool json = false, list = false;
    };
    auto o = std::make_shared<Options>();
    cmd->add_option("--model", o->model, "Model name");
    cmd->add_option("--num-classes", o->classes, "Classes (default 1000 for ImageNet models, 10 otherwise)");
    cmd->add_option("--in-channels", o->channels, "Input channels")->capture_default_str();
    cmd->add_option("--input-size", o->size, "Input height = width (default 224 for ImageNet models, 32 otherwise)");
    cmd->add_flag("--json", o->json, "Print {\"params\": ..., \"flops_per_image\": ...}");
    cmd->add_flag("--list", o->list, "List the model names");
    on_run(cmd, [o] {
      if (o->list) {
        for (const auto& n : nn::model_names()) std::printf("%s\n", n.c_str());
        return 0;
      }
      check(!o->model.empty(), "info", "--model is required (or --list)");
      const bool big = imagenet_style(o->model);
      const int64_t classes = o->classes > 0 ? o->classes : (big ? 1000 : 10);
      const int64_t size = o->size > 0 ? o->size : (big ? 224 : 32);
      auto model = nn::make_model(o->model, classes, o->channels);
      const int64_t params = model->num_parameters();
      const int64_t flops = nn::forward_flops_per_image(*model, {o->channels, size, size});
      if (o->json) {
        std::printf("%s\n", nlohmann::json({{"params", params}, {"flops_per_image", flops}}).dump().c_str());
      } else {
        std::printf("%s: %lld parameters, %.3f GFLOPs per %lldx%lldx%lld image, %lld classes\n", o->model.c_str(),
                    (long long)params, double(flops) / 1e9, (long long)o->channels, (long long)size, (long long)size,
                    (long long)classes);
      }
      return 0;
    });
  }
  {
    auto* cmd = app.add_subcommand("eval", "Top-1/top-5 error of a checkpoint on a dataset's test split");
    struct Options {
      std::string weights, model, dataset = "fashion-mnist", data, class_index, device = "cpu";
      int64_t classes = 0, channels = 0, batch = 256, limit = 0, image_size = 0;
      int threads = 0, workers = 2;
      bool json = false;
    };
    auto o = std::make_shared<Options>();
    cmd->add_option("--weights,--checkpoint", o->weights, "Checkpoint or safetensors state dict")->required();
    cmd->add_option("--model", o->model, "Model name (default: from the checkpoint)");
    cmd->add_option("--dataset", o->dataset, dataset_names_text() + " (default: the checkpoint's, else fashion-mnist)")
        ->check(CLI::IsMember(dataset_names()))
        ->capture_default_str();
    cmd->add_option("--data", o->data, "Dataset folder (for folder: DIR/<class>/<images>, or DIR/val holding them)");
    cmd->add_option("--class-index", o->class_index,
                    "Folder datasets: file of class names, one per line (line k = class k), e.g. ImageNet's wnids "
                    "for ImageNet-A/-O");
    cmd->add_option("--image-size", o->image_size, "Folder datasets: centre-crop size (default: the checkpoint's, else 224)")
        ->check(positive());
    cmd->add_option("--num-classes", o->classes, "Classes (default: from the checkpoint)");
    cmd->add_option("--in-channels", o->channels, "Input channels (default: from the checkpoint)");
    cmd->add_option("--batch", o->batch, "Batch size")->check(positive())->capture_default_str();
    cmd->add_option("--limit-test", o->limit, "Use only the first M test images")->check(positive());
    cmd->add_option("--device", o->device, "cpu or cuda[:N]")->capture_default_str();
    cmd->add_option("--threads", o->threads, "CPU threads")->check(positive());
    cmd->add_option("--workers", o->workers, "Data-loader threads (decoding, for folders)")
        ->check(non_negative())
        ->capture_default_str();
    cmd->add_flag("--json", o->json, "Print one JSON object");
    on_run(cmd, [o, cmd] {
      if (o->threads > 0) kernels::cpu::set_num_threads(o->threads);
      const Device device = parse_device(o->device, "eval");
      LoadedModel m = model_from_weights(o->weights, o->model, o->classes, o->channels, "eval");
      m.module->to(device);
      m.module->eval();
      std::string dataset = o->dataset;
      if (cmd->count("--dataset") == 0 && !m.meta_or("dataset").empty()) dataset = m.meta_or("dataset");
      augment::Dataset test = load_dataset(dataset, o->data, false, o->class_index);
      check(test.channels() == m.channels, "eval", dataset, " images have ", test.channels(),
            " channels but the model takes ", m.channels);
      check(test.num_classes <= m.classes, "eval", dataset, " has ", test.num_classes, " classes but the model only ",
            m.classes);
      augment::LoaderOptions lo;
      lo.batch_size = o->batch;
      lo.shuffle = false;
      lo.num_workers = o->workers;
      lo.pipeline = augment::eval_pipeline(test.name, preset_image_size(dataset, o->image_size, m.meta_or("image_size")));
      if (o->limit > 0) {
        std::vector<int64_t> idx(static_cast<size_t>(std::min(o->limit, test.size())));
        for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t(i);
        lo.subset = idx;
      }
      augment::DataLoader loader(test, lo);
      autograd::NoGradGuard no_grad;
      int64_t n = 0, top1 = 0, top5 = 0;
      augment::Batch b;
      loader.start_epoch(0);
      while (loader.next(b)) {
        Tensor logits = (*m.module)(b.images.to(device));
        top1 += nn::count_topk_correct(logits, b.labels, 1);
        top5 += nn::count_topk_correct(logits, b.labels, std::min<int64_t>(5, logits.size(1)));
        n += b.labels.size(0);
      }
      check(n > 0, "eval", "the test split is empty");
      const double e1 = 100.0 * double(n - top1) / double(n), e5 = 100.0 * double(n - top5) / double(n);
      if (o->json) {
        std::printf("%s\n", nlohmann::json({{"images", n}, {"top1_error", e1}, {"top5_error", e5}}).dump().c_str());
      } else {
        std::printf("%s on %s (%lld images): top-1 error %.2f%%, top-5 error %.2f%%\n", o->weights.c_str(),
                    dataset.c_str(), (long long)n, e1, e5);
      }
      return 0;
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "predict",
        "Logits for a safetensors input or image files (and with --grad: loss, input and parameter gradients)");
    struct Options {
      std::string model, weights, output, labels, device = "cpu", dataset, class_index;
      std::vector<std::string> inputs;
      int64_t classes = 0, channels = 0, image_size = 0, top = 5;
      int threads = 0;
      bool grad = false, train_mode = false;
    };
    auto o = std::make_shared<Options>();
    cmd->add_option("--model", o->model, "Model name (default: from the checkpoint)");
    cmd->add_option("--weights", o->weights, "Checkpoint or safetensors state dict (PyTorch names)")->required();
    cmd->add_option("--input", o->inputs,
                    "A safetensors file holding `input` (N,C,H,W f32, prepared as the model expects), or image files "
                    "(JPEG, PNG, ...), which go through the dataset's evaluation pipeline")
        ->required()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->expected(1, -1);
    cmd->add_option("--output", o->output,
                    "safetensors file to write: logits [, loss, input_grad, grad.<param>] [, input for image files]; "
                    "without it, one JSON line of top classes per input is printed");
    cmd->add_option("--labels", o->labels,
                    "safetensors file holding `labels` (N i64, or N x classes f32 soft labels), or class indices "
                    "\"3,1,4\"; adds the mean cross-entropy `loss`");
    cmd->add_option("--dataset", o->dataset,
                    "How image files are prepared: " + dataset_names_text() + " (default: the checkpoint's)");
    cmd->add_option("--image-size", o->image_size, "Folder datasets: centre-crop size (default: the checkpoint's, else 224)")
        ->check(positive());
    cmd->add_option("--class-index", o->class_index, "Class-index file naming the classes in the printed lines");
    cmd->add_option("--top", o->top, "Classes per printed line")->check(positive())->capture_default_str();
    cmd->add_option("--num-classes", o->classes, "Classes (default: from the weights)");
    cmd->add_option("--in-channels", o->channels, "Input channels (default: from the weights)");
    cmd->add_option("--device", o->device, "cpu or cuda[:N]")->capture_default_str();
    cmd->add_option("--threads", o->threads, "CPU threads")->check(positive());
    cmd->add_flag("--grad", o->grad, "Also write loss, input_grad and grad.<name> for every parameter (needs --labels and --output)");
    cmd->add_flag("--train-mode", o->train_mode, "Use batch statistics (training mode) instead of running statistics");
    on_run(cmd, [o] {
      const char* op = "predict";
      check(!o->grad || !o->labels.empty(), op, "--grad needs --labels");
      check(!o->grad || !o->output.empty(), op, "--grad needs --output");
      if (o->threads > 0) kernels::cpu::set_num_threads(o->threads);
      const Device device = parse_device(o->device, op);
      LoadedModel m = model_from_weights(o->weights, o->model, o->classes, o->channels, op);
      m.module->to(device);
      m.module->train(o->train_mode);

      Tensor x;
      const bool tensor_input = o->inputs.size() == 1 && ends_with(o->inputs[0], ".safetensors");
      if (tensor_input) {
        SafetensorsFile in = load_safetensors(o->inputs[0]);
        auto it = in.tensors.find("input");
        check(it != in.tensors.end(), op, o->inputs[0], " has no tensor named `input`");
        x = it->second;
        check(x.dtype() == DType::f32 && x.dim() == 4, op, "`input` must be f32 (N,C,H,W), got ", x.str());
      } else {
        for (const std::string& f : o->inputs)
          check(!ends_with(f, ".safetensors"), op, "give either one safetensors input or image files, not both (",
                f, ")");
        std::string dataset = o->dataset.empty() ? m.meta_or("dataset") : o->dataset;
        if (dataset.empty() && imagenet_style(m.name)) dataset = "imagenet";
        check(!dataset.empty(), op, "cannot tell how to prepare images for ", m.name, " from ", o->weights,
              ": pass --dataset (", dataset_names_text(), ")");
        x = images_as_batch(o->inputs, dataset, preset_image_size(dataset, o->image_size, m.meta_or("image_size")),
                            m.channels);
      }
      const int64_t n = x.size(0);
      check(n > 0, op, "`input` holds no sample");
      check(x.size(1) == m.channels, op, "`input` has ", x.size(1), " channels but ", m.name, " takes ", m.channels,
            " (input ", x.str(), ")");
      Tensor y;
      if (!o->labels.empty()) y = read_labels(o->labels, n, m.classes);
      auto loss_of = [&](const Tensor& logits) {
        return y.dtype() == DType::i64 ? cross_entropy(logits, y.to(device)) : soft_cross_entropy(logits, y.to(device));
      };

      std::map<std::string, Tensor> out;
      if (!o->grad) {
        autograd::NoGradGuard no_grad;
        Tensor logits = (*m.module)(x.to(device));
        out["logits"] = logits.to(Device::cpu());
        if (y.defined()) out["loss"] = loss_of(logits).to(Device::cpu());
      } else {
        Tensor xd = x.to(device).detach().set_requires_grad();
        Tensor logits = (*m.module)(xd);
        Tensor loss = loss_of(logits);
        TensorList inputs = {xd};
        auto params = m.module->named_parameters();
        for (auto& [name, p] : params) inputs.push_back(p);
        TensorList grads = autograd::grad({loss}, inputs, {}, false, /*allow_unused=*/true);
        out["logits"] = logits.detach().to(Device::cpu());
        out["loss"] = loss.detach().to(Device::cpu());
        out["input_grad"] = grads[0].to(Device::cpu());
        for (size_t i = 0; i < params.size(); ++i) {
          // A parameter the loss does not reach (allow_unused) has a zero gradient.
          out["grad." + params[i].first] =
              grads[i + 1].defined() ? grads[i + 1].to(Device::cpu()) : Tensor::zeros(params[i].second.shape());
        }
      }
      if (!tensor_input) out["input"] = x;
      if (o->output.empty()) {
        std::vector<std::string> names;
        if (!o->class_index.empty()) {
          const augment::ClassIndex ci = augment::load_class_index(o->class_index);
          for (size_t k = 0; k < ci.names.size(); ++k)
            names.push_back(ci.descriptions[k].empty() ? ci.names[k] : ci.descriptions[k]);
        }
        print_top_classes(out["logits"], tensor_input ? std::vector<std::string>{} : o->inputs, o->top, names);
        return 0;
      }
      save_safetensors(o->output, out, {{"model", m.name}, {"weights", o->weights}});
      std::printf("wrote %s (%zu tensors)\n", o->output.c_str(), out.size());
      return 0;
    });
  }
}

}  // namespace dmix::app
