// batch_norm: op-table rows (training with and without affine, eval) against naive
// loops, running statistics, higher-order derivatives and shape errors.
#include <doctest/doctest.h>

#include <cmath>

#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

constexpr double kEps = 1e-5;

// x (N, C, S...) flattened; per channel mean/var either from the batch or given.
std::vector<double> naive_batch_norm(const std::vector<double>& x, const Shape& s, const std::vector<double>* w,
                                     const std::vector<double>* b, const std::vector<double>* rm,
                                     const std::vector<double>* rv) {
  const int64_t N = s[0], C = s[1];
  int64_t S = 1;
  for (size_t d = 2; d < s.size(); ++d) S *= s[d];
  std::vector<double> y(x.size());
  for (int64_t c = 0; c < C; ++c) {
    double mean = 0, var = 0;
    if (rm) {
      mean = (*rm)[c];
      var = (*rv)[c];
    } else {
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < S; ++k) mean += x[(n * C + c) * S + k];
      mean /= static_cast<double>(N * S);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < S; ++k) var += std::pow(x[(n * C + c) * S + k] - mean, 2);
      var /= static_cast<double>(N * S);
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < S; ++k) {
        const size_t i = static_cast<size_t>((n * C + c) * S + k);
        y[i] = (x[i] - mean) / std::sqrt(var + kEps);
        if (w) y[i] = y[i] * (*w)[c] + (*b)[c];
      }
  }
  return y;
}

OpCase bn_train_case(const Shape& s, bool affine, bool with_running) {
  OpCase c;
  c.name = std::string("batch_norm train") + (affine ? " affine" : "") + (with_running ? " with running stats" : "") +
           " " + shape_str(s);
  c.inputs = {InputSpec::uniform(s, -2.0, 2.0)};
  if (affine) {
    c.inputs.push_back(InputSpec::uniform({s[1]}, 0.5, 1.5));
    c.inputs.push_back(InputSpec::uniform({s[1]}));
  }
  c.fn = [affine, with_running, C = s[1]](const TensorList& in) {
    Tensor rm, rv;
    if (with_running) {
      rm = Tensor::zeros({C}, in[0].dtype());
      rv = Tensor::ones({C}, in[0].dtype());
    }
    return batch_norm(in[0], affine ? in[1] : Tensor(), affine ? in[2] : Tensor(), rm, rv, /*training=*/true, 0.1,
                      kEps);
  };
  c.reference = [s, affine](const Inputs& in) {
    return naive_batch_norm(in[0], s, affine ? &in[1] : nullptr, affine ? &in[2] : nullptr, nullptr, nullptr);
  };
  return c;
}

OpCase bn_eval_case(const Shape& s, bool affine) {
  OpCase c;
  c.name = std::string("batch_norm eval") + (affine ? " affine " : " ") + shape_str(s);
  const int64_t C = s[1];
  c.inputs = {InputSpec::uniform(s, -2.0, 2.0), InputSpec::constant_uniform({C}, -0.5, 0.5),
              InputSpec::constant_uniform({C}, 0.5, 2.0)};
  if (affine) {
    c.inputs.push_back(InputSpec::uniform({C}, 0.5, 1.5));
    c.inputs.push_back(InputSpec::uniform({C}));
  }
  c.fn = [affine](const TensorList& in) {
    return batch_norm(in[0], affine ? in[3] : Tensor(), affine ? in[4] : Tensor(), in[1], in[2], /*training=*/false,
                      0.1, kEps);
  };
  c.reference = [s, affine](const Inputs& in) {
    return naive_batch_norm(in[0], s, affine ? &in[3] : nullptr, affine ? &in[4] : nullptr, &in[1], &in[2]);
  };
  return c;
}

OpCaseRegistrar reg_bn_train_affine(bn_train_case({3, 2, 2, 3}, true, false));
OpCaseRegistrar reg_bn_train_plain(bn_train_case({2, 3, 3, 1}, false, true));
OpCaseRegistrar reg_bn_train_2d(bn_train_case({5, 3}, true, true));
// A scale after the norm makes the gradient reaching batch_norm depend on an input, so
// gradgradcheck also differentiates batch_norm_backward with respect to its incoming g.
OpCaseRegistrar reg_bn_train_scaled([] {
  const Shape s = {4, 2, 3};
  OpCase c;
  c.name = "batch_norm train then per-element scale " + shape_str(s);
  c.inputs = {InputSpec::uniform(s, -2.0, 2.0), InputSpec::uniform(s, 0.5, 1.5), InputSpec::uniform({2}, 0.5, 1.5)};
  c.fn = [](const TensorList& in) {
    return mul(batch_norm(in[0], in[2], Tensor(), Tensor(), Tensor(), true, 0.1, kEps), in[1]);
  };
  c.reference = [s](const Inputs& in) {
    const std::vector<double> zeros(2, 0.0);
    auto y = naive_batch_norm(in[0], s, &in[2], &zeros, nullptr, nullptr);
    for (size_t i = 0; i < y.size(); ++i) y[i] *= in[1][i];
    return y;
  };
  return c;
}());
OpCaseRegistrar reg_bn_eval_affine(bn_eval_case({2, 3, 2, 2}, true));
OpCaseRegistrar reg_bn_eval_2d(bn_eval_case({4, 3}, false));

}  // namespace

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
