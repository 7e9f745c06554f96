// Evaluations beyond accuracy (probe/): out-of-distribution detection (AUROC, AUPR with
// either side positive, FPR at 95% TPR, from max-softmax or energy scores), calibration
// (expected calibration error and reliability bins), and natural-adversarial accuracy on
// a split holding a subset of the model's classes (ImageNet-A's protocol: the logits
// restricted to those classes). Namespace dmix::probe; the calls below read like
// `dmix eval --ood DIR --ece --restrict-to-folder-classes`.
//
//   dmix::augment::DataLoader in(test, dmix::loader_options(test, false, 256));
//   dmix::augment::DataLoader out(ood, dmix::loader_options(ood, false, 256));
//   dmix::probe::OodMetrics m = dmix::ood_detection(*model, in, out);    // m.auroc, m.aupr_out, ...
//   double ece = dmix::calibration(*model, in).ece;                       // 15 bins
//   double err = dmix::restricted_top1_error(*model, in, dmix::probe::classes_present(test.labels));
//
// Scores, metric definitions and tie rules are in probe/ood.h and probe/calibration.h.
#pragma once
#include <cstdint>
#include <vector>

#include "augment/loader.h"
#include "nn/metrics.h"
#include "nn/module.h"
#include "probe/calibration.h"
#include "probe/ood.h"

namespace dmix {

// OOD detection of a model: one pass over the in-distribution loader and one over the OOD
// loader, each sample scored by `score` (higher: more in-distribution). `classes`, when
// given, restricts both sets of logits to those classes first (ImageNet-O's protocol).
inline probe::OodMetrics ood_detection(nn::Module& model, augment::DataLoader& in, augment::DataLoader& out,
                                       probe::OodScore score = probe::OodScore::msp,
                                       const std::vector<int64_t>& classes = {}) {
  const probe::Outputs a = probe::collect_outputs(model, in, classes);
  const probe::Outputs b = probe::collect_outputs(model, out, classes);
  return probe::ood_metrics(probe::confidence_scores(a.logits, score), probe::confidence_scores(b.logits, score));
}

// Reliability bins and expected calibration error of a model over one pass of a loader.
inline probe::plot::ReliabilityBins calibration(nn::Module& model, augment::DataLoader& loader,
                                                int64_t bins = probe::kCalibrationBins) {
  const probe::Outputs o = probe::collect_outputs(model, loader);
  return probe::reliability_bins(o.logits, o.labels, bins);
}

// Top-1 error in percent with the argmax taken over `classes` only (natural adversarial
// accuracy on ImageNet-A: its 200 classes out of 1000). Every label must be one of them.
inline double restricted_top1_error(nn::Module& model, augment::DataLoader& loader,
                                    const std::vector<int64_t>& classes) {
  const probe::Outputs o = probe::collect_outputs(model, loader, classes);
  const Tensor labels = probe::restrict_labels(o.labels, classes);
  const int64_t n = labels.size(0);
  return 100.0 * double(n - nn::count_topk_correct(o.logits, labels, 1)) / double(n);
}

}  // namespace dmix
