// Batch normalisation. Training: a fused kernel normalises with the batch statistics and
// the running statistics are updated in place; the backward is a fused kernel too, made
// its own op ("batch_norm_backward"), whose backward re-expresses the same formula with
// engine ops and differentiates it, so second and higher derivatives are exact.
// Eval: a per-channel affine map with the running statistics; its backward is engine ops.
// Every kernel runs on the input's device (CPU or CUDA; the CUDA kernels are the CPU
// ones' twins, running statistics included).
#include "engine/ops/norm.h"

#include <cmath>
#include <functional>

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/build_config.h"

namespace dmix {

using autograd::BackwardContext;

namespace {

// x (N, C, spatial...) seen as (N, C, S).
struct Layout {
  int64_t N = 0, C = 0, S = 1;
};

Layout layout_of(const Tensor& x) {
  Layout l;
  l.N = x.size(0);
  l.C = x.size(1);
  for (int64_t d = 2; d < x.dim(); ++d) l.S *= x.size(d);
  return l;
}

// Every dim but the channel dim 1: the dims a per-channel statistic reduces.
Dims non_channel_dims(int64_t ndim) {
  Dims r = {0};
  for (int64_t d = 2; d < ndim; ++d) r.push_back(d);
  return r;
}

// (1, C, 1, ...): a per-channel vector shaped to broadcast against x.
Shape channel_shape(const Tensor& x) {
  Shape s(static_cast<size_t>(x.dim()), 1);
  s[1] = x.size(1);
  return s;
}

template <class T> const T* data_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
// For buffers updated in place (running statistics).
template <class T> T* mutable_data_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

void check_channel_vector(const Tensor& x, const Tensor& v, const char* what) {
  if (!v.defined()) return;
  check(v.shape() == Shape{x.size(1)}, "batch_norm", what, " ", v.str(), " must have shape [", x.size(1),
        "] (the channels of input ", x.str(), ")");
  detail::check_same_dtype_device("batch_norm", x, v);
}

// ---- double backward machinery --------------------------------------------------------------

using Composite = std::function<TensorList(const TensorList&)>;

// <cotangents, f(inputs)> differentiated with respect to inputs[i] for i in `wanted`, by
// running f on `inputs` and differentiating it. all = inputs followed by cotangents.
TensorList vjp_of(const Composite& f, size_t k, const std::vector<size_t>& wanted, const TensorList& all,
                  bool create_graph) {
  TensorList in(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k));
  const TensorList cot(all.begin() + static_cast<std::ptrdiff_t>(k), all.end());
  TensorList wrt;
  for (size_t i : wanted) {
    // An input held constant by the caller still needs a leaf to differentiate against.
    if (!in[i].requires_grad()) in[i] = in[i].detach().set_requires_grad(true);
    wrt.push_back(in[i]);
  }
  const TensorList outs = f(in);
  TensorList roots, seeds;
  for (size_t j = 0; j < outs.size(); ++j)
    if (outs[j].requires_grad()) {
      roots.push_back(outs[j]);
      seeds.push_back(cot[j]);
    }
  if (roots.empty()) {
    TensorList zeros;
    for (const Tensor& t : wrt) zeros.push_back(Tensor::zeros(t.shape(), t.dtype(), t.device()));
    return zeros;
  }
  return autograd::grad(roots, wrt, seeds, create_graph, /*allow_unused=*/true);
}

// The vector-Jacobian product of f at `inputs` against `cotangents` (one per output of f),
// for the inputs flagged in `needs`. Its values come from differentiating f on fresh
// leaves; they are recorded as one op of (inputs, cotangents) whose backward is this same
// construction applied to the product itself (a composite of engine ops when evaluated
// with create_graph), so the results are differentiable again, to any order.
// Returns one tensor per input, undefined where not needed.
TensorList composite_vjp(const char* op, const Composite& f, const TensorList& inputs, const TensorList& cotangents,
                         const std::vector<bool>& needs) {
  const size_t k = inputs.size();
  std::vector<size_t> wanted;
  for (size_t i = 0; i < k; ++i)
    if (needs[i] && inputs[i].defined()) wanted.push_back(i);
  TensorList result(k);
  if (wanted.empty()) return result;

  TensorList all = inputs;
  all.insert(all.end(), cotangents.begin(), cotangents.end());
  TensorList values;
  {
    TensorList leaves;
    for (const Tensor& t : all) leaves.push_back(t.defined() ? t.detach() : Tensor());
    autograd::EnableGradGuard grad_on;
    values = vjp_of(f, k, wanted, leaves, /*create_graph=*/false);
  }
  for (Tensor& v : values) v = v.detach();
  const Composite product = [f, k, wanted](const TensorList& a) {
    return vjp_of(f, k, wanted, a, /*create_graph=*/true);
  };
  autograd::record(op, all, values, [op, product, all](const BackwardContext& c) {
    return composite_vjp(op, product, all, c.grad_outputs, c.needs_input_grad);
  });
  for (size_t j = 0; j < wanted.size(); ++j) result[wanted[j]] = values[j];
  return result;
}

// Training-mode batch-norm backward written with engine ops: (gx, gweight, gbias) from
// (g, x, weight). weight may be undefined (1).
TensorList batch_norm_backward_composite(const Tensor& g, const Tensor& x, const Tensor& weight, double eps) {
  const Layout l = layout_of(x);
  const Shape s3 = {l.N, l.C, l.S}, cs = {1, l.C, 1};
  const Dims r = {0, 2};
  const double inv_count = 1.0 / static_cast<double>(l.N * l.S);
  const Tensor x3 = x.reshape(s3), g3 = g.reshape(s3);
  const Tensor centred = sub(x3, mean(x3, r, true));
  const Tensor invstd = pow(add_scalar(mean(mul(centred, centred), r, true), eps), -0.5);
  const Tensor xhat = mul(centred, invstd);
  const Tensor gbias = sum(g3, r, true);
  const Tensor gweight = sum(mul(g3, xhat), r, true);
  const Tensor scale = weight.defined() ? mul(weight.reshape(cs), invstd) : invstd;
  const Tensor centred_g = sub(sub(g3, mul_scalar(gbias, inv_count)), mul(xhat, mul_scalar(gweight, inv_count)));
  return {mul(scale, centred_g).reshape(x.shape()), gweight.reshape({l.C}), gbias.reshape({l.C})};
}

// The fused training backward as an op: (gx, gweight, gbias) from g, x and weight, with the
// batch statistics the forward saved (functions of x, so not inputs of their own).
TensorList batch_norm_backward(const Tensor& g, const Tensor& x, const Tensor& weight, const Tensor& mean,
                               const Tensor& invstd, double eps) {
  detail::check_same_dtype_device("batch_norm_backward", g, x);
  const Layout l = layout_of(x);
  Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor gweight = Tensor::empty({l.C}, x.dtype(), x.device());
  Tensor gbias = Tensor::empty({l.C}, x.dtype(), x.device());
  detail::dispatch_float("batch_norm_backward", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kernels::cuda::kBuilt) {
      if (x.is_cuda()) {
        kernels::cuda::batch_norm_backward_train(g.data<T>(), x.data<T>(), l.N, l.C, l.S, mean.data<T>(),
                                                 invstd.data<T>(), data_or_null<T>(weight), gx.data<T>(),
                                                 gweight.data<T>(), gbias.data<T>(), x.device().index);
        return;
      }
    }
    kernels::cpu::batch_norm_backward_train<T>(g.data<T>(), x.data<T>(), l.N, l.C, l.S, mean.data<T>(),
                                               invstd.data<T>(), data_or_null<T>(weight), gx.data<T>(),
                                               gweight.data<T>(), gbias.data<T>());
  });
  autograd::record("batch_norm_backward", {g, x, weight}, {gx, gweight, gbias},
                   [g, x, weight, eps](const BackwardContext& c) {
                     const Composite f = [eps](const TensorList& in) {
                       return batch_norm_backward_composite(in[0], in[1], in[2], eps);
                     };
                     return composite_vjp("batch_norm_double_backward", f, {g, x, weight}, c.grad_outputs,
                                          c.needs_input_grad);
                   });
  return {gx, gweight, gbias};
}

