// Out-of-distribution detection and natural-adversarial evaluation from a model's logits.
//
// Scores: a confidence per sample, higher meaning "more in-distribution":
//   msp     the maximum softmax probability (Hendrycks & Gimpel, ICLR 2017);
//   energy  the negated free energy -E(x) = T logsumexp(logits / T), T = 1 (Liu et al.,
//           NeurIPS 2020), which does not saturate the way a softmax does.
// Metrics of a detector that calls a sample positive when its score is at least a threshold,
// with one threshold per distinct score value (tied scores cross a threshold together):
//   auroc              the Mann-Whitney statistic P(s_pos > s_neg) + P(s_pos = s_neg) / 2;
//                      it does not depend on which side is called positive
//   average_precision  scikit-learn's average_precision_score: sum over the thresholds, from
//                      the highest down, of (R_n - R_{n-1}) P_n (no interpolation)
//   fpr_at_tpr         in-distribution as positive: the smallest false-positive rate among the
//                      thresholds whose true-positive rate is at least `tpr`. Hendrycks' code
//                      instead takes the threshold whose TPR is closest to 0.95; the two agree
//                      wherever some threshold reaches 0.95 exactly.
// ood_metrics gives the four numbers papers report: AUROC, AUPR-in (in-distribution positive,
// scored by confidence), AUPR-out (OOD positive, scored by negated confidence: the ImageNet-O
// figure) and FPR at 95% TPR.
//
// Natural adversarial accuracy (ImageNet-A) and ImageNet-O restrict a 1000-class model's
// logits to the 200 classes a folder holds before the softmax or argmax: restrict_logits
// keeps those columns, restrict_labels renumbers the labels to positions among them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "augment/loader.h"
#include "engine/tensor.h"
#include "nn/module.h"

namespace dmix::probe {

enum class OodScore { msp, energy };

// "msp" or "energy"; anything else is a dmix::Error listing both.
OodScore parse_ood_score(const std::string& name);
const char* ood_score_name(OodScore score);

// One confidence per row of logits (N, K) of any float dtype and device, computed in double.
std::vector<double> max_softmax_scores(const Tensor& logits);
std::vector<double> negative_energy_scores(const Tensor& logits, double temperature = 1.0);
std::vector<double> confidence_scores(const Tensor& logits, OodScore score);

// Detection metrics of positive against negative samples' scores (higher: more positive).
// Both lists must be non-empty and hold finite values.
double auroc(const std::vector<double>& positive, const std::vector<double>& negative);
double average_precision(const std::vector<double>& positive, const std::vector<double>& negative);
double fpr_at_tpr(const std::vector<double>& positive, const std::vector<double>& negative, double tpr = 0.95);

struct OodMetrics {
  double auroc = 0;
  double aupr_in = 0;   // in-distribution positive, score = confidence
  double aupr_out = 0;  // OOD positive, score = -confidence
  double fpr95 = 0;     // FPR of OOD samples at 95% TPR of in-distribution ones
  int64_t in_samples = 0, out_samples = 0;
};

// From the confidences of in-distribution and OOD samples.
OodMetrics ood_metrics(const std::vector<double>& in_confidence, const std::vector<double>& out_confidence);

// The sorted distinct values of i64 labels: the classes a split holds.
std::vector<int64_t> classes_present(const Tensor& labels);
// Columns `classes` of logits (N, K), in that order: (N, classes.size()) f32 on the CPU.
// Every class must lie in [0, K) and appear once.
Tensor restrict_logits(const Tensor& logits, const std::vector<int64_t>& classes);
// Each label replaced by its position in `classes`; a label outside them is an error.
Tensor restrict_labels(const Tensor& labels, const std::vector<int64_t>& classes);

// What a model outputs over one pass of a loader (its epoch 0), in eval mode with autograd
// off: logits f32 (N, K) on the CPU, or (N, classes.size()) restricted to `classes` batch by
// batch, and the loader's labels i64 (N), unchanged.
struct Outputs {
  Tensor logits, labels;
};
Outputs collect_outputs(nn::Module& model, augment::DataLoader& loader, const std::vector<int64_t>& classes = {});

}  // namespace dmix::probe
