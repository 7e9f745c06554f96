#include "probe/ood.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "engine/autograd.h"
#include "engine/error.h"

namespace dmix::probe {

namespace {

// The logits as doubles on the host, row-major, with their shape.
struct HostLogits {
  std::vector<double> v;
  int64_t n = 0, k = 0;
};

HostLogits host_logits(const Tensor& logits, const char* op) {
  check(logits.dim() == 2 && logits.size(1) > 0, op, "logits must be (N, K) with K > 0, got ", logits.str());
  check(logits.dtype() == DType::f32 || logits.dtype() == DType::f64, op, "logits must be f32 or f64, got ",
        logits.str());
  HostLogits h;
  h.n = logits.size(0);
  h.k = logits.size(1);
  h.v = logits.detach().to(Device::cpu()).to(DType::f64).to_vector<double>();
  return h;
}

// max_c x_c and log sum_c exp(x_c - max) of one row.
std::pair<double, double> max_and_log_sum_exp(const double* row, int64_t k) {
  const double mx = *std::max_element(row, row + k);
  double total = 0;
  for (int64_t c = 0; c < k; ++c) total += std::exp(row[c] - mx);
  return {mx, std::log(total)};
}

void check_scores(const std::vector<double>& positive, const std::vector<double>& negative, const char* op) {
  check(!positive.empty() && !negative.empty(), op, "needs positive and negative samples, got ", positive.size(),
        " and ", negative.size());
  for (const auto* list : {&positive, &negative})
    for (double s : *list) check(std::isfinite(s), op, "scores must be finite, got ", s);
}

// The ROC / precision-recall operating points, one per distinct score from the highest down:
// true and false positives among the samples scoring at least that value.
struct OperatingPoint {
  int64_t tp = 0, fp = 0;
};

std::vector<OperatingPoint> operating_points(const std::vector<double>& positive, const std::vector<double>& negative) {
  std::vector<std::pair<double, bool>> all;  // (score, is positive)
  all.reserve(positive.size() + negative.size());
  for (double s : positive) all.emplace_back(s, true);
  for (double s : negative) all.emplace_back(s, false);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<OperatingPoint> points;
  OperatingPoint at;
  for (size_t i = 0; i < all.size(); ++i) {
    (all[i].second ? at.tp : at.fp) += 1;
    if (i + 1 == all.size() || all[i + 1].first != all[i].first) points.push_back(at);
  }
  return points;
}

}  // namespace

OodScore parse_ood_score(const std::string& name) {
  if (name == "msp") return OodScore::msp;
  if (name == "energy") return OodScore::energy;
  fail("ood score", "unknown score '", name, "' (expected msp or energy)");
}

const char* ood_score_name(OodScore score) { return score == OodScore::msp ? "msp" : "energy"; }

std::vector<double> max_softmax_scores(const Tensor& logits) {
  const HostLogits h = host_logits(logits, "max_softmax_scores");
  std::vector<double> out(static_cast<size_t>(h.n));
  for (int64_t i = 0; i < h.n; ++i) {
    // The largest probability is exp(max - max) / sum = 1 / sum.
    out[i] = std::exp(-max_and_log_sum_exp(h.v.data() + i * h.k, h.k).second);
  }
  return out;
}

std::vector<double> negative_energy_scores(const Tensor& logits, double temperature) {
  const char* op = "negative_energy_scores";
  check(temperature > 0, op, "the temperature must be positive, got ", temperature);
  HostLogits h = host_logits(logits, op);
  for (double& x : h.v) x /= temperature;
  std::vector<double> out(static_cast<size_t>(h.n));
  for (int64_t i = 0; i < h.n; ++i) {
    const auto [mx, lse] = max_and_log_sum_exp(h.v.data() + i * h.k, h.k);
    out[i] = temperature * (mx + lse);
  }
  return out;
}

std::vector<double> confidence_scores(const Tensor& logits, OodScore score) {
  return score == OodScore::msp ? max_softmax_scores(logits) : negative_energy_scores(logits);
}

double auroc(const std::vector<double>& positive, const std::vector<double>& negative) {
  check_scores(positive, negative, "auroc");
  // Each positive counts the negatives below it, plus half those tied with it; one walk
  // over the operating points does that group by group.
  double pairs = 0;
  int64_t fp_above = 0;
  OperatingPoint previous;
  for (const OperatingPoint& p : operating_points(positive, negative)) {
    const int64_t tp_here = p.tp - previous.tp, fp_here = p.fp - previous.fp;
    const int64_t negatives_below = static_cast<int64_t>(negative.size()) - fp_above - fp_here;
    pairs += double(tp_here) * (double(negatives_below) + 0.5 * double(fp_here));
    fp_above += fp_here;
    previous = p;
  }
  return pairs / (double(positive.size()) * double(negative.size()));
}

double average_precision(const std::vector<double>& positive, const std::vector<double>& negative) {
  check_scores(positive, negative, "average_precision");
  const double p = double(positive.size());
  double ap = 0, previous_recall = 0;
  for (const OperatingPoint& at : operating_points(positive, negative)) {
    const double recall = double(at.tp) / p;
    ap += (recall - previous_recall) * double(at.tp) / double(at.tp + at.fp);
    previous_recall = recall;
  }
  return ap;
}

double fpr_at_tpr(const std::vector<double>& positive, const std::vector<double>& negative, double tpr) {
  const char* op = "fpr_at_tpr";
  check_scores(positive, negative, op);
  check(tpr > 0 && tpr <= 1, op, "the true-positive rate must lie in (0, 1], got ", tpr);
  const double p = double(positive.size());
  // The false-positive rate only grows as the threshold falls: the first threshold that
  // reaches the rate has the smallest one. The slack keeps 19 of 20 at 0.95.
  for (const OperatingPoint& at : operating_points(positive, negative))
    if (double(at.tp) >= tpr * p - 1e-9) return double(at.fp) / double(negative.size());
  return 1.0;  // not reached: the lowest threshold has every positive
}

OodMetrics ood_metrics(const std::vector<double>& in_confidence, const std::vector<double>& out_confidence) {
  check(!in_confidence.empty(), "ood_metrics", "no in-distribution sample");
  check(!out_confidence.empty(), "ood_metrics", "no out-of-distribution sample");
  std::vector<double> in_negated(in_confidence.size()), out_negated(out_confidence.size());
  std::transform(in_confidence.begin(), in_confidence.end(), in_negated.begin(), [](double s) { return -s; });
  std::transform(out_confidence.begin(), out_confidence.end(), out_negated.begin(), [](double s) { return -s; });
  OodMetrics m;
  m.auroc = auroc(in_confidence, out_confidence);
  m.aupr_in = average_precision(in_confidence, out_confidence);
  m.aupr_out = average_precision(out_negated, in_negated);
  m.fpr95 = fpr_at_tpr(in_confidence, out_confidence, 0.95);
  m.in_samples = static_cast<int64_t>(in_confidence.size());
  m.out_samples = static_cast<int64_t>(out_confidence.size());
  return m;
}

std::vector<int64_t> classes_present(const Tensor& labels) {
  check(labels.dtype() == DType::i64 && labels.dim() == 1, "classes_present", "labels must be i64 (N), got ",
        labels.str());
  std::vector<int64_t> v = labels.to(Device::cpu()).to_vector<int64_t>();
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

Tensor restrict_logits(const Tensor& logits, const std::vector<int64_t>& classes) {
  const char* op = "restrict_logits";
  check(logits.dim() == 2, op, "logits must be (N, K), got ", logits.str());
  check(!classes.empty(), op, "no class to keep");
  const int64_t k = logits.size(1);
  std::vector<int64_t> seen = classes;
  std::sort(seen.begin(), seen.end());
  check(std::adjacent_find(seen.begin(), seen.end()) == seen.end(), op, "class ",
        *std::adjacent_find(seen.begin(), seen.end()), " is listed twice");
  check(seen.front() >= 0 && seen.back() < k, op, "class ", seen.front() < 0 ? seen.front() : seen.back(),
        " is outside the model's [0, ", k, ")");
  const Tensor host = logits.detach().to(Device::cpu()).to(DType::f32);
  const int64_t n = host.size(0), s = static_cast<int64_t>(classes.size());
  std::vector<float> out(static_cast<size_t>(n * s));
  const float* src = host.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < s; ++j) out[i * s + j] = src[i * k + classes[j]];
  return Tensor::from_vector(out, {n, s});
}

Tensor restrict_labels(const Tensor& labels, const std::vector<int64_t>& classes) {
  const char* op = "restrict_labels";
  check(labels.dtype() == DType::i64 && labels.dim() == 1, op, "labels must be i64 (N), got ", labels.str());
  std::map<int64_t, int64_t> position;
  for (size_t j = 0; j < classes.size(); ++j) position[classes[j]] = static_cast<int64_t>(j);
  std::vector<int64_t> v = labels.to(Device::cpu()).to_vector<int64_t>();
  for (int64_t& y : v) {
    const auto it = position.find(y);
    check(it != position.end(), op, "label ", y, " is not among the ", classes.size(), " kept classes");
    y = it->second;
  }
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
}

Outputs collect_outputs(nn::Module& model, augment::DataLoader& loader, const std::vector<int64_t>& classes) {
  const Device device = model.device();
  model.eval();
  autograd::NoGradGuard no_grad;
  std::vector<float> logits;
  std::vector<int64_t> labels;
  int64_t k = 0;
  loader.start_epoch(0);
  for (augment::Batch b; loader.next(b);) {
    Tensor out = model(b.images.to(device));
    out = classes.empty() ? out.to(Device::cpu()).to(DType::f32) : restrict_logits(out, classes);
    check(out.dim() == 2, "collect_outputs", "the model's outputs are ", out.str(), ", not logits (N, K)");
    k = out.size(1);
    const std::vector<float> v = out.to_vector<float>();
    logits.insert(logits.end(), v.begin(), v.end());
    const std::vector<int64_t> y = b.labels.to_vector<int64_t>();
    labels.insert(labels.end(), y.begin(), y.end());
  }
  check(!labels.empty(), "collect_outputs", "the loader yields no samples");
  const int64_t n = static_cast<int64_t>(labels.size());
  return {Tensor::from_vector(logits, {n, k}), Tensor::from_vector(labels, {n})};
}

}  // namespace dmix::probe
