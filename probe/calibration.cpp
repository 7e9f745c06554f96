#include "probe/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/error.h"
#include "probe/ood.h"

namespace dmix::probe {

plot::ReliabilityBins reliability_bins(const std::vector<double>& confidence, const std::vector<bool>& correct,
                                       int64_t bins) {
  const char* op = "reliability_bins";
  check(bins > 0, op, "needs at least one bin, got ", bins);
  check(!confidence.empty(), op, "no sample");
  check(confidence.size() == correct.size(), op, confidence.size(), " confidences but ", correct.size(),
        " correctness flags");
  const double m = double(bins);
  std::vector<double> confidence_sum(static_cast<size_t>(bins), 0.0);
  std::vector<long long> count(static_cast<size_t>(bins), 0), right(static_cast<size_t>(bins), 0);
  for (size_t i = 0; i < confidence.size(); ++i) {
    const double c = confidence[i];
    check(c >= 0 && c <= 1, op, "confidence ", c, " of sample ", i, " is outside [0, 1]");
    if (c == 0) continue;
    // ceil(c M) - 1 is the bin up to rounding; the edges b/M decide, as the reference's
    // comparisons against its boundaries do.
    int64_t b = std::min<int64_t>(bins - 1, std::max<int64_t>(0, int64_t(std::ceil(c * m)) - 1));
    while (b > 0 && c <= double(b) / m) --b;
    while (b < bins - 1 && c > double(b + 1) / m) ++b;
    confidence_sum[b] += c;
    count[b] += 1;
    right[b] += correct[i] ? 1 : 0;
  }
  plot::ReliabilityBins r;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double n = double(confidence.size());
  for (int64_t b = 0; b < bins; ++b) {
    r.count.push_back(count[b]);
    if (count[b] == 0) {
      r.confidence.push_back(nan);
      r.accuracy.push_back(nan);
      continue;
    }
    const double mean_confidence = confidence_sum[b] / double(count[b]);
    const double accuracy = double(right[b]) / double(count[b]);
    r.confidence.push_back(mean_confidence);
    r.accuracy.push_back(accuracy);
    r.ece += double(count[b]) / n * std::abs(accuracy - mean_confidence);
  }
  return r;
}

plot::ReliabilityBins reliability_bins(const Tensor& logits, const Tensor& labels, int64_t bins) {
  const char* op = "reliability_bins";
  check(logits.dim() == 2 && labels.dtype() == DType::i64 && labels.dim() == 1 && labels.size(0) == logits.size(0), op,
        "needs logits (N, K) and i64 labels (N), got ", logits.str(), " and ", labels.str());
  const std::vector<double> confidence = max_softmax_scores(logits);
  const std::vector<float> v = logits.detach().to(Device::cpu()).to(DType::f32).to_vector<float>();
  const std::vector<int64_t> y = labels.to(Device::cpu()).to_vector<int64_t>();
  const int64_t k = logits.size(1);
  std::vector<bool> correct(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    check(y[i] >= 0 && y[i] < k, op, "label ", y[i], " is outside [0, ", k, ")");
    const float* row = v.data() + i * k;
    int64_t predicted = 0;
    for (int64_t c = 1; c < k; ++c)
      if (row[c] > row[predicted]) predicted = c;
    correct[i] = predicted == y[i];
  }
  return reliability_bins(confidence, correct, bins);
}

}  // namespace dmix::probe
