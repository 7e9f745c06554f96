// Calibration of a classifier's confidence: the expected calibration error and the bins of
// its reliability diagram (Guo et al., ICML 2017; gpleiss/temperature_scaling's _ECELoss).
//
// Confidence is the maximum softmax probability, the prediction its class (the first one
// on a tie), correct when it equals the label. `bins` equal-width bins cover [0, 1], open
// below and closed above: sample i lies in bin m when m/M < conf_i <= (m+1)/M (a confidence
// of exactly 0, which no softmax gives, lies in none). Then
//   ECE = sum over non-empty bins of (|B_m| / n) |acc(B_m) - conf(B_m)|,
// with n every sample, acc the fraction correct and conf the mean confidence in the bin.
// Guo et al. and the reference code use M = 15.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"
#include "probe/plot.h"

namespace dmix::probe {

inline constexpr int64_t kCalibrationBins = 15;

// From confidences in [0, 1] and whether each prediction was right (same length, not
// empty). Empty bins have confidence and accuracy NaN and count 0; `ece` is set.
plot::ReliabilityBins reliability_bins(const std::vector<double>& confidence, const std::vector<bool>& correct,
                                       int64_t bins = kCalibrationBins);

// From logits (N, K) and i64 labels (N) in [0, K).
plot::ReliabilityBins reliability_bins(const Tensor& logits, const Tensor& labels, int64_t bins = kCalibrationBins);

}  // namespace dmix::probe
