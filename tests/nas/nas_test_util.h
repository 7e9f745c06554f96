// Helpers of the nas suite: a module in f64, and gradient checks of a module's output with
// respect to its input and its parameters, against central differences.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/ops.h"
#include "nn/module.h"

namespace dmix::nas::testing {

// Every parameter and buffer converted to f64 in place (the handles the layers hold see the
// change, as with Module::to).
inline void to_f64(nn::Module& model) {
  auto convert = [](const Tensor& t) {
    if (t.dtype() != DType::f32) return;
    const Tensor d = t.detach().to(DType::f64);
    TensorImpl& impl = t.impl();
    impl.storage = d.impl().storage;
    impl.offset = d.impl().offset;
    impl.dtype = DType::f64;
  };
  for (auto& [name, t] : model.named_parameters()) convert(t);
  for (auto& [name, t] : model.named_buffers()) convert(t);
}

inline Tensor random_f64(const Shape& shape, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& e : v) e = normal(rng);
  return Tensor::from_vector(v, shape);
}

struct GradcheckErrors {
  double first = 0, second = 0;
};

// For f(x, theta) = <m(x), r> with a random r: the largest difference between autograd's
// derivatives and central differences (step 1e-6) over the elements of x and of every
// parameter (all of a tensor's up to 12, else 12 spread evenly, central differences costing
// two passes each), relative to max(1, |numeric|) as the op table measures it; first order (df)
// and second order (d<grad f, w> for a random w, autograd's double backward). The module
// must be in f64 and stays in its mode (BN in training mode uses batch statistics).
inline GradcheckErrors gradcheck_module(nn::Module& m, const Tensor& x0, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Tensor x = x0.detach().clone();
  x.set_requires_grad(true);
  TensorList inputs{x};
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  Tensor r;
  {
    autograd::NoGradGuard no_grad;
    r = random_f64(m.forward(x).shape(), rng);
  }
  TensorList w;
  for (const Tensor& t : inputs) w.push_back(random_f64(t.shape(), rng));

  auto f = [&]() { return sum(mul(m.forward(x), r)); };
  // h = sum_i <df/dinput_i, w_i>; with create_graph its value is differentiable again.
  auto h = [&](bool create_graph) {
    const TensorList g = autograd::grad({f()}, inputs, {}, create_graph, /*allow_unused=*/true);
    Tensor acc;
    for (size_t i = 0; i < g.size(); ++i) {
      if (!g[i].requires_grad() && create_graph) continue;
      const Tensor term = sum(mul(g[i], w[i]));
      acc = acc.defined() ? add(acc, term) : term;
    }
    return acc;
  };
  const TensorList first = autograd::grad({f()}, inputs, {}, false, /*allow_unused=*/true);
  const Tensor h_graph = h(true);
  TensorList second;
  if (h_graph.defined() && h_graph.requires_grad())
    second = autograd::grad({h_graph}, inputs, {}, false, /*allow_unused=*/true);

  constexpr double step = 1e-6;
  GradcheckErrors err;
  for (size_t i = 0; i < inputs.size(); ++i) {
    double* p = inputs[i].data<double>();
    const std::vector<double> a1 = first[i].to_vector<double>();
    const std::vector<double> a2 =
        second.empty() ? std::vector<double>(a1.size(), 0.0) : second[i].to_vector<double>();
    const size_t count = std::min<size_t>(a1.size(), 12);
    for (size_t c = 0; c < count; ++c) {
      const size_t k = c * a1.size() / count;
      const double saved = p[k];
      double f_plus, f_minus, h_plus, h_minus;
      p[k] = saved + step;
      {
        autograd::NoGradGuard no_grad;
        f_plus = f().item();
      }
      h_plus = h(false).item();
      p[k] = saved - step;
      {
        autograd::NoGradGuard no_grad;
        f_minus = f().item();
      }
      h_minus = h(false).item();
      p[k] = saved;
      const double n1 = (f_plus - f_minus) / (2 * step), n2 = (h_plus - h_minus) / (2 * step);
      err.first = std::max(err.first, std::abs(a1[k] - n1) / std::max(1.0, std::abs(n1)));
      err.second = std::max(err.second, std::abs(a2[k] - n2) / std::max(1.0, std::abs(n2)));
    }
  }
  return err;
}

}  // namespace dmix::nas::testing
