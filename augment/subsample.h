// Data subsampling (the paper's §III-C-1, Eq. 9, Fig. 5a): a measure per training image,
// then, within every class, ceil(t N_class) images chosen by that measure; the result is
// written as a plain index file that every trainer reads with --subset
// (augment/loader.h: load_subset_file).
//
// Measures (what the paper compares in Fig. 5a and §IV-B-1):
//   cv          CV of the mixing loss distribution (augment/uncertainty.h), high first: the paper's
//   mean-low    its mean, low first ("easy-only")
//   mean-high   its mean, high first ("hard-only")
//   std         its standard deviation, high first
//   random      a uniform random score per image, keyed by (seed, dataset index)
//   mc-dropout  MC-dropout predictive entropy, high first (Gal & Ghahramani 2016; see below)
//   k-center    the greedy K-Center coreset on penultimate-layer features (Sener & Savarese
//               2018), run per class so that the per-class counts stay exact
//
// Selection (Eq. 9's S(O(L_k), t), per class): rank the class's images by the measure,
// highest score first (ties: lower dataset index first), keep n_c = ceil(t N_c) of them,
// at least 1 and at most N_c:
//   top       the first n_c of the ranking
//   interval  ranks floor(j N_c / n_c), j = 0 .. n_c - 1: the same count at even spacing
//             along the whole ranking, starting at its top
// k-center has no ranking to space out: it takes the greedy picks (top only).
//
// MC dropout (shared/reference/analysis-references.md §5): T passes with dropout on and
// everything else in eval mode (batch norm on running statistics); the score is the
// predictive entropy H[p_bar] = -sum_c p_bar_c log p_bar_c of the mean softmax p_bar
// (the "max entropy" acquisition). A model with Dropout layers uses them, drawing from the
// default generator, which is set to a state derived from the seed for the passes and
// restored afterwards (layers built with a Generator of their own draw from that one);
// their masks are drawn per batch, so these scores depend on the batch size. A model
// without Dropout layers (every registry model) has nothing to turn on: the scorer stops
// with an error unless head_dropout > 0, which drops the classifier's input
// (the penultimate features, nn/models/feature_head.h) with that probability, as
// MC-dropout baselines commonly do for networks trained without dropout. Head-dropout
// masks are keyed by (seed, pass, dataset index), so those scores do not depend on the
// batch size.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "augment/datasets.h"
#include "augment/transforms.h"
#include "augment/uncertainty.h"
#include "nn/module.h"

