// What other commands reuse of `dmix train`: its training loop, run in memory.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "apps/dmix/options.h"
#include "nn/module.h"

namespace dmix::app {

// A short `dmix train --mix none` whose model stays in memory (no checkpoint, no metrics):
// train's defaults for everything not named here (batch 64, SGD with Nesterov momentum,
// lr 0.1 on a cosine schedule, weight decay 5e-4, the dataset's default per-image
// augmentation), seeded the same way, so the same flags give the same model as
// `dmix train --mix none --limit-train N --epochs E --seed S` does.
struct WarmupTraining {
  std::string model = "pyramidnet11_a40_basic";
  std::string dataset = "fashion-mnist", data, class_index;
  int64_t image_size = 0;
  int64_t limit_train = 0;  // > 0: the first N training images only
  int epochs = 1;
  uint64_t seed = 0;
  int workers = 2;
  bool quiet = false;  // no progress bar or per-epoch line on stderr
};

struct WarmupResult {
  std::shared_ptr<nn::Module> model;  // in eval mode
  int64_t classes = 0, channels = 0, image_size = 0;
  int64_t images = 0;                           // training images per epoch
  double train_loss = 0, train_top1_error = 0;  // of the last epoch
  double seconds = 0;
};

WarmupResult train_without_mixing(const WarmupTraining& warmup, const RunOptions& run);

}  // namespace dmix::app
