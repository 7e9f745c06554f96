#include "tests/engine/op_table.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <numeric>
#include <random>

namespace dmix::testing {

std::vector<OpCase>& op_cases() {
  static std::vector<OpCase> cases;
  return cases;
}

namespace {

Tensor make_input(const InputSpec& s, DType float_dtype, std::mt19937_64& rng) {
  const int64_t n = shape_numel(s.shape);
  if (s.fill == InputSpec::Fill::Integer) {
    std::uniform_int_distribution<int64_t> dist(static_cast<int64_t>(s.lo), static_cast<int64_t>(s.hi) - 1);
    std::vector<int64_t> v(static_cast<size_t>(n));
    for (auto& x : v) x = dist(rng);
    return Tensor::from_vector(v, s.shape);
  }
  std::vector<double> v(static_cast<size_t>(n));
  std::uniform_real_distribution<double> u(s.lo, s.hi);
  switch (s.fill) {
    case InputSpec::Fill::Uniform:
      for (auto& x : v) x = u(rng);
      break;
    case InputSpec::Fill::AwayFromZero:
      for (auto& x : v) x = (rng() & 1 ? 1.0 : -1.0) * u(rng);
      break;
    case InputSpec::Fill::Distinct: {
      for (int64_t i = 0; i < n; ++i) v[i] = s.lo + (s.hi - s.lo) * (static_cast<double>(i) + 0.5) / static_cast<double>(n);
      std::shuffle(v.begin(), v.end(), rng);
      break;
    }
    case InputSpec::Fill::Integer: break;
  }
  Tensor t = Tensor::from_vector(v, s.shape);
  return float_dtype == DType::f64 ? t : t.to(float_dtype);
}

// f(x) = <fn(x), r>, evaluated without recording.
double projected(const OpCase& c, const TensorList& in, const Tensor& r) {
  autograd::NoGradGuard no_grad;
  return sum(mul(c.fn(in), r)).item();
}

}  // namespace

TensorList make_inputs(const OpCase& c, DType float_dtype, uint64_t seed) {
  std::mt19937_64 rng(seed ^ std::hash<std::string>{}(c.name));
  TensorList ts;
  for (const InputSpec& s : c.inputs) ts.push_back(make_input(s, float_dtype, rng));
  return ts;
}

Inputs to_doubles(const TensorList& ts) {
  Inputs out;
  for (const Tensor& t : ts) {
    if (t.dtype() == DType::i64) {
      auto v = t.to_vector<int64_t>();
      out.emplace_back(v.begin(), v.end());
    } else {
      out.push_back(t.to(DType::f64).to_vector<double>());
    }
  }
  return out;
}

double gradcheck_error(const OpCase& c, const TensorList& inputs_in, int order, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  auto random_like = [&](const Shape& s) {
    std::vector<double> v(static_cast<size_t>(shape_numel(s)));
    for (auto& x : v) x = normal(rng);
    return Tensor::from_vector(v, s);
  };

  TensorList inputs;
  std::vector<size_t> diff;  // indices of differentiable inputs
  for (size_t i = 0; i < inputs_in.size(); ++i) {
    Tensor t = inputs_in[i].detach().clone();
    if (c.inputs[i].differentiable) {
      t.set_requires_grad(true);
      diff.push_back(i);
    }
    inputs.push_back(t);
  }
  TensorList diff_inputs;
  for (size_t i : diff) diff_inputs.push_back(inputs[i]);

  Tensor out_shape_probe;
  {
    autograd::NoGradGuard g;
    out_shape_probe = c.fn(inputs);
  }
  const Tensor r = random_like(out_shape_probe.shape());
  TensorList w;
  for (const Tensor& t : diff_inputs) w.push_back(random_like(t.shape()));

  // The scalar function whose gradient is checked, and its analytic gradient.
  std::function<double(const TensorList&)> f;
  TensorList analytic;
  if (order == 1) {
    f = [&](const TensorList& in) { return projected(c, in, r); };
    Tensor y = sum(mul(c.fn(inputs), r));
    analytic = autograd::grad({y}, diff_inputs, {}, false, /*allow_unused=*/true);
  }
  // h(x) = sum_i <d<fn(x), r>/dx_i, w_i>, the function whose gradient gradgradcheck checks.
  auto h = [&](const TensorList& in, bool create_graph, TensorList* dh) {
      TensorList din;
      for (size_t i : diff) din.push_back(in[i]);
      Tensor y = sum(mul(c.fn(in), r));
      TensorList g = autograd::grad({y}, din, {}, create_graph, /*allow_unused=*/true);
      Tensor acc;
      double value = 0;
      for (size_t i = 0; i < g.size(); ++i) {
        Tensor term = sum(mul(g[i], w[i]));
        value += term.item();
        if (create_graph && g[i].requires_grad()) acc = acc.defined() ? add(acc, term) : term;
      }
      if (dh) {
        if (acc.defined()) {
          *dh = autograd::grad({acc}, din, {}, false, /*allow_unused=*/true);
        } else {
          for (const Tensor& t : din) dh->push_back(Tensor::zeros(t.shape(), t.dtype()));
        }
      }
      return value;
    };
  if (order == 2) {
    f = [&](const TensorList& in) {
      TensorList fresh;
      for (size_t i = 0; i < in.size(); ++i) {
        Tensor t = in[i].detach();
        if (c.inputs[i].differentiable) t.set_requires_grad(true);
        fresh.push_back(t);
      }
      return h(fresh, false, nullptr);
    };
    h(inputs, true, &analytic);
  }

  double worst = 0;
  const double eps = 1e-6;
  for (size_t k = 0; k < diff.size(); ++k) {
    const size_t i = diff[k];
    const int64_t n = inputs[i].numel();
    std::vector<double> numeric(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      TensorList plus, minus;
      for (size_t m = 0; m < inputs.size(); ++m) {
        plus.push_back(m == i ? inputs[m].detach().clone() : inputs[m].detach());
        minus.push_back(m == i ? inputs[m].detach().clone() : inputs[m].detach());
      }
      plus[i].data<double>()[j] += eps;
      minus[i].data<double>()[j] -= eps;
      numeric[j] = (f(plus) - f(minus)) / (2 * eps);
    }
    const std::vector<double> a = analytic[k].detach().to_vector<double>();
    for (int64_t j = 0; j < n; ++j)
      worst = std::max(worst, std::abs(a[j] - numeric[j]) / std::max(1.0, std::abs(numeric[j])));
  }
  return worst;
}

double max_relative_error(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double scale = 1.0, err = 0.0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(got[i] - want[i]);
    if (!(d <= err)) err = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
  }
  return err / scale;
}

