// `dmix eval`: how well a checkpoint does on a dataset's test split (top-1 and top-5 error),
// and on request how it behaves beyond accuracy: OOD detection against another set of
// images (--ood), calibration (--ece, --reliability), and natural-adversarial accuracy on
// a folder of a subset of its classes (--restrict-to-folder-classes). The metrics live in
// probe/ (dmix/evaluation.h); this is their flags and output.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "apps/dmix/datasets.h"
#include "apps/dmix/options.h"
#include "dmix/data.h"
#include "dmix/evaluation.h"
#include "dmix/training.h"
#include "probe/plot.h"

namespace dmix::app {

namespace {

struct EvalCommand {
  ModelOptions model;
  ImageOptions images;
  SplitOptions split;
  RunOptions run;
  JsonOption json;
  std::string ood, ood_score = "msp", reliability;
  int64_t ood_samples = 0;
  bool ece = false, restrict_classes = false;

  // Anything beyond top-1/top-5 needs the logits of every image, not only the counts.
  bool wants_outputs() const { return !ood.empty() || ece || !reliability.empty() || restrict_classes; }
};

nlohmann::json ood_json(const probe::OodMetrics& m) {
  return {{"auroc", m.auroc}, {"aupr_out", m.aupr_out}, {"aupr_in", m.aupr_in}, {"fpr95", m.fpr95}};
}

int run_eval(const EvalCommand& o) {
  const char* op = "eval";
  const probe::OodScore score = probe::parse_ood_score(o.ood_score);
  check(o.reliability.empty() || ends_with(o.reliability, ".png") || ends_with(o.reliability, ".svg"), op,
        "--reliability ", o.reliability, " must end in .png or .svg");
  const Device device = o.run.resolve();
  LoadedModel m = o.model.load(device, op);
  const std::string dataset = o.images.dataset_for(m, "fashion-mnist");
  const augment::Dataset test = o.split.load(dataset, m, op);
  const int64_t image_size = o.images.image_size_for(dataset, m);
  augment::DataLoader loader(test, o.split.loader_options(test, image_size));
  if (!o.wants_outputs()) {
    const Evaluation e = evaluate(*m.model, loader);
    if (o.json.on) {
      const nlohmann::json j = {{"images", e.images}, {"top1_error", e.top1_error}, {"top5_error", e.top5_error}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%s on %s (%lld images): top-1 error %.2f%%, top-5 error %.2f%%\n", o.model.weights.c_str(),
                  dataset.c_str(), (long long)e.images, e.top1_error, e.top5_error);
    }
    return 0;
  }

  // The OOD images load first, so that a bad --ood fails before the long pass.
  augment::Dataset ood_set;
  if (!o.ood.empty()) ood_set = load_ood_dataset(o.ood, m.spec.in_channels);
  std::vector<int64_t> classes;
  if (o.restrict_classes) {
    classes = probe::classes_present(test.labels);
    check(!classes.empty(), op, "the split holds no image");
  }
  const probe::Outputs in = probe::collect_outputs(*m.model, loader, classes);
  const Tensor labels = o.restrict_classes ? probe::restrict_labels(in.labels, classes) : in.labels;
  const int64_t images = labels.size(0);
  const int64_t top5_k = std::min<int64_t>(5, in.logits.size(1));
  const double top1_error = 100.0 * double(images - nn::count_topk_correct(in.logits, labels, 1)) / double(images);
  const double top5_error = 100.0 * double(images - nn::count_topk_correct(in.logits, labels, top5_k)) / double(images);
  nlohmann::json j = {{"images", images}, {"top1_error", top1_error}, {"top5_error", top5_error}};
  std::vector<std::string> lines;
  if (o.restrict_classes) {
    j["classes"] = static_cast<int64_t>(classes.size());
    lines.push_back("logits restricted to the split's " + std::to_string(classes.size()) + " of the model's " +
                    std::to_string(m.spec.num_classes) + " classes");
  }

  if (!o.ood.empty()) {
    augment::LoaderOptions lo = dmix::loader_options(ood_set, /*train=*/false, o.split.batch, o.ood_samples);
    lo.num_workers = o.split.workers;
    // Prepared as the split's images: by the dataset's own evaluation pipeline where they have
    // its one size already, else resized and cropped to it first.
    const bool same_size = ood_set.images.defined() && native_image_size(dataset) == ood_set.images.size(2) &&
                           ood_set.images.size(2) == ood_set.images.size(3);
    lo.pipeline = same_size ? augment::eval_pipeline(dataset, image_size) : any_size_eval_pipeline(dataset, image_size);
    augment::DataLoader ood_loader(ood_set, lo);
    const probe::Outputs out = probe::collect_outputs(*m.model, ood_loader, classes);
    nlohmann::json both;
    for (const probe::OodScore s : {probe::OodScore::msp, probe::OodScore::energy}) {
      const probe::OodMetrics metrics =
          probe::ood_metrics(probe::confidence_scores(in.logits, s), probe::confidence_scores(out.logits, s));
      both[probe::ood_score_name(s)] = ood_json(metrics);
      if (s != score) continue;
      j.update(ood_json(metrics));
      j["ood_images"] = metrics.out_samples;
      j["ood_score"] = probe::ood_score_name(s);
      char numbers[192];
      std::snprintf(numbers, sizeof numbers,
                    " (%lld images, %s score): AUROC %.4f, AUPR-out %.4f, AUPR-in %.4f, FPR at 95%% TPR %.4f",
                    (long long)metrics.out_samples, probe::ood_score_name(s), metrics.auroc, metrics.aupr_out,
                    metrics.aupr_in, metrics.fpr95);
      lines.push_back("OOD " + o.ood + numbers);
    }
    j["ood_scores"] = both;
  }

  if (o.ece || !o.reliability.empty()) {
    const probe::plot::ReliabilityBins bins = probe::reliability_bins(in.logits, labels, probe::kCalibrationBins);
    j["ece"] = bins.ece;
    j["ece_bins"] = probe::kCalibrationBins;
    char line[128];
    std::snprintf(line, sizeof line, "expected calibration error (%lld bins) %.4f", (long long)probe::kCalibrationBins,
                  bins.ece);
    lines.push_back(line);
    if (!o.reliability.empty()) {
      probe::plot::Axes axes;
      axes.title = "Reliability: " + m.spec.name + " on " + dataset;
      axes.x_label = "confidence";
      axes.y_label = "accuracy";
      probe::plot::reliability_diagram(o.reliability, axes, bins);
      j["reliability"] = o.reliability;
      lines.push_back("wrote " + o.reliability);
    }
  }

  if (o.json.on) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s on %s (%lld images): top-1 error %.2f%%, top-5 error %.2f%%\n", o.model.weights.c_str(),
                dataset.c_str(), (long long)images, top1_error, top5_error);
    for (const std::string& line : lines) std::printf("%s\n", line.c_str());
  }
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Top-1/top-5 error of a checkpoint on a dataset's test split");
  auto o = std::make_shared<EvalCommand>();
  o->model.add_to(*cmd);
  o->images.add_to(*cmd, dataset_names_text(), "the checkpoint's, else fashion-mnist");
  o->split.add_to(*cmd);
  cmd->add_flag("--restrict-to-folder-classes", o->restrict_classes,
                "Natural adversarial accuracy (ImageNet-A protocol): keep only the logits of the classes the split "
                "holds (for a folder, its class folders, numbered by --class-index) for every metric")
      ->group("Data");
  cmd->add_option("--ood", o->ood,
                  "OOD detection against these images: a folder of image files (class folders of them, as "
                  "ImageNet-O, or loose files), or DATASET:DIR for a dataset's test split (mnist:DIR: MNIST's IDX "
                  "files); prepared as the split's images; adds auroc, aupr_out, aupr_in, fpr95")
      ->group("Analysis");
  cmd->add_option("--ood-score", o->ood_score,
                  "The confidence OOD detection ranks by: msp (max softmax) or energy (logsumexp of the logits); "
                  "the JSON has both under ood_scores")
      ->check(CLI::IsMember({"msp", "energy"}))
      ->capture_default_str()
      ->group("Analysis");
  cmd->add_option("--ood-samples", o->ood_samples, "Use only the first N OOD images")
      ->check(positive())
      ->group("Analysis");
  cmd->add_flag("--ece", o->ece, "Expected calibration error over 15 equal-width confidence bins (adds ece)")
      ->group("Analysis");
  cmd->add_option("--reliability", o->reliability, "Draw the reliability diagram of those bins (F.png or F.svg)")
      ->group("Analysis");
  o->run.add_to(*cmd);
  o->json.add_to(*cmd);
  on_run(cmd, [o] { return run_eval(*o); });
}

}  // namespace dmix::app
