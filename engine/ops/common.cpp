#include "engine/ops/common.h"

namespace dmix::detail {

void check_defined(const char* op, const Tensor& t, const char* what) {
  check(t.defined(), op, what, " is an undefined tensor");
}

void check_same_dtype_device(const char* op, const Tensor& a, const Tensor& b) {
  check(a.dtype() == b.dtype(), op, "dtypes differ: ", a.str(), " vs ", b.str());
  check(a.device() == b.device(), op, "devices differ: ", a.str(), " vs ", b.str());
}

void check_float(const char* op, const Tensor& t) {
  check(t.dtype() == DType::f32 || t.dtype() == DType::f64, op, "expects an f32 or f64 tensor, got ", t.str());
}

void check_dim(const char* op, const Tensor& t, int64_t dim, const char* what) {
  check(t.dim() == dim, op, what, " must have ", dim, " dims, got ", t.str());
}

void require_cpu(const char* op, const TensorList& ts) {
  for (const Tensor& t : ts)
    if (t.defined() && !t.is_cpu()) fail(op, "has no CUDA kernel yet (input ", t.str(), ")");
}

int64_t wrap_dim(const char* op, int64_t dim, int64_t ndim) {
  const int64_t d = dim < 0 ? dim + ndim : dim;
  check(d >= 0 && d < std::max<int64_t>(ndim, 1), op, "dim ", dim, " out of range for ", ndim, " dims");
  return d;
}

}  // namespace dmix::detail
