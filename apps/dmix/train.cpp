// `dmix train`: trains a model on a dataset, evaluates it after every epoch, writes
// metrics as JSON lines and checkpoints (last + best), and resumes bit-exactly.
//
// Everything random is keyed by --seed: the model's initialisation (the default
// generator), the loader's per-epoch order and per-sample augmentation (pure functions of
// seed, epoch and sample index) and dropout (the default generator, whose state is saved
// in every checkpoint). So 2 epochs equal 1 epoch, stop, resume, 1 epoch.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "apps/dmix/datasets.h"
#include "apps/dmix/options.h"
#include "apps/dmix/progress.h"
#include "apps/dmix/train.h"
#include "augment/loader.h"
#include "augment/mixing.h"
#include "dmix/device.h"
#include "dmix/model_io.h"
#include "dmix/training.h"
#include "engine/ops.h"
#include "nas/eval_network.h"
#include "nn/checkpoint.h"
#include "nn/metrics.h"
#include "nn/optim.h"
#include "nn/schedule.h"

namespace dmix::app {

namespace {

struct TrainOptions {
  // Defaults are the main job: a small basic-block PyramidNet on Fashion-MNIST with
  // DCutMix, 6 epochs in under 10 minutes on 2 CPU cores (README, "Figures").
  std::string model = "pyramidnet11_a40_basic";
  std::string dataset = "fashion-mnist";
  std::string data;
  std::string class_index;  // folder datasets: class-index file
  int64_t image_size = 0;   // folder datasets: crop size (0: 224)
  int64_t num_classes = 0, in_channels = 0;  // 0: from the dataset
  ArchitectureOptions architecture;          // darts_cifar / darts_imagenet: genotype, layers, C
  // Networks with an auxiliary head and drop-path (the DARTS evaluation networks): the
  // auxiliary loss weight, and the drop-path probability p, applied as p * epoch / epochs
  // (DARTS's linear rise from 0). Negative: the model's default (0.4 and 0.3, 0 for darts_imagenet).
  double auxiliary_weight = -1.0, drop_path = -1.0;
  int epochs = 6;
  int64_t batch = 64;
  double lr = 0.1, momentum = 0.9, weight_decay = 5e-4, label_smoothing = 0.0;
  bool nesterov = true;
  std::string optimizer = "sgd";
  std::string schedule = "cosine";
  double warmup = 0.0;
  uint64_t seed = 0;
  RunOptions run;
  std::string out = "runs/default";
  std::string resume;
  int64_t limit_train = 0, limit_test = 0;
  int workers = 2;
  int stop_after = 0;  // > 0: stop after this many epochs in this run, as if interrupted
  // Mixing augmentation (augment/mixing.h), applied to each training batch.
  // DCutMix K=3 with alpha = 0.2 (the paper's PyramidNet-110 concentration) on half the
  // batches (p = 0.5, the PyramidNet-200 recipe's): on 6 epochs of pyramidnet11_a48_basic,
  // 7.79% test error against 9.51% for alpha = 1, p = 1 (README, "Figures").
  std::string mix = "dcutmix";
  int64_t mix_k = 3;
  double mix_alpha = 0.2, mix_prob = 0.5;
  int64_t cutout_length = 16;
  std::string saliency = "spectral-residual";
  std::string preset;
  std::string subset;
  // Per-image augmentation before mixing: "standard" (the dataset's preset: random crop
  // and flip, or the ImageNet recipe), "flip" or "none". "" picks the measured default:
  // none for Fashion-MNIST, whose short default runs lose accuracy to crops and flips
  // (5 epochs: 91.15% without, 88.97% with), standard for everything else.
  std::string augment;
  bool no_augment = false;  // --no-augment: augment = "none"
  int64_t pad_crop = -1;    // >= 0: replaces the preset's random-crop padding (0: no crop)
  bool quiet = false;
};

nlohmann::json options_json(const TrainOptions& o) {
  return {{"model", o.model}, {"dataset", o.dataset}, {"data", o.data}, {"class_index", o.class_index},
          {"image_size", o.image_size}, {"epochs", o.epochs}, {"batch", o.batch},
          {"lr", o.lr}, {"momentum", o.momentum}, {"weight_decay", o.weight_decay}, {"nesterov", o.nesterov},
          {"optimizer", o.optimizer}, {"schedule", o.schedule}, {"warmup", o.warmup}, {"seed", o.seed},
          {"label_smoothing", o.label_smoothing}, {"limit_train", o.limit_train}, {"limit_test", o.limit_test},
          {"subset", o.subset}, {"augment", o.augment}, {"pad_crop", o.pad_crop},
          {"mix", o.mix}, {"mix_k", o.mix_k}, {"mix_alpha", o.mix_alpha}, {"mix_prob", o.mix_prob}, {"cutout_length", o.cutout_length},
          {"saliency", o.saliency}, {"preset", o.preset}, {"genotype", o.architecture.genotype},
          {"layers", o.architecture.layers}, {"init_channels", o.architecture.init_channels},
          {"auxiliary_weight", o.auxiliary_weight}, {"drop_path", o.drop_path}};
}

std::vector<int64_t> first_n(int64_t n, int64_t size) {
  std::vector<int64_t> v(static_cast<size_t>(std::min(n, size)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i);
  return v;
}

// Everything a run trains with, built from the options by set_up(): the model and its
// optimizer and schedule, the two loaders, the mixing, and where a resumed run continues.
struct TrainingRun {
  Device device;
  int64_t classes = 0, channels = 0, image_size = 0;
  std::shared_ptr<nn::Module> model;
  nn::ModelSettings settings;         // beyond the model's name (a darts model's genotype, ...)
  nas::EvalNetwork* darts = nullptr;  // the model, when it is a DARTS evaluation network
  double auxiliary_weight = 0.0, drop_path = 0.0;
  std::unique_ptr<nn::Optimizer> optimizer;
  nn::LrSchedule schedule;
  std::unique_ptr<augment::DataLoader> train_loader, test_loader;
  augment::MixOptions mix;
  int start_epoch = 0;
  double best_error = 101.0;
  int best_epoch = 0;
  int64_t train_split_size = 0;
  std::vector<int64_t> subset_classes;  // --subset: its images per class
};

// The training loader's options: the per-image augmentation before mixing, and the subset.
augment::LoaderOptions train_loader_options(const TrainOptions& o, const augment::Dataset& train_set,
                                            int64_t image_size) {
  augment::LoaderOptions train_opt;
  train_opt.batch_size = o.batch;
  train_opt.shuffle = true;
  train_opt.drop_last = true;
  train_opt.seed = o.seed;
  train_opt.num_workers = o.workers;
  const std::string per_image = o.no_augment          ? "none"
                              : !o.augment.empty()    ? o.augment
                              : o.dataset == "fashion-mnist" ? "none"
                                                      : "standard";
  if (per_image == "standard") {
    train_opt.pipeline = augment::train_pipeline(train_set.name, image_size);
  } else {
    train_opt.pipeline = augment::eval_pipeline(train_set.name, image_size);
    train_opt.pipeline.hflip = per_image == "flip";
  }
  if (o.pad_crop >= 0) {
    check(!train_opt.pipeline.random_resized_crop.enabled && !train_opt.pipeline.resize_center_crop.enabled, "train",
          "--pad-crop applies to fixed-size datasets, not ", o.dataset);
    train_opt.pipeline.pad_crop = o.pad_crop;
  }
  if (!o.subset.empty()) train_opt.subset = augment::load_subset_file(o.subset, train_set.size());
  if (o.limit_train > 0) train_opt.subset = first_n(o.limit_train, train_set.size());
  return train_opt;
}

TrainingRun set_up(const TrainOptions& o) {
  TrainingRun r;
  r.device = o.run.resolve();
  check(o.epochs > 0 && o.batch > 0, "train", "--epochs and --batch must be positive");
  check(o.subset.empty() || o.limit_train == 0, "train",
        "--subset and --limit-train both choose the training images; give one of them");

  augment::Dataset train_set = load_dataset(o.dataset, o.data, true, o.class_index);
  augment::Dataset test_set = load_dataset(o.dataset, o.data, false, o.class_index);
  r.image_size = preset_image_size(o.dataset, o.image_size);
  r.classes = o.num_classes > 0 ? o.num_classes : train_set.num_classes;
  r.channels = o.in_channels > 0 ? o.in_channels : train_set.channels();
  check(r.channels == train_set.channels(), "train", "--in-channels ", r.channels, " but ", o.dataset,
        " images have ", train_set.channels());
  check(r.classes >= train_set.num_classes, "train", "--num-classes ", r.classes, " is below the dataset's ",
        train_set.num_classes);

  const bool darts = nas::is_eval_network_name(o.model);
  r.auxiliary_weight = o.auxiliary_weight >= 0 ? o.auxiliary_weight : darts ? 0.4 : 0.0;
  r.drop_path = o.drop_path >= 0 ? o.drop_path : o.model == "darts_cifar" ? 0.3 : 0.0;
  check(darts || (r.auxiliary_weight == 0 && r.drop_path == 0), "train",
        "--auxiliary-weight and --drop-path apply to darts_cifar and darts_imagenet, not ", o.model);
  r.settings = o.architecture.settings(o.model, r.auxiliary_weight > 0);

  // Resume: the checkpoint decides the model and where to continue.
  nn::Checkpoint resume;
  if (!o.resume.empty()) {
    resume = nn::load_checkpoint(o.resume);
    check(resume.is_dmix_checkpoint, "train", o.resume, " is a plain state dict, not a dmix training checkpoint");
    check(resume.meta("model") == o.model, "train", "checkpoint ", o.resume, " holds model ", resume.meta("model"),
          ", but --model is ", o.model);
    for (const auto& [key, value] : r.settings)
      check(resume.meta("model." + key) == value, "train", "checkpoint ", o.resume, " holds ", o.model,
            " with another ", key, " than the flags give (--genotype, --layers, --init-channels, --auxiliary-weight)");
    r.start_epoch = std::stoi(resume.meta("epoch"));
    r.best_error = std::stod(resume.meta("best_top1_error"));
    r.best_epoch = std::stoi(resume.meta("best_epoch"));
  }

  default_generator().set_state(o.seed, 0);
  r.model = build_model({o.model, r.classes, r.channels, r.settings}, r.device);
  r.darts = dynamic_cast<nas::EvalNetwork*>(r.model.get());
  OptimizerOptions opt;
  opt.name = o.optimizer;
  opt.lr = o.lr;
  opt.momentum = o.momentum;
  opt.weight_decay = o.weight_decay;
  opt.nesterov = o.nesterov;
  r.optimizer = make_optimizer(*r.model, opt);
  r.schedule = nn::LrSchedule::parse(o.schedule, o.lr, o.epochs);
  r.schedule.warmup_epochs = o.warmup;
  if (!o.resume.empty()) {
    r.model->load_state_dict(resume.model);
    r.optimizer->load_state_dict(resume.optimizer);
    default_generator().set_state(std::stoull(resume.meta("rng_seed")), std::stoull(resume.meta("rng_stream")));
  }

  const augment::LoaderOptions train_opt = train_loader_options(o, train_set, r.image_size);
  r.train_split_size = train_set.size();
  if (!o.subset.empty()) {
    r.subset_classes.assign(static_cast<size_t>(train_set.num_classes), 0);
    for (int64_t i : *train_opt.subset) ++r.subset_classes[static_cast<size_t>(train_set.labels.data<int64_t>()[i])];
  }
  augment::LoaderOptions test_opt = train_opt;
  test_opt.shuffle = false;
  test_opt.drop_last = false;
  test_opt.batch_size = std::max<int64_t>(o.batch, 256);
  test_opt.pipeline = augment::eval_pipeline(test_set.name, r.image_size);
  test_opt.subset.reset();
  if (o.limit_test > 0) test_opt.subset = first_n(o.limit_test, test_set.size());
  r.train_loader = std::make_unique<augment::DataLoader>(train_set, train_opt);
  r.test_loader = std::make_unique<augment::DataLoader>(test_set, test_opt);
  check(r.train_loader->batches_per_epoch() > 0, "train", "fewer training samples (", r.train_loader->size(),
        ") than one batch (", o.batch, ")");

  r.mix.method = augment::parse_mix_method(o.mix);
  r.mix.k = o.mix_k;
  r.mix.alpha = o.mix_alpha;
  r.mix.prob = o.mix_prob;
  r.mix.cutout_length = o.cutout_length;
  r.mix.detector = augment::parse_saliency_detector(o.saliency);
  r.mix.mean = train_opt.pipeline.mean;
  r.mix.std = train_opt.pipeline.std;
  r.mix.label_smoothing = o.label_smoothing;
  return r;
}

struct EpochStats {
  double loss = 0;  // mean over the epoch's images
  double top1_error = 0;
  double images_per_s = 0;
};

// One pass over the training loader: mixing, forward, loss, backward, step, with the
// learning rate of the schedule at every batch. A loss that is not finite stops the run
// before the step, so the last checkpoint written stays the last good one.
EpochStats train_one_epoch(TrainingRun& r, const TrainOptions& o, int epoch, const std::string& last_path) {
  const auto t0 = std::chrono::steady_clock::now();
  nn::Module& model = *r.model;
  augment::DataLoader& loader = *r.train_loader;
  const int64_t nb = loader.batches_per_epoch();
  model.train();
  // DARTS's drop-path schedule: p = drop_path * epoch / epochs, 0 in the first epoch.
  if (r.darts) r.darts->set_drop_path_prob(r.drop_path * double(epoch) / double(o.epochs));
  loader.start_epoch(epoch);
  Progress progress(nb, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs), !o.quiet);
  double loss_sum = 0;
  int64_t seen = 0, correct = 0;
  augment::Batch b;
  for (int64_t i = 0; loader.next(b); ++i) {
    r.optimizer->lr = r.schedule.lr_at(epoch + double(i) / double(nb));
    Tensor logits, loss;
    if (r.mix.method == augment::MixMethod::None) {
      logits = model.forward(b.images.to(r.device));
      loss = cross_entropy(logits, b.labels.to(r.device), o.label_smoothing);
      if (r.darts && r.darts->auxiliary_logits().defined() && r.auxiliary_weight > 0)
        loss = add(loss, mul_scalar(cross_entropy(r.darts->auxiliary_logits(), b.labels.to(r.device),
                                                  o.label_smoothing),
                                    r.auxiliary_weight));
    } else {
      // Mixing draws from the default generator, whose state every checkpoint saves, and
      // runs where the batch lives (the draws are the same on every device).
      augment::MixedBatch mixed =
          augment::mix_batch(b.images.to(r.device), b.labels, b.indices, r.classes, r.mix, default_generator());
      logits = model.forward(mixed.images);
      loss = soft_cross_entropy(logits, mixed.targets.to(r.device));
      if (r.darts && r.darts->auxiliary_logits().defined() && r.auxiliary_weight > 0)
        loss = add(loss, mul_scalar(soft_cross_entropy(r.darts->auxiliary_logits(), mixed.targets.to(r.device)),
                                    r.auxiliary_weight));
    }
    const double loss_value = loss.item();
    check(std::isfinite(loss_value), "train", "loss became ", loss_value, " at epoch ", epoch + 1, " batch ", i + 1,
          "; stopping (the last good checkpoint is ",
          std::filesystem::exists(last_path) ? last_path : std::string("not written yet"), "); try a lower --lr");
    r.optimizer->zero_grad();
    loss.backward();
    r.optimizer->step();
    const int64_t n = b.labels.size(0);
    loss_sum += loss_value * double(n);
    correct += nn::count_topk_correct(logits, b.labels, 1);
    seen += n;
    progress.update(i + 1, loss_sum / double(seen), double(seen));
  }
  progress.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {loss_sum / double(seen), 100.0 * double(seen - correct) / double(seen), double(seen) / seconds};
}

// Where a run writes: OUT/last.safetensors after every epoch, OUT/best.safetensors when
// the test error is the best so far, and one JSON line per epoch in OUT/metrics.jsonl.
struct RunOutput {
  std::string last_path, best_path;
  std::ofstream metrics;

