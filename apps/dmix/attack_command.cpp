// `dmix attack`: clean and robust error of a checkpoint under FGSM, PGD (L-inf, L2) or
// APGD-CE, white-box, and with --source, transferred from other checkpoints: the paper's
// Table 5 (white-box / gray-box: same architecture / black-box: another one) from one
// command. The attacks live in probe/ (dmix/attack.h); this is their flags, the table, the
// JSON, the adversarial images as safetensors and a PNG of clean/adversarial pairs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "apps/dmix/datasets.h"
#include "apps/dmix/image_grid.h"
#include "apps/dmix/options.h"
#include "apps/dmix/progress.h"
#include "augment/transforms.h"
#include "dmix/attack.h"
#include "engine/error.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "engine/safetensors.h"

namespace dmix::app {

namespace {

struct AttackCommand {
  ModelOptions model;
  std::vector<std::string> sources;
  ImageOptions images;
  SplitOptions split;
  BatchInputOptions input;
  RunOptions run;
  std::string attack = "pgd", eps, step;
  int64_t steps = 0, restarts = 1, target_class = -1;
  bool random_start = true, targeted = false;
  uint64_t seed = 0;
  std::vector<float> channel_mean, channel_std;
  std::string save_adv, grid, json_out;
  CLI::Option *steps_flag = nullptr, *random_start_flag = nullptr;
};

// "8/255" or "0.0314": a number in pixel units, for --eps and --step.
double parse_pixels(const std::string& text, const char* flag) {
  const auto number = [&](const std::string& s) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(s, &used);
    } catch (...) {
      used = 0;
    }
    check(used > 0 && used == s.size() && std::isfinite(v), "attack", flag, " '", text,
          "' is not a number or a fraction such as 8/255");
    return v;
  };
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return number(text);
  const double den = number(text.substr(slash + 1));
  check(den != 0, "attack", flag, " '", text, "' divides by zero");
  return number(text.substr(0, slash)) / den;
}

