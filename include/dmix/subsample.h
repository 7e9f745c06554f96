// Uncertainty-based data subsampling in a few calls (the paper's §III-C): score a model's
// training set by the CV of its K-image mixing losses, keep a per-class fraction, write
// the index file every trainer takes with --subset.
//
//   auto loaded = dmix::load_model("full.safetensors");
//   auto train = dmix::load_dataset("fashion-mnist");
//   auto picked = dmix::subsample(*loaded.model, train, "cv", 0.1);
//   dmix::save_subset("subset.txt", picked.subset, train, "cv", 0.1, "top", 0, "full.safetensors");
//
// augment/uncertainty.h and augment/subsample.h hold the pieces: the options of the
// scorer (draws, anchor share, alpha, seed, batch size), the measures, the selection
// rules, the MC-dropout and K-Center baselines and the scores JSON.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "augment/datasets.h"
#include "augment/subsample.h"
#include "augment/transforms.h"
#include "augment/uncertainty.h"
#include "nn/module.h"

namespace dmix {

// Selects ceil(ratio N_c) images of every class by `measure` ("cv", "mean-low",
// "mean-high", "std", "random", "mc-dropout", "k-center") and `rule` ("top" or "interval"),
// scoring the images through the dataset's evaluation pipeline. `options` sets the mixing
// scorer (its seed keys every draw); mc-dropout needs options.mc_dropout.head_dropout > 0
// for a model without Dropout layers. The measure, ratio and rule arguments replace those
// of `options`.
inline augment::SubsampleResult subsample(nn::Module& model, const augment::Dataset& dataset,
                                          const std::string& measure, double ratio, const std::string& rule = "top",
                                          augment::SubsampleOptions options = {},
                                          const std::vector<int64_t>& pool = {}) {
  options.measure = augment::parse_subset_measure(measure);
  options.ratio = ratio;
  options.rule = augment::parse_selection_rule(rule);
  return augment::subsample(model, dataset, augment::eval_pipeline(dataset.name), pool, options);
}

// Per-image mean, std and CV of the mixing losses (augment::score_uncertainty) through
// the dataset's evaluation pipeline.
inline std::vector<augment::SampleUncertainty> score_uncertainty(nn::Module& model, const augment::Dataset& dataset,
                                                                 const augment::UncertaintyOptions& options = {},
                                                                 const std::vector<int64_t>& pool = {}) {
  return augment::score_uncertainty(model, dataset, augment::eval_pipeline(dataset.name), pool, options);
}

// Writes the subset as augment::write_subset_file does, its header filled in from the
// arguments and the dataset.
inline void save_subset(const std::string& path, const std::vector<int64_t>& subset, const augment::Dataset& dataset,
                        const std::string& measure, double ratio, const std::string& rule = "top", uint64_t seed = 0,
                        const std::string& checkpoint = "") {
  augment::SubsetFileInfo info;
  info.measure = measure;
  info.rule = rule;
  info.ratio = ratio;
  info.seed = seed;
  info.checkpoint = checkpoint;
  info.dataset = dataset.name;
  info.dataset_size = dataset.size();
  augment::write_subset_file(path, subset, info);
}

}  // namespace dmix