  explicit RunOutput(const std::string& out) {
    namespace fs = std::filesystem;
    fs::create_directories(out);
    last_path = (fs::path(out) / "last.safetensors").string();
    best_path = (fs::path(out) / "best.safetensors").string();
    const std::string metrics_path = (fs::path(out) / "metrics.jsonl").string();
    metrics.open(metrics_path, std::ios::app);
    check(bool(metrics), "train", "cannot write ", metrics_path);
  }

  void record(const TrainingRun& r, const TrainOptions& o, int epoch, const EpochStats& train, const Evaluation& test,
              double epoch_seconds, bool is_best) {
    nlohmann::json line = {{"epoch", epoch + 1},
                           {"train_loss", train.loss},
                           {"train_top1_error", train.top1_error},
                           {"test_loss", test.loss},
                           {"test_top1_error", test.top1_error},
                           {"test_top5_error", test.top5_error},
                           {"lr", r.schedule.lr_at(epoch)},
                           {"train_images_per_s", train.images_per_s},
                           {"time_s", epoch_seconds}};
    metrics << line.dump() << "\n";
    metrics.flush();

    std::map<std::string, std::string> meta = {
        {"model", o.model},
        {"num_classes", std::to_string(r.classes)},
        {"in_channels", std::to_string(r.channels)},
        {"dataset", o.dataset},
        {"image_size", std::to_string(r.image_size)},
        {"epoch", std::to_string(epoch + 1)},
        {"top1_error", std::to_string(test.top1_error)},
        {"best_top1_error", std::to_string(r.best_error)},
        {"best_epoch", std::to_string(r.best_epoch)},
        {"rng_seed", std::to_string(default_generator().seed())},
        {"rng_stream", std::to_string(default_generator().stream())},
        {"config", options_json(o).dump()}};
    for (const auto& [key, value] : r.settings) meta["model." + key] = value;
    nn::save_checkpoint(last_path, *r.model, r.optimizer.get(), meta);
    if (is_best) nn::save_checkpoint(best_path, *r.model, r.optimizer.get(), meta);
  }
};

int run_train(const TrainOptions& o) {
  TrainingRun r = set_up(o);
  RunOutput output(o.out);
  if (!o.quiet)
    std::fprintf(stderr, "dmix train: %s (%lld parameters) on %s, %lld train / %lld test images, %d threads, %s\n",
                 o.model.c_str(), (long long)r.model->num_parameters(), o.dataset.c_str(),
                 (long long)r.train_loader->size(), (long long)r.test_loader->size(), num_threads(),
                 r.train_loader->options().pipeline.str().c_str());
  if (!o.quiet && !o.subset.empty()) {
    std::string counts;
    for (int64_t n : r.subset_classes) counts += (counts.empty() ? "" : ", ") + std::to_string(n);
    std::fprintf(stderr, "dmix train: subset %s: %lld of %lld training images, per class [%s]\n", o.subset.c_str(),
                 (long long)r.train_loader->size(), (long long)r.train_split_size, counts.c_str());
  }

  const int end_epoch = o.stop_after > 0 ? std::min(o.epochs, r.start_epoch + o.stop_after) : o.epochs;
  for (int epoch = r.start_epoch; epoch < end_epoch; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    const EpochStats train = train_one_epoch(r, o, epoch, output.last_path);
    const Evaluation test = evaluate(*r.model, *r.test_loader);
    const double epoch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const bool is_best = test.top1_error <= r.best_error;
    if (is_best) {
      r.best_error = test.top1_error;
      r.best_epoch = epoch + 1;
    }
    output.record(r, o, epoch, train, test, epoch_seconds, is_best);
    if (!o.quiet)
      std::fprintf(stderr,
                   "epoch %d/%d: train loss %.4f, test top-1 error %.2f%%, top-5 %.2f%%, %.0f img/s, %.1f s%s\n",
                   epoch + 1, o.epochs, train.loss, test.top1_error, test.top5_error, train.images_per_s,
                   epoch_seconds, is_best ? " (best)" : "");
  }
  std::printf("best test top-1 error: %.2f%% (epoch %d), accuracy %.2f%%; checkpoints in %s\n", r.best_error,
              r.best_epoch, 100.0 - r.best_error, o.out.c_str());
  return 0;
}

// The paper's recipes (reference-setups §1.8, §2.4): the official DCutMix / CutMix runs;
// and the longer Fashion-MNIST recipe behind the README's 95.25% figure.
struct Preset {
  const char* name;
  const char* what;
  std::vector<std::pair<std::string, std::string>> flags;
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = {
      {"pyramidnet110-c100-dcutmix", "PyramidNet-110 (a=64) CIFAR-100, DCutMix K=5 a=0.2: 16.95% in the paper",
       {{"--model", "pyramidnet110_a64"}, {"--dataset", "cifar100"}, {"--mix", "dcutmix"}, {"--mix-k", "5"},
        {"--mix-alpha", "0.2"}, {"--mix-prob", "1"}, {"--lr", "0.25"}, {"--batch", "64"}, {"--wd", "4e-5"},
        {"--nesterov", "true"}, {"--schedule", "multistep:0.75,0.9"}, {"--epochs", "300"}}},
      {"pyramidnet110-c100-dmixup", "PyramidNet-110 (a=64) CIFAR-100, DMixup K=3 a=1/3: 18.60% in the paper",
       {{"--model", "pyramidnet110_a64"}, {"--dataset", "cifar100"}, {"--mix", "dmixup"}, {"--mix-k", "3"},
        {"--mix-alpha", "0.333333"}, {"--mix-prob", "1"}, {"--lr", "0.25"}, {"--batch", "64"}, {"--wd", "4e-5"},
        {"--nesterov", "true"}, {"--schedule", "multistep:0.75,0.9"}, {"--epochs", "300"}}},
      {"pyramidnet200-c100-dcutmix", "PyramidNet-200 (a=240) CIFAR-100, DCutMix K=5 a=1 p=0.5: 13.86% in the paper",
       {{"--model", "pyramidnet200_a240"}, {"--dataset", "cifar100"}, {"--mix", "dcutmix"}, {"--mix-k", "5"},
        {"--mix-alpha", "1"}, {"--mix-prob", "0.5"}, {"--lr", "0.25"}, {"--batch", "64"}, {"--wd", "4e-5"},
        {"--nesterov", "true"}, {"--schedule", "multistep:0.75,0.9"}, {"--epochs", "300"}}},
      {"pyramidnet200-c10-dcutmix", "PyramidNet-200 (a=240) CIFAR-10, DCutMix K=3 a=1/3: 2.42% in the paper",
       {{"--model", "pyramidnet200_a240"}, {"--dataset", "cifar10"}, {"--mix", "dcutmix"}, {"--mix-k", "3"},
        {"--mix-alpha", "0.333333"}, {"--mix-prob", "1"}, {"--lr", "0.25"}, {"--batch", "64"}, {"--wd", "4e-5"},
        {"--nesterov", "true"}, {"--schedule", "multistep:0.75,0.9"}, {"--epochs", "300"}}},
      {"pyramidnet200-c100-cutmix", "PyramidNet-200 (a=240) CIFAR-100, CutMix b=1 p=0.5: 14.23% (CutMix README)",
       {{"--model", "pyramidnet200_a240"}, {"--dataset", "cifar100"}, {"--mix", "cutmix"}, {"--mix-alpha", "1"},
        {"--mix-prob", "0.5"}, {"--lr", "0.25"}, {"--batch", "64"}, {"--wd", "1e-4"}, {"--nesterov", "true"},
        {"--schedule", "multistep:0.5,0.75"}, {"--epochs", "300"}}},
      {"fmnist-wrn16-8", "WRN-16-8 Fashion-MNIST, 20 epochs, flip + 2-pixel crops, DCutMix K=3 a=0.2 p=0.5: 95.25%",
       {{"--model", "wrn16_8"}, {"--dataset", "fashion-mnist"}, {"--epochs", "20"}, {"--batch", "128"},
        {"--lr", "0.1"}, {"--wd", "5e-4"}, {"--nesterov", "true"}, {"--schedule", "cosine"}, {"--augment", "flip"},
        {"--pad-crop", "2"}, {"--mix", "dcutmix"}, {"--mix-k", "3"}, {"--mix-alpha", "0.2"}, {"--mix-prob", "0.5"}}},
  };
  return p;
}

std::string preset_list() {
  std::string s;
  for (const auto& p : presets()) s += std::string(s.empty() ? "" : ", ") + p.name;
  return s;
}

// Sets each of the preset's flags that the user did not give explicitly.
void apply_preset(TrainOptions& o, const std::string& name, const std::function<bool(const std::string&)>& given) {
  const Preset* preset = nullptr;
  for (const auto& p : presets())
    if (name == p.name) preset = &p;
  check(preset != nullptr, "train", "unknown preset '", name, "' (known: ", preset_list(), ")");
  for (const auto& [flag, value] : preset->flags) {
    if (given(flag)) continue;
    if (flag == "--model") o.model = value;
    else if (flag == "--dataset") o.dataset = value;
    else if (flag == "--mix") o.mix = value;
    else if (flag == "--mix-k") o.mix_k = std::stoll(value);
    else if (flag == "--mix-alpha") o.mix_alpha = std::stod(value);
    else if (flag == "--mix-prob") o.mix_prob = std::stod(value);
    else if (flag == "--lr") o.lr = std::stod(value);
    else if (flag == "--batch") o.batch = std::stoll(value);
    else if (flag == "--wd") o.weight_decay = std::stod(value);
    else if (flag == "--nesterov") o.nesterov = value == "true";
    else if (flag == "--schedule") o.schedule = value;
    else if (flag == "--epochs") o.epochs = std::stoi(value);
    else if (flag == "--augment") o.augment = value;
    else if (flag == "--pad-crop") o.pad_crop = std::stoll(value);
    else fail("train", "preset ", name, " sets an unknown flag ", flag);
  }
}

}  // namespace

WarmupResult train_without_mixing(const WarmupTraining& w, const RunOptions& run) {
  TrainOptions o;
  o.model = w.model;
  o.dataset = w.dataset;
  o.data = w.data;
  o.class_index = w.class_index;
  o.image_size = w.image_size;
  o.limit_train = w.limit_train;
  o.epochs = w.epochs;
  o.seed = w.seed;
  o.workers = w.workers;
  o.quiet = w.quiet;
  o.run = run;
  o.mix = "none";
  TrainingRun r = set_up(o);
  WarmupResult result;
  result.images = r.train_loader->size();
  const auto t0 = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    const EpochStats stats = train_one_epoch(r, o, epoch, "");
    result.train_loss = stats.loss;
    result.train_top1_error = stats.top1_error;
    if (!o.quiet)
      std::fprintf(stderr, "warm-up epoch %d/%d: train loss %.4f, train top-1 error %.2f%%, %.0f img/s\n", epoch + 1,
                   o.epochs, stats.loss, stats.top1_error, stats.images_per_s);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.model->eval();
  result.model = r.model;
  result.classes = r.classes;
  result.channels = r.channels;
  result.image_size = r.image_size;
  return result;
}

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model; defaults train on the embedded Fashion-MNIST");
  auto o = std::make_shared<TrainOptions>();
  // The flags added after each call appear under that heading of `dmix train --help`.
  auto section = [cmd](const char* heading) { cmd->option_defaults()->group(heading); };
  section("Model");
  cmd->add_option("--model", o->model, "Model name (see dmix info --list)")->capture_default_str();
  cmd->add_option("--num-classes", o->num_classes, "Classes of the model head (default: the dataset's)");
  cmd->add_option("--in-channels", o->in_channels, "Input channels (default: the dataset's)");
  o->architecture.add_to(*cmd);
  cmd->add_option("--auxiliary-weight", o->auxiliary_weight,
                  "darts_*: weight of the auxiliary head's loss; 0 builds no head (default 0.4)")
      ->check(non_negative());
  cmd->add_option("--drop-path", o->drop_path,
                  "darts_*: drop-path probability p, applied as p * epoch / epochs (default 0.3 for darts_cifar, "
                  "0 for darts_imagenet). DARTS's CIFAR recipe also uses --mix cutout --cutout-length 16 "
                  "--mix-prob 1")
      ->check(CLI::Range(0.0, 0.99));
  section("Data");
  cmd->add_option("--dataset", o->dataset, dataset_names_text())
      ->check(CLI::IsMember(dataset_names()))
      ->capture_default_str();
  cmd->add_option("--data", o->data,
                  "Dataset folder (default for fashion-mnist: /usr/share/datasets/fashion-mnist; for folder: "
                  "DIR/<class>/<images>, or DIR/train and DIR/val holding them)");
  cmd->add_option("--class-index", o->class_index,
                  "Folder datasets: file of class names, one per line (line k = class k), to number the classes");
  cmd->add_option("--image-size", o->image_size, "Folder datasets: crop size of the train and eval pipelines (default 224)")
      ->check(positive());
  cmd->add_option("--limit-train", o->limit_train, "Use only the first N training images")->check(positive());
  cmd->add_option("--limit-test", o->limit_test, "Use only the first M test images")->check(positive());
  cmd->add_option("--subset", o->subset, "Train on the dataset indices listed in this file (one per line)");
  cmd->add_option("--augment", o->augment,
                  "Per-image augmentation before mixing: standard (the dataset's random crop + flip), flip or none "
                  "(default: none for fashion-mnist, standard otherwise)")
      ->check(CLI::IsMember({"standard", "flip", "none"}));
  cmd->add_flag("--no-augment", o->no_augment, "Same as --augment none");
  cmd->add_option("--pad-crop", o->pad_crop, "Random-crop padding (pixels) added to the chosen augmentation")
      ->check(non_negative());
  cmd->add_option("--workers", o->workers, "Data-loader threads")->check(non_negative())->capture_default_str();
  section("Optimisation");
  cmd->add_option("--epochs", o->epochs, "Epochs")->check(positive())->capture_default_str();
  cmd->add_option("--batch", o->batch, "Batch size")->check(positive())->capture_default_str();
  cmd->add_option("--optimizer", o->optimizer, "sgd or adam")->check(CLI::IsMember({"sgd", "adam"}))->capture_default_str();
  cmd->add_option("--lr", o->lr, "Base learning rate")->check(non_negative())->capture_default_str();
  cmd->add_option("--momentum", o->momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999))->capture_default_str();
  cmd->add_option("--nesterov", o->nesterov, "Nesterov momentum (true/false)")->capture_default_str();
  cmd->add_option("--wd", o->weight_decay, "Weight decay (L2, all parameters)")->check(non_negative())->capture_default_str();
  cmd->add_option("--schedule", o->schedule, "constant, cosine[:min_lr] or multistep:m1,m2 (fractions of --epochs allowed)")
      ->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "Linear warm-up epochs")->check(non_negative());
  cmd->add_option("--label-smoothing", o->label_smoothing, "Label smoothing")->check(CLI::Range(0.0, 0.999));
  section("Mixing");
  cmd->add_option("--mix", o->mix, "none, cutout, mixup, cutmix, dmixup, dcutmix or saliency-dcutmix")
      ->capture_default_str();
  cmd->add_option("--mix-k", o->mix_k, "Images per sample for dmixup / dcutmix / saliency-dcutmix")
      ->check(CLI::Range(int64_t(2), int64_t(64)))
      ->capture_default_str();
  cmd->add_option("--mix-alpha", o->mix_alpha, "Dirichlet concentration (Beta(a, a) for mixup / cutmix)")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--mix-prob", o->mix_prob, "Probability that a batch is mixed")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--cutout-length", o->cutout_length, "Cutout square side")->check(positive())->capture_default_str();
  cmd->add_option("--saliency", o->saliency, "Saliency detector for saliency-dcutmix: spectral-residual or fine-grained")
      ->capture_default_str();
  section("Run");
  cmd->add_option("--preset", o->preset, "A paper recipe (flags given explicitly win): " + preset_list());
  cmd->add_option("--seed", o->seed, "Seed for initialisation, order, augmentation and dropout")->capture_default_str();
  o->run.add_to(*cmd);
  cmd->add_option("--out", o->out, "Output folder: last.safetensors, best.safetensors, metrics.jsonl")->capture_default_str();
  cmd->add_option("--resume", o->resume, "Continue from a checkpoint written by dmix train (e.g. OUT/last.safetensors)");
  cmd->add_option("--stop-after", o->stop_after, "Stop after this many epochs of this run (resume later with --resume)")
      ->check(positive());
  cmd->add_flag("--quiet", o->quiet, "Only print the final line");
  on_run(cmd, [o, cmd] {
    if (!o->preset.empty()) apply_preset(*o, o->preset, [cmd](const std::string& flag) { return cmd->count(flag) > 0; });
    return run_train(*o);
  });
}

}  // namespace dmix::app
