#include "nn/metrics.h"

#include "engine/error.h"

namespace dmix::nn {

int64_t count_topk_correct(const Tensor& logits, const Tensor& labels, int64_t k) {
  check(logits.dim() == 2 && labels.dim() == 1 && logits.size(0) == labels.size(0), "topk", "logits ", logits.str(),
        " and labels ", labels.str(), " do not match");
  check(labels.dtype() == DType::i64, "topk", "labels must be i64, got ", labels.str());
  const Tensor l = logits.detach().to(Device::cpu()).to(DType::f32);
  const auto y = labels.to(Device::cpu()).to_vector<int64_t>();
  const int64_t n = l.size(0), c = l.size(1);
  const float* p = l.data<float>();
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = p + i * c;
    check(y[i] >= 0 && y[i] < c, "topk", "label ", y[i], " out of range for ", c, " classes");
    const float target = row[y[i]];
    int64_t rank = 0;  // classes that beat the label
    for (int64_t j = 0; j < c; ++j) rank += row[j] > target || (row[j] == target && j < y[i]);
    correct += rank < k;
  }
  return correct;
}

}  // namespace dmix::nn
