// Elementwise ops: forward through kernels/cpu/elementwise or its CUDA twin
// kernels/cuda/elementwise (by the device of the operands), backward as engine ops.
#include "engine/ops/elementwise.h"

#include "engine/ops/common.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/elementwise.h"

namespace dmix {

using autograd::BackwardContext;
namespace k = kernels::cpu;
namespace cu = kernels::cuda;

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    check(da == db || da == 1 || db == 1, op, "shapes ", shape_str(a), " and ", shape_str(b), " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// Per-output-dim strides of an operand of shape `in` broadcast to `out` (0 on broadcast dims).
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t s = 1;
  for (size_t j = 0; j < in.size(); ++j) {
    const size_t i = in.size() - 1 - j;
    const size_t o = out.size() - 1 - j;
    strides[o] = in[i] == 1 ? 0 : s;
    s *= in[i];
  }
  return strides;
}

void check_rank(const char* op, const Shape& s) {
  check(static_cast<int>(s.size()) <= k::kMaxDims, op, "supports at most ", k::kMaxDims, " dims, got ", shape_str(s));
}

Tensor binary_forward(const char* op, k::BinaryOp kop, const Tensor& a, const Tensor& b) {
  detail::check_defined(op, a, "first operand");
  detail::check_defined(op, b, "second operand");
  detail::check_same_dtype_device(op, a, b);
  detail::check_float(op, a);
  const Shape shape = broadcast_shapes(op, a.shape(), b.shape());
  check_rank(op, shape);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  const auto sa = broadcast_strides(a.shape(), shape), sb = broadcast_strides(b.shape(), shape);
  const int nd = static_cast<int>(shape.size());
  detail::dispatch_float(op, a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (a.is_cuda()) {
        cu::binary<T>(kop, nd, shape.data(), a.data<T>(), sa.data(), b.data<T>(), sb.data(), out.data<T>(),
                      a.device().index);
        return;
      }
    }
    k::binary<T>(kop, nd, shape.data(), a.data<T>(), sa.data(), b.data<T>(), sb.data(), out.data<T>());
  });
  return out;
}

Tensor unary_forward(const char* op, k::UnaryOp kop, const Tensor& a) {
  detail::check_defined(op, a, "input");
  detail::check_float(op, a);
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  detail::dispatch_float(op, a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (a.is_cuda()) {
        cu::unary<T>(kop, a.data<T>(), out.data<T>(), a.numel(), a.device().index);
        return;
      }
    }
    k::unary<T>(kop, a.data<T>(), out.data<T>(), a.numel());
  });
  return out;
}

// y = x * scale + shift, elementwise.
Tensor affine_forward(const char* op, const Tensor& a, double scale, double shift) {
  detail::check_defined(op, a, "input");
  detail::check_float(op, a);
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  detail::dispatch_float(op, a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (a.is_cuda()) {
        cu::affine_scalar<T>(a.data<T>(), T(scale), T(shift), out.data<T>(), a.numel(), a.device().index);
        return;
      }
    }
    k::affine_scalar<T>(a.data<T>(), T(scale), T(shift), out.data<T>(), a.numel());
  });
  return out;
}

// 1 where lo <= a <= hi, else 0, in a's dtype; a constant of the graph.
Tensor range_mask(const Tensor& a, double lo, double hi) {
  Tensor m = Tensor::empty(a.shape(), a.dtype(), a.device());
  detail::dispatch_float("range_mask", a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (a.is_cuda()) {
        cu::range_mask<T>(a.data<T>(), T(lo), T(hi), m.data<T>(), a.numel(), a.device().index);
        return;
      }
    }
    k::range_mask<T>(a.data<T>(), T(lo), T(hi), m.data<T>(), a.numel());
  });
  return m;
}

// g where x > 0, else 0: relu's backward as its own op, so relu is twice differentiable.
Tensor relu_backward(const Tensor& g, const Tensor& x) {
  detail::check_same_dtype_device("relu_backward", g, x);
  check(g.shape() == x.shape(), "relu_backward", "gradient ", g.str(), " does not match input ", x.str());
  Tensor out = Tensor::empty(g.shape(), g.dtype(), g.device());
  detail::dispatch_float("relu_backward", g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (g.is_cuda()) {
        cu::relu_backward<T>(g.data<T>(), x.data<T>(), out.data<T>(), g.numel(), g.device().index);
        return;
      }
    }
    k::relu_backward<T>(g.data<T>(), x.data<T>(), out.data<T>(), g.numel());
  });
  autograd::record("relu_backward", {g, x}, {out}, [x](const BackwardContext& c) {
    // Linear in g; piecewise constant in x (its derivative is zero off the kink).
    return TensorList{c.needs(0) ? relu_backward(c.grad(), x) : Tensor(), Tensor()};
  });
  return out;
}

}  // namespace

