// `dmix bench mix`: how fast each mixing augmentation runs, and what share of a training
// step it costs. Every method mixes the same normalised batch (B, C, S, S) of a fixed
// pseudo-random image; the figure is the median over repetitions of one mix_batch call,
// given as images/s and ms per batch. With --model, one training step of that model at
// the same batch shape (forward, soft cross-entropy, backward, SGD step) is timed too, and
// each method's share of "mix + step" is printed: the paper's methods are only worth
// their accuracy if they are nearly free.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "apps/dmix/bench_timing.h"
#include "apps/dmix/commands.h"
#include "apps/dmix/options.h"
#include "augment/mixing.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "kernels/cpu/threads.h"
#include "nn/models/registry.h"
#include "nn/optim.h"

namespace dmix::app {
namespace {

struct MixBenchOptions {
  int64_t batch = 64, channels = 3, size = 32, classes = 100, k = 3;
  double alpha = 1.0;
  std::string model;
  int reps = 20;
  RunOptions run;
  bool json = false;
};

double train_step_seconds(const MixBenchOptions& o, const Target& t, const Tensor& images, const Tensor& targets) {
  std::shared_ptr<nn::Module> model = nn::make_model(o.model, o.classes, o.channels);
  model->to(t.device);
  model->train();
  nn::SgdOptions s;
  s.lr = 0.01;
  s.momentum = 0.9;
  s.nesterov = true;
  s.weight_decay = 5e-4;
  nn::SGD opt(model->named_parameters(), s);
  return median_seconds(t, [&] {
    Tensor loss = soft_cross_entropy(model->forward(images), targets);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }, 1, 3);
}

int run_bench_mix(const MixBenchOptions& o) {
  const Target t{o.run.resolve()};
  Generator data_gen(7);
  const Tensor images = data_gen.normal({o.batch, o.channels, o.size, o.size}).to(t.device);
  const Tensor labels = data_gen.randint({o.batch}, 0, o.classes);
  const Tensor indices = Tensor::arange(o.batch);

  const std::vector<augment::MixMethod> methods = {augment::MixMethod::Cutout, augment::MixMethod::Mixup,
                                                augment::MixMethod::CutMix, augment::MixMethod::DMixup,
                                                augment::MixMethod::DCutMix, augment::MixMethod::SaliencyDCutMix};
  std::map<std::string, double> ms_per_batch;
  for (augment::MixMethod m : methods) {
    augment::MixOptions mix;
    mix.method = m;
    mix.k = o.k;
    mix.alpha = o.alpha;
    mix.cutout_length = std::max<int64_t>(1, o.size / 2);
    Generator gen(11);
    ms_per_batch[augment::mix_method_name(m)] =
        1e3 * median_seconds(t, [&] { augment::mix_batch(images, labels, indices, o.classes, mix, gen); }, 2, o.reps);
  }
  double step_ms = 0;
  if (!o.model.empty()) {
    const Tensor targets = one_hot(labels, o.classes).to(t.device);
    step_ms = 1e3 * train_step_seconds(o, t, images, targets);
  }

  const std::string shape = "b" + std::to_string(o.batch) + "_" + std::to_string(o.size) + "x" + std::to_string(o.size);
  if (o.json) {
    nlohmann::json j;
    for (const auto& [name, ms] : ms_per_batch) {
      j["mix_" + name + "_" + shape + "_ips"] = 1e3 * double(o.batch) / ms;
      if (step_ms > 0) j["mix_" + name + "_" + shape + "_share_of_" + o.model + "_step"] = ms / (ms + step_ms);
    }
    if (step_ms > 0) j[o.model + "_train_" + shape + "_step_ms"] = step_ms;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("dmix bench mix: batch %lld x %lld x %lld x %lld, K=%lld, alpha=%g, on %s, %d threads\n",
              (long long)o.batch, (long long)o.channels, (long long)o.size, (long long)o.size, (long long)o.k, o.alpha,
              o.run.device.c_str(), kernels::cpu::num_threads());
  if (step_ms > 0) std::printf("  %s training step: %.1f ms\n", o.model.c_str(), step_ms);
  std::printf("  %-18s %12s %12s%s\n", "method", "ms/batch", "images/s", step_ms > 0 ? "   share of mix+step" : "");
  for (augment::MixMethod m : methods) {
    const double ms = ms_per_batch[augment::mix_method_name(m)];
    std::printf("  %-18s %12.3f %12.0f", augment::mix_method_name(m), ms, 1e3 * double(o.batch) / ms);
    if (step_ms > 0) std::printf("   %8.3f%%", 100.0 * ms / (ms + step_ms));
    std::printf("\n");
  }
  return 0;
}

}  // namespace

void add_bench_mix_command(CLI::App& bench) {
  auto o = std::make_shared<MixBenchOptions>();
  auto* cmd = bench.add_subcommand("mix", "Mixing augmentations: images/s each, and share of a training step");
  cmd->add_option("--batch", o->batch, "Batch size")->check(positive())->capture_default_str();
  cmd->add_option("--channels", o->channels, "Image channels")->check(positive())->capture_default_str();
  cmd->add_option("--size", o->size, "Image height = width")->check(positive())->capture_default_str();
  cmd->add_option("--num-classes", o->classes, "Classes of the soft labels")->check(positive())->capture_default_str();
  cmd->add_option("--mix-k", o->k, "Images per sample for the K-image methods")->check(CLI::Range(2, 64))
      ->capture_default_str();
  cmd->add_option("--mix-alpha", o->alpha, "Dirichlet / Beta concentration")->check(positive())->capture_default_str();
  cmd->add_option("--model", o->model, "Also time a training step of this model (e.g. pyramidnet110_a64)");
  cmd->add_option("--reps", o->reps, "Timed repetitions per method")->check(positive())->capture_default_str();
  o->run.add_to(*cmd, "cpu or cuda[:N]: where the batch lives and is mixed");
  cmd->add_flag("--json", o->json, "Print one JSON object");
  on_run(cmd, [o] { return run_bench_mix(*o); });
}

}  // namespace dmix::app
