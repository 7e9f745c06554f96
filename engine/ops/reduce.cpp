// var, max / argmax along a dim, softmax and log_softmax (sum, mean, expand and sum_to
// live in reduce_sum.cpp). Forward passes run fused kernels on the input's device (CPU or
// CUDA); backward formulas are engine ops, so every gradient here is differentiable again.
#include <vector>

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/reduce_max.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/reduce_max.h"
#include "kernels/cuda/softmax.h"

namespace dmix {

using autograd::BackwardContext;

namespace {

// A contiguous tensor seen as (outer, n, inner) around dim d.
struct Split {
  int64_t outer = 1, n = 1, inner = 1;
};

Split split_at(const Shape& s, int64_t d) {
  Split sp;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
    if (i < d) sp.outer *= s[i];
    if (i == d) sp.n = s[i];
    if (i > d) sp.inner *= s[i];
  }
  return sp;
}

// Checks shared by the ops along one dim; returns the wrapped dim. The input may live
// on any device; the kernels run where it is.
int64_t along_dim_checks(const char* op, const Tensor& a, int64_t dim) {
  detail::check_defined(op, a, "input");
  detail::check_float(op, a);
  check(a.dim() >= 1, op, "expects a tensor with at least one dim, got ", a.str());
  return detail::wrap_dim(op, dim, a.dim());
}

Shape keepdim_shape(const Shape& s, int64_t d) {
  Shape k = s;
  k[d] = 1;
  return k;
}

Shape dropped_shape(const Shape& s, int64_t d) {
  Shape k = s;
  k.erase(k.begin() + d);
  return k;
}

// 1 at the positions `indices` pick along dim d of `shape`, 0 elsewhere: a constant of
// the graph that routes max's gradient to the arg max.
Tensor index_mask(const Tensor& indices, const Shape& shape, int64_t d, DType dtype) {
  const Split sp = split_at(shape, d);
  Tensor mask = Tensor::empty(shape, dtype, indices.device());
  detail::dispatch_float("max", dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kernels::cuda::kBuilt) {
      if (indices.is_cuda()) {
        kernels::cuda::one_hot_along(indices.data<int64_t>(), sp.outer, sp.n, sp.inner, mask.data<T>(),
                                     indices.device().index);
        return;
      }
    }
    kernels::cpu::one_hot_along<T>(indices.data<int64_t>(), sp.outer, sp.n, sp.inner, mask.data<T>());
  });
  return mask;
}

// Runs the max kernel; values may be left undefined (argmax).
void max_kernel(const char* op, const Tensor& a, int64_t d, Tensor* values, const Tensor& indices) {
  const Split sp = split_at(a.shape(), d);
  check(sp.n > 0, op, "reduction over an empty dim ", d, " of ", a.str());
  detail::dispatch_float(op, a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* v = values ? values->data<T>() : nullptr;
    if constexpr (kernels::cuda::kBuilt) {
      if (a.is_cuda()) {
        kernels::cuda::max_along(a.data<T>(), sp.outer, sp.n, sp.inner, v, indices.data<int64_t>(), a.device().index);
        return;
      }
    }
    kernels::cpu::max_along<T>(a.data<T>(), sp.outer, sp.n, sp.inner, v, indices.data<int64_t>());
  });
}

}  // namespace

Tensor var(const Tensor& a, const Dims& dims, bool unbiased, bool keepdim) {
  detail::check_defined("var", a, "input");
  detail::check_float("var", a);
  int64_t count = 1;
  if (dims.empty()) {
    count = a.numel();
  } else {
    for (int64_t d : dims) count *= a.shape()[detail::wrap_dim("var", d, a.dim())];
  }
  check(count > 0, "var", "variance over an empty set of elements of ", a.str());
  // Composed from differentiable ops (two passes: mean first, then squared deviations),
  // so var is differentiable to any order. With unbiased and a single element the
  // divisor is 0 and the result NaN, as in PyTorch.
  const Tensor deviation = sub(a, mean(a, dims, /*keepdim=*/true));
  const Tensor squares = sum(mul(deviation, deviation), dims, keepdim);
  const double divisor = static_cast<double>(count - (unbiased ? 1 : 0));
  return mul_scalar(squares, 1.0 / divisor);
}

MaxResult max(const Tensor& a, int64_t dim, bool keepdim) {
  const int64_t d = along_dim_checks("max", a, dim);
  const Shape keep = keepdim_shape(a.shape(), d);
  const Shape out_shape = keepdim ? keep : dropped_shape(a.shape(), d);
  MaxResult r;
  r.values = Tensor::empty(out_shape, a.dtype(), a.device());
  r.indices = Tensor::empty(out_shape, DType::i64, a.device());
  max_kernel("max", a, d, &r.values, r.indices);
  autograd::record("max", {a}, {r.values},
                   [indices = r.indices, in_shape = a.shape(), keep, d](const BackwardContext& c) {
                     // g lands on the first arg max; the mask is constant, so this is linear in g.
                     const Tensor mask = index_mask(indices, in_shape, d, c.grad().dtype());
                     return TensorList{mul(mask, c.grad().reshape(keep))};
                   });
  return r;
}

Tensor argmax(const Tensor& a, int64_t dim, bool keepdim) {
  const int64_t d = along_dim_checks("argmax", a, dim);
  Tensor indices = Tensor::empty(keepdim ? keepdim_shape(a.shape(), d) : dropped_shape(a.shape(), d), DType::i64,
                                 a.device());
  max_kernel("argmax", a, d, nullptr, indices);
  return indices;
}

Tensor softmax(const Tensor& a, int64_t dim) {
  const int64_t d = along_dim_checks("softmax", a, dim);
  const Split sp = split_at(a.shape(), d);
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  detail::dispatch_float("softmax", a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kernels::cuda::kBuilt) {
      if (a.is_cuda()) {
        kernels::cuda::softmax(a.data<T>(), sp.outer, sp.n, sp.inner, out.data<T>(), a.device().index);
        return;
      }
    }
    kernels::cpu::softmax<T>(a.data<T>(), sp.outer, sp.n, sp.inner, out.data<T>());
  });
  autograd::record(
      "softmax", {a}, {out},
      [d](const BackwardContext& c) {
        // out is the reattached output, so this formula is itself differentiable.
        const Tensor& y = c.output();
        const Tensor& g = c.grad();
        return TensorList{mul(y, sub(g, sum(mul(g, y), {d}, /*keepdim=*/true)))};
      },
      /*save_outputs=*/true);
  return out;
}

Tensor log_softmax(const Tensor& a, int64_t dim) {
  const int64_t d = along_dim_checks("log_softmax", a, dim);
  const Split sp = split_at(a.shape(), d);
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  detail::dispatch_float("log_softmax", a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kernels::cuda::kBuilt) {
      if (a.is_cuda()) {
        kernels::cuda::log_softmax(a.data<T>(), sp.outer, sp.n, sp.inner, out.data<T>(), a.device().index);
        return;
      }
    }
    kernels::cpu::log_softmax<T>(a.data<T>(), sp.outer, sp.n, sp.inner, out.data<T>());
  });
  autograd::record(
      "log_softmax", {a}, {out},
      [d](const BackwardContext& c) {
        const Tensor& y = c.output();
        const Tensor& g = c.grad();
        return TensorList{sub(g, mul(exp(y), sum(g, {d}, /*keepdim=*/true)))};
      },
      /*save_outputs=*/true);
  return out;
}

}  // namespace dmix