// ---- binary -----------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("add", k::BinaryOp::Add, a, b);
  autograd::record("add", {a, b}, {out}, [sa = a.shape(), sb = b.shape()](const BackwardContext& c) {
    return TensorList{c.needs(0) ? sum_to(c.grad(), sa) : Tensor(), c.needs(1) ? sum_to(c.grad(), sb) : Tensor()};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("sub", k::BinaryOp::Sub, a, b);
  autograd::record("sub", {a, b}, {out}, [sa = a.shape(), sb = b.shape()](const BackwardContext& c) {
    return TensorList{c.needs(0) ? sum_to(c.grad(), sa) : Tensor(), c.needs(1) ? sum_to(neg(c.grad()), sb) : Tensor()};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("mul", k::BinaryOp::Mul, a, b);
  autograd::record("mul", {a, b}, {out}, [a, b](const BackwardContext& c) {
    return TensorList{c.needs(0) ? sum_to(mul(c.grad(), b), a.shape()) : Tensor(),
                      c.needs(1) ? sum_to(mul(c.grad(), a), b.shape()) : Tensor()};
  });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("div", k::BinaryOp::Div, a, b);
  autograd::record("div", {a, b}, {out}, [a, b](const BackwardContext& c) {
    Tensor ga, gb;
    if (c.needs(0)) ga = sum_to(div(c.grad(), b), a.shape());
    if (c.needs(1)) gb = sum_to(neg(div(mul(c.grad(), a), mul(b, b))), b.shape());
    return TensorList{ga, gb};
  });
  return out;
}

Tensor add_scalar(const Tensor& a, double s) {
  Tensor out = affine_forward("add_scalar", a, 1.0, s);
  autograd::record("add_scalar", {a}, {out}, [](const BackwardContext& c) { return TensorList{c.grad()}; });
  return out;
}

Tensor mul_scalar(const Tensor& a, double s) {
  Tensor out = affine_forward("mul_scalar", a, s, 0.0);
  autograd::record("mul_scalar", {a}, {out}, [s](const BackwardContext& c) { return TensorList{mul_scalar(c.grad(), s)}; });
  return out;
}

// ---- unary ------------------------------------------------------------------------------

Tensor neg(const Tensor& a) {
  Tensor out = unary_forward("neg", k::UnaryOp::Neg, a);
  autograd::record("neg", {a}, {out}, [](const BackwardContext& c) { return TensorList{neg(c.grad())}; });
  return out;
}

Tensor exp(const Tensor& a) {
  Tensor out = unary_forward("exp", k::UnaryOp::Exp, a);
  autograd::record("exp", {a}, {out}, [](const BackwardContext& c) { return TensorList{mul(c.grad(), c.output())}; },
                   /*save_outputs=*/true);
  return out;
}

Tensor log(const Tensor& a) {
  Tensor out = unary_forward("log", k::UnaryOp::Log, a);
  autograd::record("log", {a}, {out}, [a](const BackwardContext& c) { return TensorList{div(c.grad(), a)}; });
  return out;
}

Tensor sqrt(const Tensor& a) {
  Tensor out = unary_forward("sqrt", k::UnaryOp::Sqrt, a);
  autograd::record("sqrt", {a}, {out},
                   [](const BackwardContext& c) { return TensorList{div(mul_scalar(c.grad(), 0.5), c.output())}; },
                   /*save_outputs=*/true);
  return out;
}

Tensor abs(const Tensor& a) {
  Tensor out = unary_forward("abs", k::UnaryOp::Abs, a);
  autograd::record("abs", {a}, {out}, [a](const BackwardContext& c) { return TensorList{mul(c.grad(), sign(a))}; });
  return out;
}

Tensor sign(const Tensor& a) {
  // Piecewise constant: its derivative is zero wherever it exists, so nothing is recorded.
  return unary_forward("sign", k::UnaryOp::Sign, a);
}

Tensor pow(const Tensor& a, double e) {
  detail::check_defined("pow", a, "input");
  detail::check_float("pow", a);
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  detail::dispatch_float("pow", a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (a.is_cuda()) {
        cu::pow_scalar<T>(a.data<T>(), T(e), out.data<T>(), a.numel(), a.device().index);
        return;
      }
    }
    k::pow_scalar<T>(a.data<T>(), T(e), out.data<T>(), a.numel());
  });
  autograd::record("pow", {a}, {out}, [a, e](const BackwardContext& c) {
    if (e == 0.0) return TensorList{Tensor::zeros(a.shape(), a.dtype(), a.device())};
    Tensor d = e == 1.0 ? Tensor::ones(a.shape(), a.dtype(), a.device()) : mul_scalar(pow(a, e - 1.0), e);
    return TensorList{mul(c.grad(), d)};
  });
  return out;
}

Tensor clamp(const Tensor& a, double lo, double hi) {
  check(lo <= hi, "clamp", "lo ", lo, " > hi ", hi);
  detail::check_defined("clamp", a, "input");
  detail::check_float("clamp", a);
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  detail::dispatch_float("clamp", a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (a.is_cuda()) {
        cu::clamp<T>(a.data<T>(), T(lo), T(hi), out.data<T>(), a.numel(), a.device().index);
        return;
      }
    }
    k::clamp<T>(a.data<T>(), T(lo), T(hi), out.data<T>(), a.numel());
  });
  autograd::record("clamp", {a}, {out}, [a, lo, hi](const BackwardContext& c) {
    return TensorList{mul(c.grad(), range_mask(a, lo, hi))};
  });
  return out;
}

