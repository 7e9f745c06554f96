// `dmix subsample`: scores a dataset's training images with a model (the CV of their
// K-image mixing losses, or a baseline measure), keeps a per-class fraction and writes
// the indices as the file `dmix train --subset` reads (augment/subsample.h). The model is
// a checkpoint trained on the full data, as in the paper, or one trained here briefly
// without mixing (--warmup-epochs). --grid draws one anchor's composites with their
// losses, as the paper's Fig. 2 does.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "apps/dmix/datasets.h"
#include "apps/dmix/image_grid.h"
#include "apps/dmix/options.h"
#include "apps/dmix/progress.h"
#include "apps/dmix/train.h"
#include "augment/subsample.h"
#include "augment/uncertainty.h"
#include "engine/autograd.h"
#include "nn/layers.h"

namespace dmix::app {

namespace {

struct SubsampleCommandOptions {
  ModelOptions model;
  ImageOptions images;
  SplitOptions split;
  RunOptions run;
  JsonOption json;
  std::string measure, select = "top", out, scores, grid, from_scores;
  double ratio = 0.0;
  augment::UncertaintyOptions uncertainty;
  int64_t mc_passes = 10;
  double mc_dropout_p = -1.0;  // < 0: 0.5 for a model without Dropout layers, else 0 (its own)
  int warmup_epochs = 0;
  int64_t anchor = 0;
};

// The scoring model: the checkpoint, or one trained here.
struct ScoringModel {
  LoadedModel loaded;
  std::string dataset;
  std::string source;       // the checkpoint named in the subset file's header
  std::string description;  // the model in the summary line
};

ScoringModel scoring_model(const SubsampleCommandOptions& o, Device device, const char* op) {
  ScoringModel s;
  if (!o.model.weights.empty()) {
    s.loaded = o.model.load(device, op);
    s.dataset = o.images.dataset_for(s.loaded, "fashion-mnist");
    s.source = s.description = o.model.weights;
    return s;
  }
  WarmupTraining w;
  if (!o.model.model.empty()) w.model = o.model.model;
  w.dataset = o.images.dataset.empty() ? "fashion-mnist" : o.images.dataset;
  w.data = o.split.data;
  w.class_index = o.split.class_index;
  w.image_size = o.images.image_size;
  w.limit_train = o.split.samples;
  w.epochs = o.warmup_epochs;
  w.seed = o.uncertainty.seed;
  w.workers = o.split.workers;
  w.quiet = o.json.on;
  const WarmupResult r = train_without_mixing(w, o.run);
  s.loaded.model = r.model;
  s.loaded.spec = {w.model, r.classes, r.channels};
  s.loaded.checkpoint.metadata["dataset"] = w.dataset;
  s.loaded.checkpoint.metadata["image_size"] = std::to_string(r.image_size);
  s.dataset = w.dataset;
  char text[256];
  std::snprintf(text, sizeof text,
                "%s trained here for %d epoch(s) without mixing on %lld images (seed %llu, last epoch's train "
                "error %.2f%%)",
                w.model.c_str(), w.epochs, (long long)r.images, (unsigned long long)w.seed, r.train_top1_error);
  s.description = text;
  s.source = "none: " + s.description;
  return s;
}

std::string class_name(const augment::Dataset& d, int64_t c) {
  return c >= 0 && c < static_cast<int64_t>(d.class_names.size()) ? d.class_names[static_cast<size_t>(c)]
                                                                  : std::to_string(c);
}

std::string fixed(double x, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

// The Fig. 2 grid: the anchor, then its M composites (the draws scoring makes for it in
// this pool) captioned with their loss and the pixel share of each depth. Returns the losses.
std::vector<double> write_grid(nn::Module& model, const augment::Dataset& train, const augment::Pipeline& pipeline,
                               const std::vector<int64_t>& pool, const SubsampleCommandOptions& o, const char* op) {
  const int64_t P = static_cast<int64_t>(pool.size());
  check(o.anchor >= 0 && o.anchor < P, op, "--anchor ", o.anchor, " is not among the ", P, " images scored");
  augment::PreparedImages prepared(train, pipeline);
  const int64_t C = prepared.channels(), H = prepared.height(), W = prepared.width(), M = o.uncertainty.draws;
  const std::vector<augment::AnchorDraw> draws = augment::anchor_draws(pool, o.anchor, H, W, o.uncertainty);
  std::vector<int64_t> needed = {pool[static_cast<size_t>(o.anchor)]};
  for (const augment::AnchorDraw& d : draws) needed.insert(needed.end(), d.sources.begin(), d.sources.end());
  prepared.prepare(needed);
  Tensor composites = Tensor::empty({M, C, H, W}, DType::f32);
  augment::render_composites(
      draws, [&](int64_t i) { return prepared.image(i); }, C, H, W, composites.data<float>());

  Tensor logits;
  {
    augment::TrainingModeGuard restore(model);
    model.eval();
    autograd::NoGradGuard no_grad;
    logits = model.forward(composites.to(model.device())).to(Device::cpu());
  }
  const int64_t classes = logits.size(1);
  const int64_t* labels = train.labels.data<int64_t>();
  std::vector<double> losses;
  for (int64_t m = 0; m < M; ++m)
    losses.push_back(
        augment::composite_loss(draws[static_cast<size_t>(m)], labels, logits.data<float>() + m * classes, classes));
  const augment::LossSummary summary = augment::summarize_losses(losses);

  const int64_t anchor = pool[static_cast<size_t>(o.anchor)];
  ImageGrid grid(M + 1, std::min<int64_t>(M + 1, 11), H, W, 4, 3);
  grid.image(0, prepared.image(anchor), C, pipeline.mean, pipeline.std);
  grid.caption(0, 0, "anchor " + std::to_string(anchor));
  grid.caption(0, 1, class_name(train, labels[anchor]));
  grid.caption(0, 2, "m " + fixed(summary.mean, 2) + " cv " + fixed(summary.cv, 2));
  for (int64_t m = 0; m < M; ++m) {
    const augment::AnchorDraw& d = draws[static_cast<size_t>(m)];
    grid.image(m + 1, composites.data<float>() + m * C * H * W, C, pipeline.mean, pipeline.std);
    grid.caption(m + 1, 0, "L " + fixed(losses[static_cast<size_t>(m)], 3));
    std::string shares = "w", partners = "";
    for (size_t k = 0; k < d.weights.size(); ++k) {
      shares += " " + fixed(d.weights[k], 2);
      if (d.sources[k] != anchor) partners += (partners.empty() ? "" : ",") + class_name(train, labels[d.sources[k]]);
    }
    grid.caption(m + 1, 1, shares);
    grid.caption(m + 1, 2, partners);
  }
  grid.write_png(o.grid, op);
  return losses;
}

// --from-scores: the per-image statistics a --scores file holds, and where they came from.
struct SavedScores {
  std::string dataset, checkpoint;
  std::vector<augment::SampleUncertainty> images;
};

SavedScores read_scores(const std::string& path, const char* op) {
  std::ifstream in(path);
  check(in.is_open(), op, "cannot open --from-scores file '", path, "'");
  SavedScores s;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    s.dataset = j.at("dataset").get<std::string>();
    s.checkpoint = j.at("checkpoint").get<std::string>();
    for (const auto& image : j.at("images")) {
      augment::SampleUncertainty u;
      u.index = image.at("index").get<int64_t>();
      u.label = image.at("class").get<int64_t>();
      // write_scores_json writes a statistic that is not finite as null.
      auto value = [&](const char* key) {
        return image.at(key).is_null() ? std::nan("") : image.at(key).get<double>();
      };
      u.mean = value("mean");
      u.std = value("std");
      u.cv = value("cv");
      s.images.push_back(u);
    }
  } catch (const nlohmann::json::exception& e) {
    fail(op, path, " is not a scores file written by dmix subsample --scores: ", e.what());
  }
  check(!s.images.empty(), op, path, " holds no image");
  return s;
}

// The scored pool and the selection, from a model or from a --scores file.
struct Selection {
  std::vector<int64_t> pool;
  augment::SubsampleResult result;
  std::string source;       // the checkpoint line of the subset file
  std::string description;  // where the scores came from, for the summary line
  double scoring_s = 0;
};

Selection select_from_scores(const SubsampleCommandOptions& o, const augment::SubsampleOptions& so,
                             augment::Dataset& train, const char* op) {
  const SavedScores saved = read_scores(o.from_scores, op);
  const std::string dataset = o.images.dataset.empty() ? saved.dataset : o.images.dataset;
  train = load_dataset(dataset, o.split.data, true, o.split.class_index);
  Selection sel;
  std::vector<int64_t> labels;
  for (const augment::SampleUncertainty& u : saved.images) {
    check(u.index >= 0 && u.index < train.size() && train.labels.data<int64_t>()[u.index] == u.label, op, o.from_scores,
          ": image ", u.index, " of class ", u.label, " is not in the ", dataset, " training split (", train.size(),
          " images): scores of another dataset?");
    sel.pool.push_back(u.index);
    labels.push_back(u.label);
  }
  augment::validate_subset(sel.pool, train.size(), o.from_scores);
  sel.result.scores = saved.images;
  sel.result.measure = augment::measure_scores(so.measure, saved.images);
  sel.result.subset = augment::select_per_class(sel.pool, labels, sel.result.measure, so.ratio, so.rule);
  sel.source = "scores " + o.from_scores + " of " + saved.checkpoint;
  sel.description = sel.source;
  return sel;
}

int run_subsample(SubsampleCommandOptions& o) {
  const char* op = "subsample";
  const auto t0 = std::chrono::steady_clock::now();
  // Everything a flag alone can get wrong is an error before a model is loaded or trained.
  check(!o.out.empty() || !o.grid.empty(), op, "give --out FILE for the subset (or --grid FILE for one anchor)");
  const bool from_scores = !o.from_scores.empty();
  check(o.model.weights.empty() || o.warmup_epochs == 0, op,
        "--weights and --warmup-epochs both give the scoring model; pass one of them");
  if (from_scores) {
    check(o.model.weights.empty() && o.warmup_epochs == 0 && o.grid.empty() && o.scores.empty() && o.split.samples == 0,
          op,
          "--from-scores selects among the images of the scores file: it takes no --weights, --warmup-epochs, "
          "--samples, --grid or --scores");
  } else {
    check(!o.model.weights.empty() || o.warmup_epochs > 0, op,
          "needs a scoring model: --weights FILE (trained on the full data, as in the paper) or --warmup-epochs E "
          "(train one here without mixing)");
  }
  augment::SubsampleOptions so;
  if (!o.out.empty()) {
    check(!o.measure.empty(), op, "--out needs --measure (cv, mean-low, mean-high, std, random, mc-dropout, kcenter)");
    so.measure = augment::parse_subset_measure(o.measure);
    check(std::isfinite(o.ratio) && o.ratio > 0.0 && o.ratio <= 1.0, op, "--ratio must be in (0, 1], got ", o.ratio);
    so.rule = augment::parse_selection_rule(o.select);
    check(so.measure != augment::SubsetMeasure::KCenter || so.rule == augment::SelectionRule::Top, op,
          "kcenter picks its own centres and has no ranking to space out: use --select top");
    check(o.scores.empty() || augment::measure_uses_mixing(so.measure), op, "--scores writes the mixing losses, which ",
          o.measure, " does not compute (use cv, mean-low, mean-high or std)");
    check(!from_scores || augment::measure_uses_mixing(so.measure), op,
          "--from-scores holds the mixing statistics, from which ", o.measure,
          " cannot be computed (use cv, mean-low, mean-high or std)");
    so.ratio = o.ratio;
  } else {
    check(o.scores.empty(), op, "--scores needs --out and a mixing measure");
  }
  augment::validate(o.uncertainty);
  check(o.mc_dropout_p < 1.0, op, "--mc-dropout-p must be below 1, got ", o.mc_dropout_p);

  augment::Dataset train;
  Selection sel;
  nlohmann::json summary;
  if (from_scores) {
    sel = select_from_scores(o, so, train, op);
    summary["checkpoint"] = sel.source;
  } else {
    const Device device = o.run.resolve();
    ScoringModel sm = scoring_model(o, device, op);
    nn::Module& model = *sm.loaded.model;
    train = o.split.load(sm.dataset, sm.loaded, op);
    const augment::Pipeline pipeline =
        augment::eval_pipeline(train.name, o.images.image_size_for(sm.dataset, sm.loaded));
    sel.pool.resize(static_cast<size_t>(o.split.samples > 0 ? std::min(o.split.samples, train.size()) : train.size()));
    for (size_t i = 0; i < sel.pool.size(); ++i) sel.pool[i] = static_cast<int64_t>(i);
    sel.source = sm.source;
    sel.description = sm.description;
    summary["model"] = sm.loaded.spec.name;
    summary["checkpoint"] = sm.source;

    if (!o.grid.empty()) {
      const std::vector<double> losses = write_grid(model, train, pipeline, sel.pool, o, op);
      summary["grid"] = {{"file", o.grid}, {"anchor", sel.pool[static_cast<size_t>(o.anchor)]}, {"losses", losses}};
      if (!o.json.on && o.out.empty()) {
        std::string text;
        for (double l : losses) text += (text.empty() ? "" : " ") + fixed(l, 4);
        std::printf("subsample: wrote %s: anchor %lld and its %lld composites, losses %s\n", o.grid.c_str(),
                    (long long)sel.pool[static_cast<size_t>(o.anchor)], (long long)losses.size(), text.c_str());
      }
    }
    if (!o.out.empty()) {
      so.uncertainty = o.uncertainty;
      so.uncertainty.batch_size = o.split.batch;
      so.mc_dropout.passes = o.mc_passes;
      so.mc_dropout.seed = o.uncertainty.seed;
      so.mc_dropout.batch_size = o.split.batch;
      so.mc_dropout.head_dropout = o.mc_dropout_p;
      if (o.mc_dropout_p < 0) {
        bool has_dropout = false;
        for (nn::Module* m : model.modules()) has_dropout = has_dropout || dynamic_cast<nn::Dropout*>(m) != nullptr;
        so.mc_dropout.head_dropout = has_dropout ? 0.0 : 0.5;
      }
      Progress progress(static_cast<int64_t>(sel.pool.size()), "scoring " + o.measure, !o.json.on);
      so.uncertainty.progress = [&](int64_t done, int64_t) { progress.update(done, double(done)); };
      const auto s0 = std::chrono::steady_clock::now();
      sel.result = augment::subsample(model, train, pipeline, sel.pool, so);
      sel.scoring_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
      progress.finish();
    }
  }
  const int64_t P = static_cast<int64_t>(sel.pool.size());
  summary["dataset"] = train.name;
  summary["images"] = P;

  if (!o.out.empty()) {
    augment::SubsetFileInfo info;
    info.measure = augment::subset_measure_name(so.measure);
    info.rule = augment::selection_rule_name(so.rule);
    info.ratio = so.ratio;
    info.seed = o.uncertainty.seed;
    info.checkpoint = sel.source;
    info.dataset = train.name;
    info.dataset_size = train.size();
    augment::write_subset_file(o.out, sel.result.subset, info);
    if (!o.scores.empty())
      augment::write_scores_json(o.scores, sel.result.scores, so.uncertainty, sel.source, train.name);

    std::vector<int64_t> per_class(static_cast<size_t>(train.num_classes), 0);
    for (int64_t i : sel.result.subset) ++per_class[static_cast<size_t>(train.labels.data<int64_t>()[i])];
    const bool scored = !from_scores && augment::measure_uses_mixing(so.measure);
    const double images_per_s = double(P) / std::max(sel.scoring_s, 1e-9);
    const double composites_per_s = double(P * so.uncertainty.draws) / std::max(sel.scoring_s, 1e-9);
    summary["measure"] = info.measure;
    summary["select"] = info.rule;
    summary["ratio"] = so.ratio;
    summary["seed"] = info.seed;
    summary["selected"] = sel.result.subset.size();
    summary["per_class"] = per_class;
    summary["scoring_s"] = sel.scoring_s;
    summary["images_per_s"] = from_scores ? nlohmann::json() : nlohmann::json(images_per_s);
    summary["composites_per_s"] = scored ? nlohmann::json(composites_per_s) : nlohmann::json();
    summary["out"] = o.out;
    if (scored) summary["draws"] = so.uncertainty.draws;
    if (so.measure == augment::SubsetMeasure::McDropout)
      summary["mc_dropout"] = {{"passes", so.mc_dropout.passes}, {"head_dropout", so.mc_dropout.head_dropout}};
    if (!o.scores.empty()) summary["scores"] = o.scores;
    const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!o.json.on) {
      std::string counts;
      for (int64_t n : per_class) counts += (counts.empty() ? "" : ", ") + std::to_string(n);
      std::string how = "selected from " + sel.description;
      if (!from_scores) {
        how = "scored by " + sel.description + " in " + fixed(sel.scoring_s, 1) + " s at " + fixed(images_per_s, 1) +
              " images/s";
        if (scored) how += " (" + fixed(composites_per_s, 1) + " composites/s)";
      }
      std::printf(
          "subsample: %s %s, ratio %g: %zu of %lld %s training images, per class [%s]; %s; %.1f s in all; "
          "wrote %s%s%s%s%s\n",
          info.measure.c_str(), info.rule.c_str(), so.ratio, sel.result.subset.size(), (long long)P, train.name.c_str(),
          counts.c_str(), how.c_str(), total_s, o.out.c_str(), o.scores.empty() ? "" : " and ", o.scores.c_str(),
          o.grid.empty() ? "" : " and ", o.grid.c_str());
    }
  }
  if (o.json.on) {
    summary["total_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s\n", summary.dump().c_str());
  }
  return 0;
}

}  // namespace