// Buffers, not part of any graph: running = (1-momentum)*running + momentum*batch, with the
// unbiased batch variance (`count` values per channel), as PyTorch does. On a GPU one kernel
// makes the same update in the same order and precision as mul_ and add_ here.
void update_running(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& mean,
                    const Tensor& var, double momentum, int64_t count) {
  if constexpr (kernels::cuda::kBuilt) {
    if (x.is_cuda()) {
      detail::dispatch_float("batch_norm", x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        kernels::cuda::batch_norm_update_running(mutable_data_or_null<T>(running_mean),
                                                 mutable_data_or_null<T>(running_var), mean.data<T>(), var.data<T>(),
                                                 mean.numel(), momentum, count, x.device().index);
      });
      return;
    }
  }
  autograd::NoGradGuard no_grad;
  if (running_mean.defined()) running_mean.mul_(1.0 - momentum).add_(mean, momentum);
  if (running_var.defined())
    running_var.mul_(1.0 - momentum).add_(var, momentum * static_cast<double>(count) / static_cast<double>(count - 1));
}

Tensor batch_norm_train(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                        const Tensor& running_var, double momentum, double eps) {
  const Layout l = layout_of(x);
  const int64_t count = l.N * l.S;
  check(count > 1, "batch_norm", "expects more than one value per channel when training, got input ", x.str());
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({l.C}, x.dtype(), x.device());
  Tensor invstd = Tensor::empty({l.C}, x.dtype(), x.device());
  Tensor var = Tensor::empty({l.C}, x.dtype(), x.device());
  detail::dispatch_float("batch_norm", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kernels::cuda::kBuilt) {
      if (x.is_cuda()) {
        kernels::cuda::batch_norm_forward_train(x.data<T>(), l.N, l.C, l.S, data_or_null<T>(weight),
                                                data_or_null<T>(bias), eps, y.data<T>(), mean.data<T>(),
                                                invstd.data<T>(), var.data<T>(), x.device().index);
        return;
      }
    }
    kernels::cpu::batch_norm_forward_train<T>(x.data<T>(), l.N, l.C, l.S, data_or_null<T>(weight),
                                              data_or_null<T>(bias), eps, y.data<T>(), mean.data<T>(), invstd.data<T>(),
                                              var.data<T>());
  });
  update_running(x, running_mean, running_var, mean, var, momentum, count);
  autograd::record("batch_norm", {x, weight, bias}, {y}, [x, weight, mean, invstd, eps](const BackwardContext& c) {
    TensorList g = batch_norm_backward(c.grad(), x, weight, mean, invstd, eps);
    for (size_t i = 0; i < 3; ++i)
      if (!c.needs(i)) g[i] = Tensor();
    return g;
  });
  return y;
}

