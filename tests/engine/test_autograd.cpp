// The tape: accumulation into leaves, grad() without side effects, exact higher-order
// derivatives, and the errors a user hits when asking for something impossible.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/ops.h"

using namespace dmix;
using autograd::grad;

namespace {
Tensor vec(const std::vector<double>& v) { return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}); }
}  // namespace

TEST_CASE("autograd: backward accumulates into leaves across calls") {
  Tensor x = vec({1, 2, 3}).set_requires_grad();
  Tensor y = sum(mul(x, x));  // dy/dx = 2x
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 4, 6});
  sum(mul_scalar(x, 3.0)).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{5, 7, 9});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("autograd: a value used twice (diamond) gets both contributions") {
  Tensor x = vec({0.5, -1.0}).set_requires_grad();
  Tensor a = exp(x);
  Tensor y = sum(add(mul(a, a), a));  // e^{2x} + e^x -> 2e^{2x} + e^x
  y.backward();
  auto g = x.grad().to_vector<double>();
  CHECK(g[0] == doctest::Approx(2 * std::exp(1.0) + std::exp(0.5)));
  CHECK(g[1] == doctest::Approx(2 * std::exp(-2.0) + std::exp(-1.0)));
}

TEST_CASE("autograd: NoGradGuard records nothing") {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor y;
  {
    autograd::NoGradGuard guard;
    y = mul(x, x);
  }
  CHECK_FALSE(y.requires_grad());
  CHECK(autograd::grad_mode_enabled());
  CHECK_THROWS_AS(sum(y).backward(), Error);
}

TEST_CASE("autograd: grad() returns gradients without touching .grad") {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor h = mul(x, x);                      // non-leaf input
  Tensor y = sum(mul(h, x));                 // x^3
  TensorList g = grad({y}, {x, h});
  CHECK(g[0].to_vector<double>() == std::vector<double>{3, 12});  // total derivative of x^3
  CHECK(g[1].to_vector<double>() == std::vector<double>{1, 2});   // dy/dh = x
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(g[0].requires_grad());
}

TEST_CASE("autograd: unused inputs are an error unless allowed") {
  Tensor x = vec({1}).set_requires_grad(), z = vec({2}).set_requires_grad();
  Tensor y = sum(mul(x, x));
  CHECK_THROWS_AS(grad({y}, {z}), Error);
  TensorList g = grad({y}, {z}, {}, false, /*allow_unused=*/true);
  CHECK(g[0].to_vector<double>() == std::vector<double>{0});
}

TEST_CASE("autograd: third derivative of x^4 through create_graph") {
  Tensor x = vec({1.5}).set_requires_grad();
  Tensor y = sum(pow(x, 4.0));
  Tensor g1 = grad({y}, {x}, {}, true)[0];          // 4x^3
  Tensor g2 = grad({sum(g1)}, {x}, {}, true)[0];    // 12x^2
  Tensor g3 = grad({sum(g2)}, {x}, {}, false)[0];   // 24x
  CHECK(g1.item() == doctest::Approx(4 * 1.5 * 1.5 * 1.5));
  CHECK(g2.item() == doctest::Approx(12 * 1.5 * 1.5));
  CHECK(g3.item() == doctest::Approx(24 * 1.5));
}

TEST_CASE("autograd: second derivative through ops that reuse their output (exp, tanh, sigmoid)") {
  const double v = 0.3;
  Tensor x = vec({v}).set_requires_grad();
  auto second = [&](const Tensor& y) {
    Tensor g = grad({sum(y)}, {x}, {}, true)[0];
    return grad({sum(g)}, {x})[0].item();
  };
  CHECK(second(exp(x)) == doctest::Approx(std::exp(v)));
  const double t = std::tanh(v);
  CHECK(second(tanh(x)) == doctest::Approx(-2 * t * (1 - t * t)));
  const double s = 1 / (1 + std::exp(-v));
  CHECK(second(sigmoid(x)) == doctest::Approx(s * (1 - s) * (1 - 2 * s)));
}

TEST_CASE("autograd: hvp of a quadratic form is the matrix times v") {
  // f(x) = 0.5 * sum(a * x^2) + sum(x0 * x1 products through b): H = diag(a) + ...
  Tensor a = vec({1, 2, 3});
  Tensor x = vec({0.1, -0.2, 0.3}).set_requires_grad();
  Tensor v = vec({1, 1, -1});
  auto loss = [&] { return sum(mul_scalar(mul(a, mul(x, x)), 0.5)); };
  TensorList hv = autograd::hvp(loss, {x}, {v});
  CHECK(hv[0].to_vector<double>() == std::vector<double>{1, 2, -3});
}

TEST_CASE("autograd: in-place updates of tensors that require grad are refused") {
  Tensor x = vec({1, 2}).set_requires_grad();
  CHECK_THROWS_AS(x.add_(vec({1, 1})), Error);
  autograd::NoGradGuard guard;
  x.add_(vec({1, 1}), 2.0);
  CHECK(x.to_vector<double>() == std::vector<double>{3, 4});
}

TEST_CASE("autograd: backward of a non-scalar needs a gradient of matching shape") {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor y = mul(x, x);
  CHECK_THROWS_AS(y.backward(), Error);
  CHECK_THROWS_AS(y.backward(vec({1, 2, 3})), Error);
  y.backward(vec({1, 0.5}));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 2});
}
