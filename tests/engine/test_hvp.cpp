// Hessian-vector products through convolution and batch norm: hvp() against central
// differences of the gradient, (g(p + e v) - g(p - e v)) / 2e, in f64.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/ops.h"

using namespace dmix;

namespace {

struct TinyConvNet {
  // conv 3x3 (2->3) -> batch norm (train) -> tanh -> conv 3x3 stride 2 (3->4) -> global pool -> linear 4->3
  TensorList params;
  Tensor x, targets;

  TinyConvNet() {
    Generator g(11);
    x = g.normal({4, 2, 6, 6}, 0, 1, DType::f64);
    targets = softmax(g.normal({4, 3}, 0, 1, DType::f64), 1);
    params = {g.normal({3, 2, 3, 3}, 0, 0.4, DType::f64), g.uniform({3}, 0.5, 1.5, DType::f64),
              g.normal({3}, 0, 0.1, DType::f64), g.normal({4, 3, 3, 3}, 0, 0.3, DType::f64),
              g.normal({3, 4}, 0, 0.5, DType::f64), g.normal({3}, 0, 0.1, DType::f64)};
    for (Tensor& p : params) p.set_requires_grad();
  }

  Tensor loss(const TensorList& p) const {
    Conv2dOptions same;
    same.padding = {1, 1};
    Conv2dOptions down;
    down.padding = {1, 1};
    down.stride = {2, 2};
    Tensor h = conv2d(x, p[0], Tensor(), same);
    h = batch_norm(h, p[1], p[2], Tensor(), Tensor(), /*training=*/true);
    h = tanh(h);
    h = conv2d(h, p[3], Tensor(), down);
    h = global_avg_pool2d(h);
    return soft_cross_entropy(linear(h, p[4], p[5]), targets);
  }
};

TensorList gradient_at(const TinyConvNet& net, const TensorList& p) {
  TensorList leaves;
  for (const Tensor& t : p) leaves.push_back(t.detach().clone().set_requires_grad());
  return autograd::grad({net.loss(leaves)}, leaves);
}

}  // namespace

TEST_CASE("hvp: conv + batch norm network matches central differences of the gradient") {
  TinyConvNet net;
  Generator g(12);
  TensorList v;
  for (const Tensor& p : net.params) v.push_back(g.normal(p.shape(), 0, 1, DType::f64));

  TensorList hv = autograd::hvp([&] { return net.loss(net.params); }, net.params, v);

  const double eps = 1e-5;
  TensorList plus, minus;
  {
    autograd::NoGradGuard no_grad;
    for (size_t i = 0; i < v.size(); ++i) {
      plus.push_back(add(net.params[i].detach(), mul_scalar(v[i], eps)));
      minus.push_back(add(net.params[i].detach(), mul_scalar(v[i], -eps)));
    }
  }
  TensorList gp = gradient_at(net, plus), gm = gradient_at(net, minus);
  double worst = 0, scale = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    auto a = hv[i].to_vector<double>(), p = gp[i].to_vector<double>(), m = gm[i].to_vector<double>();
    for (size_t j = 0; j < a.size(); ++j) {
      const double numeric = (p[j] - m[j]) / (2 * eps);
      worst = std::max(worst, std::abs(a[j] - numeric));
      scale = std::max(scale, std::abs(numeric));
    }
  }
  CHECK(scale > 1e-3);              // the curvature is not trivially zero
  CHECK(worst < 1e-6 * std::max(1.0, scale));
}

TEST_CASE("hvp: is linear in v") {
  TinyConvNet net;
  Generator g(13);
  TensorList v, w, vw;
  for (const Tensor& p : net.params) {
    v.push_back(g.normal(p.shape(), 0, 1, DType::f64));
    w.push_back(g.normal(p.shape(), 0, 1, DType::f64));
    vw.push_back(add(mul_scalar(v.back(), 2.0), w.back()));
  }
  auto loss = [&] { return net.loss(net.params); };
  TensorList hv = autograd::hvp(loss, net.params, v), hw = autograd::hvp(loss, net.params, w),
             hvw = autograd::hvp(loss, net.params, vw);
  for (size_t i = 0; i < v.size(); ++i) {
    auto a = hvw[i].to_vector<double>(), b = hv[i].to_vector<double>(), c = hw[i].to_vector<double>();
    for (size_t j = 0; j < a.size(); ++j) CHECK(a[j] == doctest::Approx(2 * b[j] + c[j]).epsilon(1e-9));
  }
}