Tensor batch_norm_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, double eps) {
  const Layout l = layout_of(x);
  // Snapshots: the buffers may be updated in place before this node's backward runs.
  const Tensor mean = running_mean.detach().clone();
  const Tensor invstd = Tensor::empty({l.C}, x.dtype(), x.device());
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  detail::dispatch_float("batch_norm", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* rv = running_var.data<T>();
    T* is = invstd.data<T>();
    if constexpr (kernels::cuda::kBuilt) {
      if (x.is_cuda()) {
        const int device = x.device().index;
        kernels::cuda::batch_norm_invstd(rv, l.C, eps, is, device);
        kernels::cuda::batch_norm_apply(x.data<T>(), l.N, l.C, l.S, mean.data<T>(), is, data_or_null<T>(weight),
                                        data_or_null<T>(bias), y.data<T>(), device);
        return;
      }
    }
    for (int64_t c = 0; c < l.C; ++c) is[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(rv[c]) + eps));
    kernels::cpu::batch_norm_apply<T>(x.data<T>(), l.N, l.C, l.S, mean.data<T>(), is, data_or_null<T>(weight),
                                      data_or_null<T>(bias), y.data<T>());
  });
  // y = (x - mean) * invstd * weight + bias per channel, mean and invstd constant.
  autograd::record("batch_norm_eval", {x, weight, bias}, {y}, [x, weight, mean, invstd](const BackwardContext& c) {
    const Shape cs = channel_shape(x);
    const Dims r = non_channel_dims(x.dim());
    const Tensor& g = c.grad();
    const Tensor is = invstd.reshape(cs);
    TensorList grads(3);
    if (c.needs(0)) grads[0] = mul(g, weight.defined() ? mul(weight.reshape(cs), is) : is);
    if (c.needs(1)) grads[1] = sum(mul(g, mul(sub(x, mean.reshape(cs)), is)), r);
    if (c.needs(2)) grads[2] = sum(g, r);
    return grads;
  });
  return y;
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  detail::check_defined("batch_norm", x, "input");
  detail::check_float("batch_norm", x);
  check(x.dim() >= 2, "batch_norm", "expects input (N, C) or (N, C, H, W), got ", x.str());
  check(x.numel() > 0, "batch_norm", "empty input ", x.str());
  check_channel_vector(x, weight, "weight");
  check_channel_vector(x, bias, "bias");
  check_channel_vector(x, running_mean, "running_mean");
  check_channel_vector(x, running_var, "running_var");
  check(eps > 0.0, "batch_norm", "eps must be positive, got ", eps);
  if (training) return batch_norm_train(x, weight, bias, running_mean, running_var, momentum, eps);
  check(running_mean.defined() && running_var.defined(), "batch_norm",
        "eval mode needs running_mean and running_var (input ", x.str(), ")");
  return batch_norm_eval(x, weight, bias, running_mean, running_var, eps);
}

}  // namespace dmix