namespace dmix::augment {

enum class SubsetMeasure { Cv, MeanLow, MeanHigh, Std, Random, McDropout, KCenter };

// "cv", "mean-low" (or "easy"), "mean-high" (or "hard"), "std", "random", "mc-dropout",
// "k-center" (or "kcenter"); '_' may stand for '-'. Anything else is a dmix::Error listing them.
SubsetMeasure parse_subset_measure(const std::string& name);
const char* subset_measure_name(SubsetMeasure measure);
// Whether the measure needs the mixing scores of score_uncertainty.
bool measure_uses_mixing(SubsetMeasure measure);

enum class SelectionRule { Top, Interval };
SelectionRule parse_selection_rule(const std::string& name);  // "top" or "interval"
const char* selection_rule_name(SelectionRule rule);

// ceil(t n) for a class of n images, in [1, n]; t in (0, 1]. A product a hair above an
// integer by rounding (0.07 * 100) counts as that integer.
int64_t per_class_count(double ratio, int64_t class_size);

// The selection above. indices, labels and scores are parallel (one entry per candidate
// image; indices unique). Returns the chosen dataset indices in increasing order.
std::vector<int64_t> select_per_class(const std::vector<int64_t>& indices, const std::vector<int64_t>& labels,
                                      const std::vector<double>& scores, double ratio, SelectionRule rule);

// The ranking score of a mixing measure (cv, mean-low, mean-high, std) per image: higher
// is chosen first, so mean-low is the negated mean.
std::vector<double> measure_scores(SubsetMeasure measure, const std::vector<SampleUncertainty>& scores);

// A uniform score in [0, 1) for each dataset index, a pure function of (seed, index).
std::vector<double> random_scores(const std::vector<int64_t>& indices, uint64_t seed);

// ---- K-Center ----

// Greedy K-Center (the 2-approximation of Sener & Savarese; google/active-learning's
// kCenterGreedy): start at row `first`, then repeatedly add the row farthest (Euclidean)
// from its nearest chosen row; the lowest row wins a tie. features: n rows of dim floats.
// Returns `budget` row numbers in the order picked (budget <= n).
std::vector<int64_t> kcenter_greedy(const float* features, int64_t n, int64_t dim, int64_t budget, int64_t first);

// K-Center per class: in each class, ceil(t N_c) greedy picks starting from a random row of
// the class (keyed by seed and class). features: one row per candidate, parallel to indices.
std::vector<int64_t> select_kcenter_per_class(const std::vector<int64_t>& indices, const std::vector<int64_t>& labels,
                                              const float* features, int64_t dim, double ratio, uint64_t seed);

// ---- model passes over a pool of images (eval mode, autograd off, model's mode restored) ----

// The penultimate features (N, D) of the pool's images, f32 on the CPU.
Tensor penultimate_features(nn::Module& model, const Dataset& dataset, const Pipeline& pipeline,
                            const std::vector<int64_t>& pool, int64_t batch_size);

struct McDropoutOptions {
  int64_t passes = 10;        // T
  double head_dropout = 0.0;  // p on the classifier's input for models without Dropout layers; 0: none
  uint64_t seed = 0;
  int64_t batch_size = 256;
};

// The MC-dropout predictive entropy of every image of the pool (in pool order).
std::vector<double> mc_dropout_entropy(nn::Module& model, const Dataset& dataset, const Pipeline& pipeline,
                                       const std::vector<int64_t>& pool, const McDropoutOptions& options);

// ---- end to end ----

struct SubsampleOptions {
  SubsetMeasure measure = SubsetMeasure::Cv;
  double ratio = 0.1;  // t, in (0, 1]
  SelectionRule rule = SelectionRule::Top;
  UncertaintyOptions uncertainty;  // the mixing measures; its seed also keys random and k-center
  McDropoutOptions mc_dropout;
};

struct SubsampleResult {
  std::vector<int64_t> subset;            // chosen dataset indices, increasing
  std::vector<SampleUncertainty> scores;  // per pool image for the mixing measures, else empty
  std::vector<double> measure;            // per pool image: the ranking score (empty for k-center)
};

// Scores the pool (empty: the whole dataset) by the measure and selects per class. The
// model is needed for every measure but random (pass any model then; it is not run).
SubsampleResult subsample(nn::Module& model, const Dataset& dataset, const Pipeline& pipeline,
                          const std::vector<int64_t>& pool, const SubsampleOptions& options);

// ---- files ----

// What the header comment of a subset file records.
struct SubsetFileInfo {
  std::string measure, rule, checkpoint, dataset;
  double ratio = 0.0;
  uint64_t seed = 0;
  int64_t dataset_size = 0;
};

// One dataset index per line after a '#' header naming the measure, rule, ratio, seed,
// checkpoint and dataset (load_subset_file skips it). Written to a temporary file and
// renamed, so a failed write never leaves half a file in place of an earlier one.
void write_subset_file(const std::string& path, const std::vector<int64_t>& subset, const SubsetFileInfo& info);

// JSON: {"draws": M, "anchor_share": .., "alpha": .., "k": .., "anchor_depth": .., "seed": ..,
// "checkpoint": "..", "dataset": "..", "images": [{"index", "class", "mean", "std", "cv"}, ...]}
// (with "losses" per image when they were kept). Written like write_subset_file.
void write_scores_json(const std::string& path, const std::vector<SampleUncertainty>& scores,
                       const UncertaintyOptions& options, const std::string& checkpoint, const std::string& dataset);

}  // namespace dmix::augment