void add_subsample_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "subsample", "Choose a per-class fraction of the training images by a model's uncertainty (paper Fig. 5a)");
  auto o = std::make_shared<SubsampleCommandOptions>();
  o->split.train = true;
  o->model.add_to(*cmd, /*required=*/false);
  o->images.add_to(*cmd, dataset_names_text(), "the checkpoint's, else fashion-mnist");
  o->split.add_to(*cmd);
  cmd->add_option("--warmup-epochs", o->warmup_epochs,
                  "Without --weights: train --model (default pyramidnet11_a40_basic) this many epochs without mixing "
                  "on the images to score, and score with it")
      ->check(positive())
      ->group("Model");
  auto section = [cmd](const char* heading) { cmd->option_defaults()->group(heading); };
  section("Subsampling");
  cmd->add_option("--measure", o->measure, "cv, mean-low, mean-high, std, random, mc-dropout or kcenter");
  cmd->add_option("--ratio", o->ratio, "Fraction t of every class to keep, in (0, 1]");
  cmd->add_option("--select", o->select, "top (the highest scores) or interval (evenly spaced along the ranking)")
      ->capture_default_str();
  cmd->add_option("--draws", o->uncertainty.draws, "M: composites per image")->capture_default_str();
  cmd->add_option("--anchor-share", o->uncertainty.anchor_share, "The image's own share of every composite")
      ->capture_default_str();
  cmd->add_option("--alpha", o->uncertainty.alpha, "Dirichlet concentration of each partner's share")
      ->capture_default_str();
  cmd->add_option("--mix-k", o->uncertainty.k, "Images per composite (the image and K-1 partners)")
      ->capture_default_str();
  cmd->add_option("--mc-passes", o->mc_passes, "mc-dropout: forward passes T")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--mc-dropout-p", o->mc_dropout_p,
                  "mc-dropout: dropout on the classifier's input (default 0.5 for models without Dropout layers, "
                  "which keep their own otherwise)")
      ->check(non_negative());
  section("Run");
  cmd->add_option("--seed", o->uncertainty.seed, "Seed of the draws, the random measure and a warm-up model")
      ->capture_default_str();
  o->run.add_to(*cmd);
  section("Output");
  cmd->add_option("--out", o->out, "Subset file to write: one training-set index per line after a header comment");
  cmd->add_option("--scores", o->scores, "Also write every image's index, class, mean, std and cv (JSON)");
  cmd->add_option("--from-scores", o->from_scores,
                  "Select from a --scores file of an earlier run instead of scoring (cv, mean-low, mean-high, std)")
      ->group("Subsampling");
  cmd->add_option("--grid", o->grid, "Write a PNG of --anchor and its composites captioned with their losses");
  cmd->add_option("--anchor", o->anchor, "Training-set index the --grid shows")->capture_default_str();
  o->json.add_to(*cmd, "Print the summary as one JSON object");
  on_run(cmd, [o] { return run_subsample(*o); });
}

}  // namespace dmix::app
