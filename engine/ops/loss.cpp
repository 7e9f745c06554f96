// Classification losses, composed from log_softmax, mul and sum: their gradients (and
// Hessians) come from those ops' backward formulas.
#include "engine/ops/loss.h"

#include <vector>

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/reduce_max.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/reduce_max.h"

namespace dmix {

Tensor one_hot(const Tensor& labels, int64_t classes, DType dtype) {
  detail::check_defined("one_hot", labels, "labels");
  check(labels.dtype() == DType::i64, "one_hot", "labels must be i64, got ", labels.str());
  check(classes > 0, "one_hot", "classes must be positive, got ", classes);
  const int64_t n = labels.numel();
  // Labels on a GPU are range-checked on the host (one small copy): a bad label is an
  // error naming it, never a silent all-zero row.
  const std::vector<int64_t> host = labels.is_cuda() ? labels.to_vector<int64_t>() : std::vector<int64_t>();
  const int64_t* idx = labels.is_cuda() ? host.data() : labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    check(idx[i] >= 0 && idx[i] < classes, "one_hot", "label ", idx[i], " at position ", i, " of ", labels.str(),
          " is out of range [0, ", classes, ")");
  Shape shape = labels.shape();
  shape.push_back(classes);
  Tensor out = Tensor::empty(shape, dtype, labels.device());
  detail::dispatch_float("one_hot", dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kernels::cuda::kBuilt) {
      if (labels.is_cuda()) {
        kernels::cuda::one_hot_along(labels.data<int64_t>(), n, classes, 1, out.data<T>(), labels.device().index);
        return;
      }
    }
    kernels::cpu::one_hot_along<T>(idx, n, classes, 1, out.data<T>());
  });
  return out;
}

Tensor soft_cross_entropy(const Tensor& logits, const Tensor& targets) {
  const char* op = "soft_cross_entropy";
  detail::check_defined(op, logits, "logits");
  detail::check_defined(op, targets, "targets");
  detail::check_dim(op, logits, 2, "logits (N, classes)");
  detail::check_float(op, logits);
  detail::check_same_dtype_device(op, logits, targets);
  check(targets.shape() == logits.shape(), op, "targets ", targets.str(), " must have the shape of logits ",
        logits.str());
  const int64_t batch = logits.size(0);
  check(batch > 0, op, "empty batch: logits ", logits.str());
  return mul_scalar(sum(mul(targets, log_softmax(logits, 1))), -1.0 / static_cast<double>(batch));
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing) {
  const char* op = "cross_entropy";
  detail::check_defined(op, logits, "logits");
  detail::check_defined(op, labels, "labels");
  detail::check_dim(op, logits, 2, "logits (N, classes)");
  detail::check_float(op, logits);
  check(labels.dtype() == DType::i64, op, "labels must be i64, got ", labels.str());
  check(labels.dim() == 1 && labels.size(0) == logits.size(0), op, "labels ", labels.str(),
        " must be (N) for logits ", logits.str());
  check(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, "label_smoothing must be in [0, 1], got ",
        label_smoothing);
  const int64_t classes = logits.size(1);
  Tensor targets = one_hot(labels, classes, logits.dtype());
  if (logits.device() != targets.device()) targets = targets.to(logits.device());
  if (label_smoothing > 0.0)
    targets = add_scalar(mul_scalar(targets, 1.0 - label_smoothing), label_smoothing / static_cast<double>(classes));
  return soft_cross_entropy(logits, targets);
}

}  // namespace dmix