bool op_report() {
  static const bool on = std::getenv("DMIX_OP_REPORT") != nullptr;
  return on;
}

TensorList round_to_f32(const TensorList& inputs) {
  TensorList out;
  for (const Tensor& t : inputs) out.push_back(is_floating(t.dtype()) ? t.to(DType::f32).to(t.dtype()) : t);
  return out;
}

namespace {

// Normal values rounded to f32: the same numbers whatever precision the run computes in.
Tensor projection(const Shape& shape, std::mt19937_64& rng, DType dtype, Device device) {
  std::normal_distribution<double> normal;
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& x : v) x = static_cast<double>(static_cast<float>(normal(rng)));
  return Tensor::from_vector(v, shape).to(dtype).to(device);
}

// A result's values on the host, after noting whether it is where it should be.
std::vector<double> collect(const Tensor& t, const std::string& what, DType float_dtype, Device device,
                            RowResults& out) {
  if (t.device() != device || t.dtype() != float_dtype)
    out.misplaced.push_back(what + " is " + t.str() + ", expected " + dtype_name(float_dtype) + " on " + device.str());
  return t.detach().to(Device::cpu()).to(DType::f64).to_vector<double>();
}

}  // namespace

RowResults evaluate_row(const OpCase& c, const TensorList& inputs, DType float_dtype, Device device, int order,
                        uint64_t seed) {
  std::mt19937_64 rng(seed);
  RowResults out;
  TensorList in, diff;
  std::vector<size_t> diff_at;  // the position of each differentiable input among all inputs
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    // detach last: to() returns the tensor itself when nothing changes, and the caller's
    // inputs must not start requiring grad.
    Tensor x = (is_floating(t.dtype()) ? t.to(float_dtype) : t).to(device).detach();
    if (c.inputs[i].differentiable) {
      x.set_requires_grad(true);
      diff.push_back(x);
      diff_at.push_back(i);
    }
    in.push_back(x);
  }
  const Tensor y = c.fn(in);
  out.forward = collect(y, "the forward", float_dtype, device, out);
  if (order < 1) return out;

  const Tensor r = projection(y.shape(), rng, y.dtype(), y.device());
  TensorList g = autograd::grad({sum(mul(y, r))}, diff, {}, /*create_graph=*/order >= 2, /*allow_unused=*/true);
  for (size_t k = 0; k < diff.size(); ++k) {
    if (!g[k].defined()) g[k] = Tensor::zeros(diff[k].shape(), diff[k].dtype(), diff[k].device());
    out.grad.push_back(collect(g[k], "the gradient of input " + std::to_string(diff_at[k]), float_dtype, device, out));
  }
  if (order < 2) return out;

  Tensor inner;  // sum_k <g_k, w_k> over the gradients that still depend on the inputs
  for (size_t k = 0; k < diff.size(); ++k) {
    const Tensor w = projection(diff[k].shape(), rng, g[k].dtype(), g[k].device());
    if (!g[k].requires_grad()) continue;
    const Tensor term = sum(mul(g[k], w));
    inner = inner.defined() ? add(inner, term) : term;
  }
  TensorList g2 = inner.defined() ? autograd::grad({inner}, diff, {}, /*create_graph=*/false, /*allow_unused=*/true)
                                  : TensorList(diff.size());
  for (size_t k = 0; k < diff.size(); ++k) {
    if (!g2[k].defined()) g2[k] = Tensor::zeros(diff[k].shape(), diff[k].dtype(), diff[k].device());
    out.grad2.push_back(
        collect(g2[k], "the second-order gradient of input " + std::to_string(diff_at[k]), float_dtype, device, out));
  }
  return out;
}

}  // namespace dmix::testing
