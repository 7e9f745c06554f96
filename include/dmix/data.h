// Data in the few calls `dmix train` makes: a dataset by name, loader options for
// training or evaluation, and mixing options by method name.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "augment/datasets.h"
#include "augment/loader.h"
#include "augment/mixing.h"
#include "augment/transforms.h"
#include "engine/error.h"

namespace dmix {

// The augment/ layer's namespace was dmix::data before 0.4; programs written against that
// name keep compiling.
namespace data = augment;

// "fashion-mnist" (dir "" means Debian's /usr/share/datasets/fashion-mnist), "cifar10" or
// "cifar100" (dir: the folder of the binary batches), or "folder" (an ImageNet-style
// folder of class folders of images, decoded as batches need them; class_index: an
// optional class-index file, see augment::load_image_folder), as `dmix train --dataset --data`.
// train selects the training split, otherwise the test split.
inline augment::Dataset load_dataset(const std::string& name, const std::string& dir = "", bool train = true,
                                  const std::string& class_index = "") {
  check(class_index.empty() || name == "folder", "load_dataset", "a class-index file applies to folder datasets only, not ",
        name);
  if (name == "fashion-mnist") return augment::load_fashion_mnist(dir.empty() ? augment::kFashionMnistDefaultDir : dir, train);
  check(name == "cifar10" || name == "cifar100" || name == "folder", "load_dataset", "unknown dataset '", name,
        "' (expected fashion-mnist, cifar10, cifar100 or folder)");
  check(!dir.empty(), "load_dataset", name, " has no default location: pass its folder");
  if (name == "folder") return augment::load_image_folder(dir, train, class_index);
  return name == "cifar10" ? augment::load_cifar10(dir, train) : augment::load_cifar100(dir, train);
}

// Loader options as `dmix train` sets them. train: the dataset's training pipeline (random
// crop and flip, normalisation; for image folders random-resized crops of image_size,
// default 224), shuffled, incomplete last batch dropped; otherwise the evaluation pipeline
// (normalisation; for folders a resize and centre crop), in order, every sample.
// limit > 0 keeps only the first `limit` samples (--limit-train / --limit-test).
inline augment::LoaderOptions loader_options(const augment::Dataset& dataset, bool train, int64_t batch_size,
                                          int64_t limit = 0, uint64_t seed = 0, int64_t image_size = 0) {
  check(batch_size > 0, "loader_options", "batch_size must be positive, got ", batch_size);
  augment::LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = train;
  o.drop_last = train;
  o.seed = seed;
  o.pipeline = train ? augment::train_pipeline(dataset.name, image_size) : augment::eval_pipeline(dataset.name, image_size);
  if (limit > 0) {
    std::vector<int64_t> first(static_cast<size_t>(std::min(limit, dataset.labels.size(0))));
    for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<int64_t>(i);
    o.subset = std::move(first);
  }
  return o;
}

// Mixing as `dmix train --mix M --mix-k K --mix-alpha A` sets it: method "none", "cutout",
// "mixup", "cutmix", "dmixup", "dcutmix" or "saliency-dcutmix"; `pipeline` is the one the
// batches were made with (Saliency-DCutMix undoes its normalisation to find salient pixels).
// Apply it to a batch with augment::mix_batch(images, labels, indices, classes, options, gen).
inline augment::MixOptions mix_options(const std::string& method, int64_t k = 3, double alpha = 1.0,
                                    const augment::Pipeline& pipeline = {}) {
  augment::MixOptions o;
  o.method = augment::parse_mix_method(method);
  o.k = k;
  o.alpha = alpha;
  o.mean = pipeline.mean;
  o.std = pipeline.std;
  return o;
}

}  // namespace dmix