std::string fixed(double x, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

// The options the flags give, on top of the attack's own defaults (probe/attack.h).
probe::AttackOptions attack_options(const AttackCommand& o) {
  const char* op = "attack";
  const probe::AttackKind kind = probe::parse_attack_kind(o.attack);
  probe::AttackOptions a = probe::default_attack_options(kind);
  const bool pgd = kind == probe::AttackKind::pgd || kind == probe::AttackKind::pgd_l2;
  if (!o.eps.empty()) a.eps = parse_pixels(o.eps, "--eps");
  check(a.eps >= 0 && a.eps <= 1, op, "--eps must lie in [0, 1] (pixel units), got ", a.eps);
  if (kind == probe::AttackKind::fgsm) a.step = a.eps;
  if (kind == probe::AttackKind::apgd_ce) a.step = 2 * a.eps;
  if (!o.step.empty()) {
    check(pgd, op, "--step is for pgd and pgd-l2 (fgsm steps eps, apgd-ce sets its own step size)");
    a.step = parse_pixels(o.step, "--step");
  }
  if (o.steps_flag->count() > 0) {
    check(kind != probe::AttackKind::fgsm, op, "--steps is for pgd, pgd-l2 and apgd-ce (fgsm takes one step)");
    a.steps = o.steps;
  }
  if (o.random_start_flag->count() > 0) {
    if (pgd)
      a.random_start = o.random_start;
    else if (kind == probe::AttackKind::fgsm)
      check(!o.random_start, op, "fgsm has no random start (--random-start is for pgd and pgd-l2)");
    else
      check(o.random_start, op, "apgd-ce always starts at a random point (--random-start is for pgd and pgd-l2)");
  }
  a.restarts = o.restarts;
  a.targeted = o.targeted || o.target_class >= 0;
  probe::check_attack_options(a);
  return a;
}

std::string describe(const probe::AttackOptions& a) {
  std::string s = probe::attack_name(a.kind) + (a.targeted ? " (targeted)" : "") + ", eps " + fixed(a.eps, 5);
  if (a.kind == probe::AttackKind::pgd || a.kind == probe::AttackKind::pgd_l2)
    s += ", step " + fixed(a.step, 5) + ", " + std::to_string(a.steps) + " steps" +
         (a.random_start ? ", random start" : ", no random start");
  if (a.kind == probe::AttackKind::apgd_ce) s += ", " + std::to_string(a.steps) + " iterations";
  if (a.restarts > 1) s += ", " + std::to_string(a.restarts) + " restarts";
  return s;
}

// The per-channel normalisation a model was trained with: --mean/--std, else that of the
// dataset it names (or --dataset), else an error saying what to pass.
std::pair<std::vector<float>, std::vector<float>> normalisation(const AttackCommand& o, const LoadedModel& m,
                                                                const std::string& path) {
  const char* op = "attack";
  const int64_t channels = m.spec.in_channels;
  const std::vector<float>&mean = o.channel_mean, &stdev = o.channel_std;
  if (!mean.empty() || !stdev.empty()) {
    check(!mean.empty() && !stdev.empty(), op, "give --mean and --std together");
    check(mean.size() == stdev.size(), op, "--mean has ", mean.size(), " values but --std ", stdev.size());
    check(static_cast<int64_t>(mean.size()) == channels, op, "--mean and --std have ", mean.size(), " values but ",
          path, " takes ", channels, " channels");
    return {mean, stdev};
  }
  const std::string dataset = o.images.dataset_for(m, "");
  check(!dataset.empty(), op, "cannot tell how ", path,
        " normalises its inputs (its file names no dataset): pass --mean and --std, or --dataset");
  const augment::Pipeline p = augment::eval_pipeline(dataset);
  check(static_cast<int64_t>(p.mean.size()) == channels || p.mean.empty(), op, dataset, " normalises ", p.mean.size(),
        " channels but ", path, " takes ", channels, ": pass --mean and --std");
  return {p.mean, p.std};
}

// The image side a checkpoint was trained on, where its metadata says (0: unknown).
int64_t trained_image_size(const LoadedModel& m) {
  const std::string size = m.meta_or("image_size");
  if (!size.empty() && size != "0") return std::stoll(size);
  const std::string dataset = m.meta_or("dataset");
  return dataset.empty() ? 0 : native_image_size(dataset);
}

std::string relation(const std::string& source, const LoadedModel& s, const std::string& target, const LoadedModel& t) {
  std::error_code ec;
  if (std::filesystem::equivalent(source, target, ec)) return "white-box";
  return s.spec.name == t.spec.name ? "gray-box" : "black-box";
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream f(path);
  check(bool(f), "attack", "cannot write ", path);
  f << j.dump() << "\n";
  check(bool(f), "attack", "cannot write ", path);
}

// Clean/adversarial pairs of the first images, with what the evaluated model predicts.
class PairGrid {
 public:
  static constexpr int64_t kPairs = 16;

  void add(probe::AttackModel& model, const Tensor& clean, const Tensor& adv, const Tensor& labels,
           const Tensor& attack_labels, bool targeted) {
    const int64_t take = std::min(kPairs - count(), clean.size(0));
    if (take <= 0) return;
    const auto slice = [&](const Tensor& t) { return narrow(t, 0, 0, take).to(Device::cpu()); };
    const Tensor c = slice(clean), a = slice(adv.to(Device::cpu()));
    clean_.push_back(c);
    adv_.push_back(a);
    labels_.push_back(slice(labels));
    targets_.push_back(targeted ? slice(attack_labels) : Tensor());
    clean_pred_.push_back(argmax(model.logits(c).to(Device::cpu()), 1));
    adv_pred_.push_back(argmax(model.logits(a).to(Device::cpu()), 1));
  }

  void write(const std::string& path, const std::vector<std::string>& names) const {
    const int64_t n = count();
    check(n > 0, "attack", "no image to draw in ", path);
    const Tensor clean = cat(clean_, 0), adv = cat(adv_, 0);
    const int64_t c = clean.size(1), h = clean.size(2), w = clean.size(3);
    const auto flat = [](const std::vector<Tensor>& parts) {
      std::vector<int64_t> v;
      for (const Tensor& t : parts)
        if (t.defined())
          for (int64_t x : t.to_vector<int64_t>()) v.push_back(x);
      return v;
    };
    const std::vector<int64_t> y = flat(labels_), cp = flat(clean_pred_), ap = flat(adv_pred_), tg = flat(targets_);
    const auto name = [&](int64_t k) {
      return k >= 0 && k < static_cast<int64_t>(names.size()) ? names[k] : std::to_string(k);
    };
    const int64_t scale = std::max<int64_t>(1, 112 / std::max(h, w));
    ImageGrid grid(2 * n, 8, h, w, scale, 2);
    for (int64_t i = 0; i < n; ++i) {
      grid.image(2 * i, clean.data<float>() + i * c * h * w, c, {}, {});
      grid.caption(2 * i, 0, "clean: " + name(cp[i]));
      grid.caption(2 * i, 1, "label: " + name(y[i]));
      grid.image(2 * i + 1, adv.data<float>() + i * c * h * w, c, {}, {});
      grid.caption(2 * i + 1, 0, "adv: " + name(ap[i]));
      if (!tg.empty()) grid.caption(2 * i + 1, 1, "target: " + name(tg[i]));
    }
    grid.write_png(path, "attack");
  }

 private:
  int64_t count() const {
    int64_t n = 0;
    for (const Tensor& t : clean_) n += t.size(0);
    return n;
  }
  std::vector<Tensor> clean_, adv_, labels_, targets_, clean_pred_, adv_pred_;
};

int run_attack(const AttackCommand& o) {
  const char* op = "attack";
  const probe::AttackOptions a = attack_options(o);
  const bool fixed_input = !o.input.inputs.empty();
  check(!fixed_input || !o.input.labels.empty(), op, "--input needs --labels");
  check(!fixed_input || (o.input.inputs.size() == 1 && ends_with(o.input.inputs[0], ".safetensors")), op,
        "--input takes one safetensors file holding `input` in [0, 1] pixel space");
  check(!fixed_input || (o.split.samples == 0 && o.split.data.empty()), op,
        "give either --input or a dataset split (--samples, --data), not both");
  const Device device = o.run.resolve();
  LoadedModel target = o.model.load(device, op);
  if (a.targeted)
    check(o.target_class < target.spec.num_classes, op, "--target-class ", o.target_class, " is outside [0, ",
          target.spec.num_classes, ")");

  // The models: the target first, crafted on (white-box) and evaluated; then each source.
  std::vector<LoadedModel> sources;
  for (const std::string& path : o.sources) {
    ModelOptions s;
    s.weights = path;
    LoadedModel m = s.load(device, op);
    check(m.spec.in_channels == target.spec.in_channels && m.spec.num_classes == target.spec.num_classes, op, "source ",
          path, " takes ", m.spec.in_channels, " channels and gives ", m.spec.num_classes, " classes, but ",
          o.model.weights, " takes ", target.spec.in_channels, " and gives ", target.spec.num_classes);
    const int64_t ss = trained_image_size(m), ts = trained_image_size(target);
    check(ss == 0 || ts == 0 || ss == ts, op, "source ", path, " was trained on ", ss, "x", ss, " images, but ",
          o.model.weights, " on ", ts, "x", ts);
    sources.push_back(std::move(m));
  }
  std::vector<std::unique_ptr<probe::NormalizedModel>> wrapped;
  const auto wrap = [&](LoadedModel& m, const std::string& path) {
    auto [mean, stdev] = normalisation(o, m, path);
    wrapped.push_back(std::make_unique<probe::NormalizedModel>(*m.model, mean, stdev));
  };
  wrap(target, o.model.weights);
  for (size_t i = 0; i < sources.size(); ++i) wrap(sources[i], o.sources[i]);
  std::vector<probe::AttackModel*> models;
  for (auto& w : wrapped) models.push_back(w.get());

  // The images, in [0, 1] pixel space: the model's normalisation runs inside the attack.
  std::string what;
  std::vector<std::string> class_names;
  std::unique_ptr<probe::BatchSource> batches;
  std::unique_ptr<augment::DataLoader> loader;
  int64_t total = 0;
  if (fixed_input) {
    const BatchInputOptions::Batch b = o.input.read(target, o.images, op);
    check(b.labels.dtype() == DType::i64, op, "--labels must hold class indices (i64) for an attack");
    // Checked here too (the attack checks every batch), so a bad file fails before any output.
    const std::vector<float> pixels = b.images.to_vector<float>();
    const auto [lo, hi] = std::minmax_element(pixels.begin(), pixels.end());
    check(*lo >= -1e-6f && *hi <= 1 + 1e-6f, op, o.input.inputs[0],
          ": `input` must be pixels in [0, 1], got values in [", *lo, ", ", *hi,
          "] (un-normalise them: the models' normalisation is applied inside the attack)");
    total = b.images.size(0);
    batches = std::make_unique<probe::TensorBatches>(b.images, b.labels, o.split.batch);
    what = o.input.inputs[0] + " (" + std::to_string(total) + " images)";
  } else {
    const std::string dataset = o.images.dataset_for(target, "fashion-mnist");
    const augment::Dataset split = o.split.load(dataset, target, op);
    augment::LoaderOptions lo = o.split.loader_options(split, o.images.image_size_for(dataset, target));
    lo.pipeline.mean.clear();
    lo.pipeline.std.clear();
    loader = std::make_unique<augment::DataLoader>(split, lo);
    total = loader->size();
    check(total > 0, op, "the ", dataset, " test split holds no image");
    batches = std::make_unique<probe::LoaderBatches>(*loader);
    class_names = split.class_names;
    what = dataset + " test split (" + std::to_string(total) + " images)";
  }

  const size_t rows = models.size();
  std::vector<std::vector<Tensor>> adv_parts(rows);
  std::vector<Tensor> label_parts, target_parts;
  PairGrid grid;
  probe::TransferOptions t;
  t.attack = a;
  t.seed = o.seed;
  t.target_class = o.target_class;
  t.on_batch = [&](size_t crafter, const augment::Batch& clean, const Tensor& adv, const Tensor& attack_labels) {
    if (!o.save_adv.empty()) {
      adv_parts[crafter].push_back(adv.to(Device::cpu()));
      if (crafter == 0) {
        label_parts.push_back(clean.labels.to(Device::cpu()));
        if (a.targeted) target_parts.push_back(attack_labels.to(Device::cpu()));
      }
    }
    if (!o.grid.empty() && crafter == 0)
      grid.add(*models[0], clean.images, adv, clean.labels, attack_labels, a.targeted);
  };
  Progress bar(total, probe::attack_name(a.kind), true);
  t.progress = [&](int64_t done) { bar.update(done, double(done) * double(rows)); };

  std::printf("%s on %s\n", describe(a).c_str(), what.c_str());
  const auto start = std::chrono::steady_clock::now();
  const auto table = probe::transfer_evaluation(models, models, *batches, t);
  bar.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Rows: crafted on; the columns the target's clean and robust errors, then the source's own.
  std::vector<std::string> names = {o.model.weights}, relations = {"white-box"};
  for (size_t i = 0; i < sources.size(); ++i) {
    names.push_back(o.sources[i]);
    relations.push_back(relation(o.sources[i], sources[i], o.model.weights, target));
  }
  const auto model_of = [&](size_t r) { return r == 0 ? target.spec.name : sources[r - 1].spec.name; };
  std::vector<std::string> labels;
  int width = 10;
  for (size_t r = 0; r < rows; ++r) {
    labels.push_back(names[r] + " (" + model_of(r) + ")");
    width = std::max(width, static_cast<int>(labels.back().size()));
  }
  std::printf("  evaluated on %s (%s); errors in %%\n", o.model.weights.c_str(), target.spec.name.c_str());
  std::printf("  %-*s %-10s %8s %8s %8s %8s%s\n", width, "crafted on", "", "clean@1", "adv@1", "clean@5", "adv@5",
              rows > 1 ? "   source itself: clean@1 adv@1" : "");
  for (size_t r = 0; r < rows; ++r) {
    const probe::AttackEvaluation& e = table[r][0];
    std::printf("  %-*s %-10s %8.2f %8.2f %8.2f %8.2f", width, labels[r].c_str(), relations[r].c_str(),
                e.clean.top1_error(), e.adversarial.top1_error(), e.clean.top5_error(), e.adversarial.top5_error());
    if (r > 0) std::printf("   %21.2f %6.2f", table[r][r].clean.top1_error(), table[r][r].adversarial.top1_error());
    std::printf("\n");
  }
  if (a.targeted)
    std::printf("  target reached (white-box): %.2f%% of the images\n", table[0][0].adversarial.target_hit_rate());
  std::printf("  %lld images in %.1f s (%.1f images/s per crafting model)\n", (long long)total, seconds,
              double(total) * double(rows) / seconds);

  if (!o.save_adv.empty()) {
    std::map<std::string, Tensor> out = {{"adv", cat(adv_parts[0], 0)}, {"labels", cat(label_parts, 0)}};
    for (size_t r = 1; r < rows; ++r) out["adv.source" + std::to_string(r - 1)] = cat(adv_parts[r], 0);
    if (a.targeted) out["targets"] = cat(target_parts, 0);
    std::map<std::string, std::string> meta = {{"model", target.spec.name},
                                               {"weights", o.model.weights},
                                               {"attack", probe::attack_name(a.kind)},
                                               {"eps", fixed(a.eps, 8)},
                                               {"seed", std::to_string(o.seed)}};
    for (size_t r = 1; r < rows; ++r) meta["source" + std::to_string(r - 1)] = names[r];
    save_safetensors(o.save_adv, out, meta);
    std::printf("  wrote %s\n", o.save_adv.c_str());
  }
  if (!o.grid.empty()) {
    grid.write(o.grid, class_names);
    std::printf("  wrote %s\n", o.grid.c_str());
  }
  if (!o.json_out.empty()) {
    const probe::AttackEvaluation& w = table[0][0];
    nlohmann::json j = {{"attack", probe::attack_name(a.kind)},
                        {"eps", a.eps},
                        {"step", a.step},
                        {"steps", a.kind == probe::AttackKind::fgsm ? 1 : a.steps},
                        {"random_start", a.kind == probe::AttackKind::apgd_ce || a.random_start},
                        {"restarts", a.restarts},
                        {"targeted", a.targeted},
                        {"seed", o.seed},
                        {"model", target.spec.name},
                        {"weights", o.model.weights},
                        {"samples", total},
                        {"seconds", seconds},
                        {"clean_top1_error", w.clean.top1_error()},
                        {"robust_top1_error", w.adversarial.top1_error()},
                        {"clean_top5_error", w.clean.top5_error()},
                        {"robust_top5_error", w.adversarial.top5_error()}};
    if (a.targeted) j["target_hit_rate"] = w.adversarial.target_hit_rate();
    nlohmann::json per_source = nlohmann::json::array();
    for (size_t r = 1; r < rows; ++r) {
      const probe::AttackEvaluation& e = table[r][0];
      const probe::AttackEvaluation& own = table[r][r];
      per_source.push_back({{"weights", names[r]},
                            {"model", model_of(r)},
                            {"relation", relations[r]},
                            {"clean_top1_error", e.clean.top1_error()},
                            {"robust_top1_error", e.adversarial.top1_error()},
                            {"clean_top5_error", e.clean.top5_error()},
                            {"robust_top5_error", e.adversarial.top5_error()},
                            {"source_clean_top1_error", own.clean.top1_error()},
                            {"source_robust_top1_error", own.adversarial.top1_error()}});
    }
    if (rows > 1) j["sources"] = per_source;
    write_json(o.json_out, j);
    std::printf("  wrote %s\n", o.json_out.c_str());
  }
  return 0;
}

}  // namespace