Tensor relu(const Tensor& a) {
  Tensor out = unary_forward("relu", k::UnaryOp::Relu, a);
  autograd::record("relu", {a}, {out}, [a](const BackwardContext& c) { return TensorList{relu_backward(c.grad(), a)}; });
  return out;
}

Tensor sigmoid(const Tensor& a) {
  Tensor out = unary_forward("sigmoid", k::UnaryOp::Sigmoid, a);
  autograd::record("sigmoid", {a}, {out}, [](const BackwardContext& c) {
    const Tensor& y = c.output();
    return TensorList{mul(c.grad(), mul(y, add_scalar(neg(y), 1.0)))};
  }, /*save_outputs=*/true);
  return out;
}

Tensor tanh(const Tensor& a) {
  Tensor out = unary_forward("tanh", k::UnaryOp::Tanh, a);
  autograd::record("tanh", {a}, {out}, [](const BackwardContext& c) {
    const Tensor& y = c.output();
    return TensorList{mul(c.grad(), add_scalar(neg(mul(y, y)), 1.0))};
  }, /*save_outputs=*/true);
  return out;
}

// ---- masks and selection ------------------------------------------------------------------

Tensor greater(const Tensor& a, const Tensor& b) {
  detail::check_same_dtype_device("greater", a, b);
  detail::check_float("greater", a);
  const Shape shape = broadcast_shapes("greater", a.shape(), b.shape());
  check_rank("greater", shape);
  Tensor out = Tensor::empty(shape, DType::u8, a.device());
  const auto sa = broadcast_strides(a.shape(), shape), sb = broadcast_strides(b.shape(), shape);
  const int nd = static_cast<int>(shape.size());
  detail::dispatch_float("greater", a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (a.is_cuda()) {
        cu::greater<T>(nd, shape.data(), a.data<T>(), sa.data(), b.data<T>(), sb.data(), out.data<uint8_t>(),
                       a.device().index);
        return;
      }
    }
    k::greater<T>(nd, shape.data(), a.data<T>(), sa.data(), b.data<T>(), sb.data(), out.data<uint8_t>());
  });
  return out;
}

Tensor greater_scalar(const Tensor& a, double s) { return greater(a, Tensor::scalar(s, a.dtype(), a.device())); }
Tensor less_scalar(const Tensor& a, double s) { return greater(Tensor::scalar(s, a.dtype(), a.device()), a); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check(cond.dtype() == DType::u8, "where", "condition must be a u8 mask, got ", cond.str());
  detail::check_same_dtype_device("where", a, b);
  check(cond.device() == a.device(), "where", "condition on ", cond.device(), " but values on ", a.device());
  detail::check_float("where", a);
  const Shape shape = broadcast_shapes("where", broadcast_shapes("where", cond.shape(), a.shape()), b.shape());
  check_rank("where", shape);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  const auto sc = broadcast_strides(cond.shape(), shape), sa = broadcast_strides(a.shape(), shape),
             sb = broadcast_strides(b.shape(), shape);
  const int nd = static_cast<int>(shape.size());
  detail::dispatch_float("where", a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (a.is_cuda()) {
        cu::where<T>(nd, shape.data(), cond.data<uint8_t>(), sc.data(), a.data<T>(), sa.data(), b.data<T>(), sb.data(),
                     out.data<T>(), a.device().index);
        return;
      }
    }
    k::where<T>(nd, shape.data(), cond.data<uint8_t>(), sc.data(), a.data<T>(), sa.data(), b.data<T>(), sb.data(),
                out.data<T>());
  });
  autograd::record("where", {a, b}, {out}, [cond, sa_shape = a.shape(), sb_shape = b.shape()](const BackwardContext& c) {
    const Tensor zero = Tensor::scalar(0.0, c.grad().dtype(), c.grad().device());
    Tensor ga, gb;
    if (c.needs(0)) ga = sum_to(where(cond, c.grad(), zero), sa_shape);
    if (c.needs(1)) gb = sum_to(where(cond, zero, c.grad()), sb_shape);
    return TensorList{ga, gb};
  });
  return out;
}

Tensor masked_fill(const Tensor& a, const Tensor& mask, double value) {
  return where(mask, Tensor::scalar(value, a.dtype(), a.device()), a);
}

Tensor mask_to_float(const Tensor& mask, DType dtype) {
  check(mask.dtype() == DType::u8, "mask_to_float", "expects a u8 mask, got ", mask.str());
  check(is_floating(dtype), "mask_to_float", "target must be a float dtype, got ", dtype_name(dtype));
  return mask.to(dtype);
}

}  // namespace dmix
