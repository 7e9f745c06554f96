// Shared checks and dtype dispatch for op implementations (internal header).
#pragma once
#include <cstdint>
#include <utility>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/tensor.h"

namespace dmix::detail {

void check_defined(const char* op, const Tensor& t, const char* what);
void check_same_dtype_device(const char* op, const Tensor& a, const Tensor& b);
void check_float(const char* op, const Tensor& t);
void check_dim(const char* op, const Tensor& t, int64_t dim, const char* what);
// For ops whose CUDA kernel does not exist yet: a clear error instead of a wrong answer.
void require_cpu(const char* op, const TensorList& ts);
// Maps a possibly negative dim into [0, ndim); throws naming op otherwise.
int64_t wrap_dim(const char* op, int64_t dim, int64_t ndim);

// Calls f(T{}) with T = float or double for a float dtype; throws for anything else.
template <class F>
void dispatch_float(const char* op, DType t, F&& f) {
  if (t == DType::f32) {
    f(float{});
  } else if (t == DType::f64) {
    f(double{});
  } else {
    fail(op, "expects f32 or f64, got ", dtype_name(t));
  }
}

}  // namespace dmix::detail
