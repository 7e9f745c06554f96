// `dmix predict`: a model's outputs on given inputs (a safetensors tensor, or image files
// prepared like the dataset's evaluation images) and, with --grad, the loss and its
// gradients with respect to the input and every parameter.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "apps/dmix/datasets.h"
#include "apps/dmix/options.h"
#include "augment/datasets.h"
#include "dmix/training.h"
#include "engine/autograd.h"
#include "engine/safetensors.h"

namespace dmix::app {

namespace {

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

// The names a class-index file gives the classes (its descriptions where it has them).
std::vector<std::string> class_names(const std::string& class_index) {
  std::vector<std::string> names;
  if (class_index.empty()) return names;
  const augment::ClassIndex ci = augment::load_class_index(class_index);
  for (size_t k = 0; k < ci.names.size(); ++k)
    names.push_back(ci.descriptions[k].empty() ? ci.names[k] : ci.descriptions[k]);
  return names;
}

// logits [, loss] without --grad; with it also input_grad and grad.<name> for every
// parameter (zero where the loss does not reach it). All on the CPU.
std::map<std::string, Tensor> forward(nn::Module& model, const Tensor& x, const Tensor& y, bool grad, Device device) {
  std::map<std::string, Tensor> out;
  if (!grad) {
    autograd::NoGradGuard no_grad;
    Tensor logits = model(x.to(device));
    out["logits"] = logits.to(Device::cpu());
    if (y.defined()) out["loss"] = classification_loss(logits, y.to(device)).to(Device::cpu());
    return out;
  }
  Tensor xd = x.to(device).detach().set_requires_grad();
  Tensor logits = model(xd);
  Tensor loss = classification_loss(logits, y.to(device));
  TensorList inputs = {xd};
  auto params = model.named_parameters();
  for (auto& [name, p] : params) inputs.push_back(p);
  TensorList grads = autograd::grad({loss}, inputs, {}, false, /*allow_unused=*/true);
  out["logits"] = logits.detach().to(Device::cpu());
  out["loss"] = loss.detach().to(Device::cpu());
  out["input_grad"] = grads[0].to(Device::cpu());
  for (size_t i = 0; i < params.size(); ++i) {
    out["grad." + params[i].first] =
        grads[i + 1].defined() ? grads[i + 1].to(Device::cpu()) : Tensor::zeros(params[i].second.shape());
  }
  return out;
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "predict",
      "Logits for a safetensors input or image files (and with --grad: loss, input and parameter gradients)");
  struct Options {
    ModelOptions model;
    BatchInputOptions input;
    ImageOptions images;
    RunOptions run;
    std::string output, class_index;
    int64_t top = 5;
    bool grad = false, train_mode = false;
  };
  auto o = std::make_shared<Options>();
  o->model.add_to(*cmd);
  cmd->add_flag("--train-mode", o->train_mode, "Use batch statistics (training mode) instead of running statistics")
      ->group("Model");
  o->input.add_to(*cmd);
  o->input.input_flag->required();
  o->images.add_to(*cmd, "How image files are prepared: " + dataset_names_text(), "the checkpoint's");
  cmd->add_option("--output", o->output,
                  "safetensors file to write: logits [, loss, input_grad, grad.<param>] [, input for image files]; "
                  "without it, one JSON line of top classes per input is printed")
      ->group("Output");
  cmd->add_flag("--grad", o->grad,
                "Also write loss, input_grad and grad.<name> for every parameter (needs --labels and --output)")
      ->group("Output");
  cmd->add_option("--top", o->top, "Classes per printed line")
      ->check(positive())
      ->capture_default_str()
      ->group("Output");
  cmd->add_option("--class-index", o->class_index, "Class-index file naming the classes in the printed lines")
      ->group("Output");
  o->run.add_to(*cmd);
  on_run(cmd, [o] {
    const char* op = "predict";
    check(!o->grad || !o->input.labels.empty(), op, "--grad needs --labels");
    check(!o->grad || !o->output.empty(), op, "--grad needs --output");
    const Device device = o->run.resolve();
    LoadedModel m = o->model.load(device, op);
    m.model->train(o->train_mode);
    const BatchInputOptions::Batch batch = o->input.read(m, o->images, op);
    std::map<std::string, Tensor> out = forward(*m.model, batch.images, batch.labels, o->grad, device);
    if (batch.from_image_files) out["input"] = batch.images;
    if (o->output.empty()) {
      print_top_classes(out["logits"], batch.from_image_files ? o->input.inputs : std::vector<std::string>{}, o->top,
                        class_names(o->class_index));
      return 0;
    }
    save_safetensors(o->output, out, {{"model", m.spec.name}, {"weights", o->model.weights}});
    std::printf("wrote %s (%zu tensors)\n", o->output.c_str(), out.size());
    return 0;
  });
}

}  // namespace dmix::app
