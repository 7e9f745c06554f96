// `dmix info`, `dmix eval` and `dmix predict`: what a model costs, how well a checkpoint
// does on a dataset, and its outputs (and gradients) on given inputs.
#include <cstdio>

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

// A model built from a checkpoint: the model name and head come from its metadata unless
// given; a plain state dict needs --model.
std::shared_ptr<nn::Module> model_from_weights(const std::string& weights, std::string model_name, int64_t classes,
                                               int64_t channels, const char* op) {
  nn::Checkpoint c = nn::load_checkpoint(weights);
  if (c.is_dmix_checkpoint) {
    if (model_name.empty()) model_name = c.meta("model");
    check(model_name == c.meta("model"), op, weights, " holds model ", c.meta("model"), ", not ", model_name);
    if (classes <= 0) classes = std::stoll(c.meta("num_classes"));
    if (channels <= 0) channels = std::stoll(c.meta("in_channels"));
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
  auto model = nn::make_model(model_name, classes, channels);
  model->load_state_dict(c.model);
  return model;
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
      std::string weights, model, dataset = "fashion-mnist", data, device = "cpu";
      int64_t classes = 0, channels = 0, batch = 256, limit = 0;
      int threads = 0;
      bool json = false;
    };
    auto o = std::make_shared<Options>();
    cmd->add_option("--weights,--checkpoint", o->weights, "Checkpoint or safetensors state dict")->required();
    cmd->add_option("--model", o->model, "Model name (default: from the checkpoint)");
    cmd->add_option("--dataset", o->dataset, "fashion-mnist, cifar10 or cifar100")->capture_default_str();
    cmd->add_option("--data", o->data, "Dataset folder");
    cmd->add_option("--num-classes", o->classes, "Classes (default: from the checkpoint)");
    cmd->add_option("--in-channels", o->channels, "Input channels (default: from the checkpoint)");
    cmd->add_option("--batch", o->batch, "Batch size")->check(positive())->capture_default_str();
    cmd->add_option("--limit-test", o->limit, "Use only the first M test images")->check(positive());
    cmd->add_option("--device", o->device, "cpu or cuda[:N]")->capture_default_str();
    cmd->add_option("--threads", o->threads, "CPU threads")->check(positive());
    cmd->add_flag("--json", o->json, "Print one JSON object");
    on_run(cmd, [o] {
      if (o->threads > 0) kernels::cpu::set_num_threads(o->threads);
      const Device device = Device::parse(o->device);
      auto model = model_from_weights(o->weights, o->model, o->classes, o->channels, "eval");
      model->to(device);
      model->eval();
      data::Dataset test = load_dataset(o->dataset, o->data, false);
      data::LoaderOptions lo;
      lo.batch_size = o->batch;
      lo.shuffle = false;
      lo.pipeline = data::eval_pipeline(test.name);
      if (o->limit > 0) {
        std::vector<int64_t> idx(static_cast<size_t>(std::min(o->limit, test.images.size(0))));
        for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t(i);
        lo.subset = idx;
      }
      data::DataLoader loader(test, lo);
      autograd::NoGradGuard no_grad;
      int64_t n = 0, top1 = 0, top5 = 0;
      data::Batch b;
      loader.start_epoch(0);
      while (loader.next(b)) {
        Tensor logits = (*model)(b.images.to(device));
        top1 += nn::count_topk_correct(logits, b.labels, 1);
        top5 += nn::count_topk_correct(logits, b.labels, std::min<int64_t>(5, logits.size(1)));
        n += b.labels.size(0);
      }
      const double e1 = 100.0 * double(n - top1) / double(n), e5 = 100.0 * double(n - top5) / double(n);
      if (o->json) {
        std::printf("%s\n", nlohmann::json({{"images", n}, {"top1_error", e1}, {"top5_error", e5}}).dump().c_str());
      } else {
        std::printf("%s on %s (%lld images): top-1 error %.2f%%, top-5 error %.2f%%\n", o->weights.c_str(),
                    o->dataset.c_str(), (long long)n, e1, e5);
      }
      return 0;
    });
  }
  {
    auto* cmd = app.add_subcommand("predict", "Logits (and with --grad: loss, input and parameter gradients) for a safetensors input");
    struct Options {
      std::string model, weights, input, output, labels, device = "cpu";
      int64_t classes = 0, channels = 0;
      bool grad = false, train_mode = false;
    };
    auto o = std::make_shared<Options>();
    cmd->add_option("--model", o->model, "Model name (default: from the checkpoint)");
    cmd->add_option("--weights", o->weights, "Checkpoint or safetensors state dict (PyTorch names)")->required();
    cmd->add_option("--input", o->input, "safetensors file holding `input` (N,C,H,W f32)")->required();
    cmd->add_option("--output", o->output, "safetensors file to write: logits [, loss, input_grad, grad.<param>]")->required();
    cmd->add_option("--labels", o->labels, "safetensors file holding `labels`: N i64, or N x classes f32 soft labels");
    cmd->add_option("--num-classes", o->classes, "Classes (default: from the weights)");
    cmd->add_option("--in-channels", o->channels, "Input channels (default: from the weights)");
    cmd->add_option("--device", o->device, "cpu or cuda[:N]")->capture_default_str();
    cmd->add_flag("--grad", o->grad, "Also write loss, input_grad and grad.<name> for every parameter (needs --labels)");
    cmd->add_flag("--train-mode", o->train_mode, "Use batch statistics (training mode) instead of running statistics");
    on_run(cmd, [o] {
      check(!o->grad || !o->labels.empty(), "predict", "--grad needs --labels");
      const Device device = Device::parse(o->device);
      auto model = model_from_weights(o->weights, o->model, o->classes, o->channels, "predict");
      model->to(device);
      model->train(o->train_mode);
      SafetensorsFile in = load_safetensors(o->input);
      auto it = in.tensors.find("input");
      check(it != in.tensors.end(), "predict", o->input, " has no tensor named `input`");
      Tensor x = it->second;
      check(x.dtype() == DType::f32 && x.dim() == 4, "predict", "`input` must be f32 (N,C,H,W), got ", x.str());
      std::map<std::string, Tensor> out;
      if (!o->grad) {
        autograd::NoGradGuard no_grad;
        out["logits"] = (*model)(x.to(device)).to(Device::cpu());
      } else {
        SafetensorsFile lf = load_safetensors(o->labels);
        auto lt = lf.tensors.find("labels");
        check(lt != lf.tensors.end(), "predict", o->labels, " has no tensor named `labels`");
        Tensor xd = x.to(device).detach().set_requires_grad();
        Tensor logits = (*model)(xd);
        const Tensor& y = lt->second;
        Tensor loss = y.dtype() == DType::i64 ? cross_entropy(logits, y.to(device)) : soft_cross_entropy(logits, y.to(device));
        TensorList inputs = {xd};
        auto params = model->named_parameters();
        for (auto& [name, p] : params) inputs.push_back(p);
        TensorList grads = autograd::grad({loss}, inputs, {}, false, /*allow_unused=*/true);
        out["logits"] = logits.detach().to(Device::cpu());
        out["loss"] = loss.detach().to(Device::cpu());
        out["input_grad"] = grads[0].to(Device::cpu());
        for (size_t i = 0; i < params.size(); ++i) out["grad." + params[i].first] = grads[i + 1].to(Device::cpu());
      }
      save_safetensors(o->output, out, {{"model", o->model}, {"weights", o->weights}});
      std::printf("wrote %s (%zu tensors)\n", o->output.c_str(), out.size());
      return 0;
    });
  }
}

}  // namespace dmix::app