void add_attack_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "attack",
      "Clean and robust error under FGSM, PGD (L-inf, L2) or APGD-CE, white-box and transferred from --source models");
  auto o = std::make_shared<AttackCommand>();
  o->model.add_to(*cmd);
  cmd->add_option("--source", o->sources,
                  "Checkpoints to craft the attack on and transfer to --weights (gray-box: same architecture, "
                  "black-box: another one); the same input shape and classes")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->expected(1, -1)
      ->group("Model");
  cmd->add_option("--mean", o->channel_mean,
                  "Per-channel mean the models normalise with, e.g. 0.5,0.5,0.5 (default: the "
                  "checkpoint's dataset's)")
      ->delimiter(',')
      ->group("Model");
  cmd->add_option("--std", o->channel_std,
                  "Per-channel std the models normalise with (default: the checkpoint's dataset's)")
      ->delimiter(',')
      ->group("Model");
  o->images.add_to(*cmd, dataset_names_text(), "the checkpoint's, else fashion-mnist");
  o->split.add_to(*cmd);
  o->input.add_to(*cmd);
  o->input.input_flag->description(
      "A safetensors file holding `input` (N,C,H,W f32) in [0, 1] pixel space; needs --labels");
  cmd->get_option("--labels")->description("safetensors file holding `labels` (N i64), or class indices \"3,1,4\"");
  cmd->add_option("--attack", o->attack, "fgsm, pgd (L-inf), pgd-l2 or apgd-ce (L-inf)")
      ->check(CLI::IsMember({"fgsm", "pgd", "pgd-l2", "apgd-ce"}))
      ->capture_default_str()
      ->group("Attack");
  cmd->add_option("--eps", o->eps,
                  "Radius in pixel units, 8/255 or 0.0314 (default: 8/255; pgd-l2: 1.0, the L2 norm of the "
                  "whole perturbation)")
      ->group("Attack");
  cmd->add_option("--step", o->step, "pgd, pgd-l2: step size in pixel units (default: 2/255; pgd-l2: 0.2)")
      ->group("Attack");
  o->steps_flag = cmd->add_option("--steps", o->steps, "Iterations (default: pgd 10, apgd-ce 100 as in AutoAttack)")
                      ->check(positive())
                      ->group("Attack");
  o->random_start_flag = cmd->add_flag("--random-start", o->random_start,
                                       "pgd, pgd-l2: start at a random point of the ball (on by default, as in "
                                       "torchattacks; --random-start=false turns it off)")
                             ->group("Attack");
  cmd->add_option("--restarts", o->restarts, "Runs, each on the images no run has fooled yet")
      ->check(positive())
      ->capture_default_str()
      ->group("Attack");
  cmd->add_flag("--targeted", o->targeted,
                "Walk towards a target class (a random other class per image unless --target-class)")
      ->group("Attack");
  cmd->add_option("--target-class", o->target_class, "Target class for every image (implies --targeted)")
      ->check(non_negative())
      ->group("Attack");
  cmd->add_option("--seed", o->seed, "Seed of the random starts and targets")->capture_default_str()->group("Attack");
  cmd->add_option("--save-adv", o->save_adv,
                  "safetensors file for the adversarial images: adv (N,C,H,W pixel space, crafted on --weights), "
                  "labels [, targets] [, adv.source<i> for each --source]")
      ->group("Output");
  cmd->add_option("--grid", o->grid, "PNG of the first 16 clean/adversarial pairs with the predicted classes")
      ->group("Output");
  cmd->add_option("--json", o->json_out,
                  "Write one JSON object to this file (attack, eps, clean/robust top-1/top-5 errors, samples, "
                  "seconds, sources)")
      ->group("Output");
  o->run.add_to(*cmd);
  on_run(cmd, [o] { return run_attack(*o); });
}

}  // namespace dmix::app
