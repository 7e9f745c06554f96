// batch_norm: running statistics, higher-order derivatives and shape errors (the op-table
// rows against naive loops are in rows_norm.cpp).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/ops.h"

using namespace dmix;

TEST_CASE("batch_norm training updates the running statistics as PyTorch does") {
  // Channel 0 holds 1, 3, 5, 7: mean 4, biased var 5, unbiased 20/3.
  // Channel 1 holds 0, 0, 2, 2: mean 1, biased var 1, unbiased 4/3.
  const Tensor x = Tensor::from_vector<double>({1, 3, 0, 0, 5, 7, 2, 2}, {2, 2, 1, 2});
  Tensor rm = Tensor::from_vector<double>({0.5, -1.0}, {2});
  Tensor rv = Tensor::from_vector<double>({2.0, 1.0}, {2});
  const Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, /*training=*/true, /*momentum=*/0.1, /*eps=*/1e-5);
  const auto m = rm.to_vector<double>(), v = rv.to_vector<double>();
  CHECK(m[0] == doctest::Approx(0.9 * 0.5 + 0.1 * 4.0).epsilon(1e-14));
  CHECK(m[1] == doctest::Approx(0.9 * -1.0 + 0.1 * 1.0).epsilon(1e-14));
  CHECK(v[0] == doctest::Approx(0.9 * 2.0 + 0.1 * 20.0 / 3.0).epsilon(1e-14));
  CHECK(v[1] == doctest::Approx(0.9 * 1.0 + 0.1 * 4.0 / 3.0).epsilon(1e-14));
  // The output uses the biased batch variance.
  CHECK(y.to_vector<double>()[0] == doctest::Approx(-3.0 / std::sqrt(5.0 + 1e-5)).epsilon(1e-12));

  // A second step keeps blending (momentum 0.5 this time).
  batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.5, 1e-5);
  CHECK(rm.to_vector<double>()[0] == doctest::Approx(0.5 * (0.9 * 0.5 + 0.4) + 0.5 * 4.0).epsilon(1e-14));

  // Eval mode reads the running statistics and leaves them alone.
  const auto before = rm.to_vector<double>();
  const Tensor w = Tensor::from_vector<double>({2.0, 1.0}, {2}), b = Tensor::from_vector<double>({0.5, 0.0}, {2});
  const Tensor ye = batch_norm(x, w, b, rm, rv, /*training=*/false, 0.1, 1e-5);
  CHECK(rm.to_vector<double>() == before);
  const double expect = (1.0 - before[0]) / std::sqrt(rv.to_vector<double>()[0] + 1e-5) * 2.0 + 0.5;
  CHECK(ye.to_vector<double>()[0] == doctest::Approx(expect).epsilon(1e-12));
}

TEST_CASE("batch_norm running statistics never enter the graph") {
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2}).set_requires_grad(true);
  Tensor rm = Tensor::zeros({2}), rv = Tensor::ones({2});
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true);
  CHECK(!rm.requires_grad());
  sum(mul(y, y)).backward();
  CHECK(x.grad().defined());
}

TEST_CASE("batch_norm training gradients are exact to third order") {
  // d/dx <grad_x <grad_x <bn(x), r>, u>, v> against central differences of the second-order
  // quantity: checks that the double backward is itself differentiable.
  const Shape s = {3, 2, 2};
  const Tensor x0 = Tensor::from_vector<double>({0.3, -1.2, 0.8, 0.1, 1.5, -0.4, -0.9, 0.6, 0.2, 1.1, -0.7, 0.4}, s);
  const Tensor r = Tensor::from_vector<double>({1.0, -0.5, 0.3, 0.7, -1.1, 0.2, 0.4, 0.9, -0.3, 0.5, 0.8, -0.6}, s);
  const Tensor u = Tensor::from_vector<double>({0.2, 0.4, -0.6, 1.0, 0.3, -0.2, 0.5, -0.8, 0.9, 0.1, -0.4, 0.7}, s);
  const Tensor w = Tensor::from_vector<double>({1.3, 0.7}, {2});
  // q(x) = <grad_x <grad_x <bn(x), r>, u>, v> for a fixed v, and its gradient in x.
  const Tensor v = Tensor::from_vector<double>({-0.5, 0.6, 0.1, 0.3, -0.9, 0.8, 0.2, -0.1, 0.4, 0.7, -0.3, 0.5}, s);
  auto second = [&](const Tensor& x, bool create_graph) {
    Tensor y = sum(mul(batch_norm(x, w, Tensor(), Tensor(), Tensor(), true), r));
    Tensor g1 = autograd::grad({y}, {x}, {}, /*create_graph=*/true)[0];
    Tensor g2 = autograd::grad({sum(mul(g1, u))}, {x}, {}, create_graph)[0];
    return sum(mul(g2, v));
  };
  Tensor x = x0.clone().set_requires_grad(true);
  const Tensor q = second(x, /*create_graph=*/true);
  REQUIRE(q.requires_grad());
  const std::vector<double> analytic = autograd::grad({q}, {x})[0].to_vector<double>();
  const double h = 1e-5;
  for (int64_t i = 0; i < x0.numel(); ++i) {
    Tensor xp = x0.clone(), xm = x0.clone();
    xp.data<double>()[i] += h;
    xm.data<double>()[i] -= h;
    xp.set_requires_grad(true);
    xm.set_requires_grad(true);
    const double numeric = (second(xp, false).item() - second(xm, false).item()) / (2 * h);
    CHECK(analytic[i] == doctest::Approx(numeric).epsilon(1e-6).scale(1.0));
  }
}

TEST_CASE("batch_norm rejects bad shapes with clear messages") {
  const Tensor x = Tensor::zeros({4, 3, 2, 2});
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor::ones({4}), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("weight f32[4]"), Error);
  CHECK_THROWS_AS(batch_norm(x, Tensor(), Tensor::ones({3, 1}), Tensor(), Tensor(), true), Error);
  CHECK_THROWS_AS(batch_norm(x, Tensor(), Tensor(), Tensor::zeros({2}), Tensor(), true), Error);
  CHECK_THROWS_AS(batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3}, DType::f64), Tensor(), true), Error);
  CHECK_THROWS_AS(batch_norm(Tensor::zeros({5}), Tensor(), Tensor(), Tensor(), Tensor(), true), Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), /*training=*/false),
                       doctest::Contains("running_mean"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(Tensor::zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("more than one value per channel"), Error);
}
