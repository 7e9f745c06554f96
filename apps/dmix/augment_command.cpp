// `dmix augment`: shows what a mixing method does. Takes one shuffled training batch
// through the evaluation pipeline (no crop or flip, so only the mixing changes the
// images), mixes it with augment/mixing.h, and writes a PNG grid of the mixed samples,
// enlarged, each captioned with its largest soft labels; --json writes every sample's
// components (source image, class, weight) next to it.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "apps/dmix/datasets.h"
#include "apps/dmix/image_grid.h"
#include "augment/loader.h"
#include "augment/mixing.h"
#include "engine/error.h"

namespace dmix::app {
namespace {

struct AugmentOptions {
  std::string dataset = "fashion-mnist";
  std::string data;
  std::string class_index;
  int64_t image_size = 0;
  std::string mix = "dcutmix";
  int64_t k = 3;
  double alpha = 1.0, prob = 1.0;
  int64_t cutout_length = 16;
  std::string saliency = "spectral-residual";
  uint64_t seed = 0;
  std::string out = "augment.png";
  std::string json;
  int64_t count = 16, batch = 64, scale = 4, columns = 8;
};

constexpr int kCaptionLines = 3;

std::string class_name(const augment::Dataset& d, int64_t c) {
  return c >= 0 && c < static_cast<int64_t>(d.class_names.size()) ? d.class_names[static_cast<size_t>(c)]
                                                                   : std::to_string(c);
}

// The classes of one soft-label row by decreasing weight, zero weights left out.
std::vector<std::pair<int64_t, float>> ranked(const float* row, int64_t num_classes) {
  std::vector<std::pair<int64_t, float>> r;
  for (int64_t c = 0; c < num_classes; ++c)
    if (row[c] > 0.0f) r.push_back({c, row[c]});
  std::stable_sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return r;
}

int run_augment(const AugmentOptions& o) {
  const char* op = "augment";
  check(o.batch > 0 && o.count > 0 && o.scale > 0 && o.columns > 0, op,
        "--batch, --count, --scale and --columns must be positive");
  check(o.count <= o.batch, op, "--count ", o.count, " is larger than --batch ", o.batch);
  augment::MixOptions mix;
  mix.method = augment::parse_mix_method(o.mix);
  mix.k = o.k;
  mix.alpha = o.alpha;
  mix.prob = o.prob;
  mix.cutout_length = o.cutout_length;
  mix.detector = augment::parse_saliency_detector(o.saliency);

  const augment::Dataset dataset = load_dataset(o.dataset, o.data, true, o.class_index);
  augment::LoaderOptions lo;
  lo.batch_size = std::min<int64_t>(o.batch, dataset.size());
  lo.shuffle = true;
  lo.seed = o.seed;
  lo.num_workers = 0;
  lo.pipeline = augment::eval_pipeline(dataset.name, preset_image_size(o.dataset, o.image_size));
  mix.mean = lo.pipeline.mean;
  mix.std = lo.pipeline.std;
  augment::DataLoader loader(dataset, lo);
  augment::Batch batch;
  check(loader.next(batch), op, "the dataset ", o.dataset, " is empty");

  Generator gen(o.seed);
  const augment::MixedBatch mixed = augment::mix_batch(batch.images, batch.labels, batch.indices, dataset.num_classes, mix, gen);
  const int64_t B = mixed.images.size(0), C = mixed.images.size(1), H = mixed.images.size(2), W = mixed.images.size(3);
  const int64_t n = std::min(o.count, B);
  const float* images = mixed.images.data<float>();
  const float* targets = mixed.targets.data<float>();

  // The grid: tiles of the enlarged image above its caption.
  ImageGrid grid(n, o.columns, H, W, o.scale, kCaptionLines);
  for (int64_t s = 0; s < n; ++s) {
    grid.image(s, images + s * C * H * W, C, mix.mean, mix.std);
    const auto top = ranked(targets + s * dataset.num_classes, dataset.num_classes);
    for (int line = 0; line < kCaptionLines && line < static_cast<int>(top.size()); ++line) {
      char weight[16];
      std::snprintf(weight, sizeof weight, "%.2f ", top[static_cast<size_t>(line)].second);
      grid.caption(s, line, weight + class_name(dataset, top[static_cast<size_t>(line)].first));
    }
  }
  grid.write_png(o.out, op);

  if (!o.json.empty()) {
    nlohmann::json j;
    j["dataset"] = dataset.name;
    j["mix"] = augment::mix_method_name(mix.method);
    j["k"] = mix.k;
    j["alpha"] = mix.alpha;
    j["prob"] = mix.prob;
    j["seed"] = o.seed;
    j["mixed"] = mixed.mixed;
    if (mix.method == augment::MixMethod::Cutout) j["cutout_length"] = mix.cutout_length;
    if (mix.method == augment::MixMethod::SaliencyDCutMix) j["saliency"] = augment::saliency_detector_name(mix.detector);
    j["image_shape"] = {C, H, W};
    j["class_names"] = dataset.class_names;
    j["samples"] = nlohmann::json::array();
    for (int64_t s = 0; s < n; ++s) {
      nlohmann::json comps = nlohmann::json::array();
      for (const augment::MixComponent& c : mixed.components[static_cast<size_t>(s)])
        comps.push_back({{"index", c.index}, {"class", c.label}, {"weight", c.weight}});
      nlohmann::json soft = nlohmann::json::array();
      for (const auto& [c, w] : ranked(targets + s * dataset.num_classes, dataset.num_classes))
        soft.push_back({{"class", c}, {"weight", w}});
      j["samples"].push_back({{"position", s}, {"components", comps}, {"targets", soft}});
    }
    std::ofstream f(o.json);
    check(bool(f), op, "cannot write ", o.json);
    f << j.dump(2) << "\n";
    check(bool(f), op, "cannot write ", o.json);
  }

  std::printf("augment: %s on %lld of %lld %s training images (seed %llu), %s; wrote %s%s%s\n",
              augment::mix_method_name(mix.method), static_cast<long long>(n), static_cast<long long>(B),
              dataset.name.c_str(), static_cast<unsigned long long>(o.seed),
              mixed.mixed                              ? "mixed"
              : mix.method == augment::MixMethod::None ? "unchanged"
                                                    : "not mixed (the --mix-prob gate said no)",
              o.out.c_str(),
              o.json.empty() ? "" : " and ", o.json.c_str());
  return 0;
}

}  // namespace

void add_augment_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("augment", "Mix one training batch and write the mixed images as a PNG grid");
  auto o = std::make_shared<AugmentOptions>();
  cmd->add_option("--dataset", o->dataset, dataset_names_text())
      ->check(CLI::IsMember(dataset_names()))
      ->capture_default_str();
  cmd->add_option("--data", o->data, "Dataset folder (default for fashion-mnist: /usr/share/datasets/fashion-mnist)");
  cmd->add_option("--class-index", o->class_index, "Folder datasets: file of class names, one per line");
  cmd->add_option("--image-size", o->image_size, "Folder datasets: crop size (default 224)")->check(positive());
  cmd->add_option("--mix", o->mix, "none, cutout, mixup, cutmix, dmixup, dcutmix or saliency-dcutmix")
      ->capture_default_str();
  cmd->add_option("--mix-k", o->k, "Images per sample for dmixup / dcutmix / saliency-dcutmix")
      ->check(CLI::Range(int64_t(2), int64_t(64)))
      ->capture_default_str();
  cmd->add_option("--mix-alpha", o->alpha, "Dirichlet concentration (Beta(a, a) for mixup / cutmix)")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--mix-prob", o->prob, "Probability that the batch is mixed")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--cutout-length", o->cutout_length, "Cutout square side")->check(positive())->capture_default_str();
  cmd->add_option("--saliency", o->saliency, "Saliency detector for saliency-dcutmix: spectral-residual or fine-grained")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for the batch order and the mixing draws")->capture_default_str();
  cmd->add_option("--out", o->out, "PNG file to write")->capture_default_str();
  cmd->add_option("--json", o->json, "Also write each sample's components and soft labels to this JSON file");
  cmd->add_option("--count", o->count, "Samples to show and to list in --json")->check(positive())->capture_default_str();
  cmd->add_option("--batch", o->batch, "Batch size the mixing draws its partners from")->check(positive())->capture_default_str();
  cmd->add_option("--scale", o->scale, "Enlargement of each image in the grid")->check(CLI::Range(int64_t(1), int64_t(32)))->capture_default_str();
  cmd->add_option("--columns", o->columns, "Tiles per row")->check(positive())->capture_default_str();
  on_run(cmd, [o] { return run_augment(*o); });
}

}  // namespace dmix::app
