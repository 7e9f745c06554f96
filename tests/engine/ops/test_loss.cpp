// one_hot, soft_cross_entropy and cross_entropy: op-table rows against naive loops, and
// focused cases for label checks.
#include <doctest/doctest.h>

#include <cmath>

#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

// mean over rows of -sum_c t[n,c] * log_softmax(z)[n,c], with plain loops.
double naive_soft_ce(const std::vector<double>& z, const std::vector<double>& t, int64_t N, int64_t C) {
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    double m = -INFINITY, s = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, z[n * C + c]);
    for (int64_t c = 0; c < C; ++c) s += std::exp(z[n * C + c] - m);
    for (int64_t c = 0; c < C; ++c) total -= t[n * C + c] * (z[n * C + c] - m - std::log(s));
  }
  return total / static_cast<double>(N);
}

// Rows of raw positive values scaled to sum to one: a soft label distribution.
std::vector<double> normalise_rows(const std::vector<double>& raw, int64_t N, int64_t C) {
  std::vector<double> t(raw);
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += raw[n * C + c];
    for (int64_t c = 0; c < C; ++c) t[n * C + c] = raw[n * C + c] / s;
  }
  return t;
}

OpCase soft_ce_case(int64_t N, int64_t C, bool targets_differentiable) {
  OpCase c;
  c.name = "soft_cross_entropy (" + std::to_string(N) + ", " + std::to_string(C) + ")" +
           (targets_differentiable ? " targets differentiable" : "");
  InputSpec targets = InputSpec::constant_uniform({N, C}, 0.1, 1.0);
  targets.differentiable = targets_differentiable;
  c.inputs = {InputSpec::uniform({N, C}, -2.0, 2.0), targets};
  c.fn = [](const TensorList& in) {
    // The raw targets are made a distribution inside fn (the loss is defined for any targets).
    return soft_cross_entropy(in[0], div(in[1], sum(in[1], {1}, /*keepdim=*/true)));
  };
  c.reference = [N, C](const Inputs& in) {
    return std::vector<double>{naive_soft_ce(in[0], normalise_rows(in[1], N, C), N, C)};
  };
  return c;
}

OpCaseRegistrar reg_soft_ce(soft_ce_case(4, 5, false));
OpCaseRegistrar reg_soft_ce_odd(soft_ce_case(3, 7, true));

OpCase ce_case(int64_t N, int64_t C, double smoothing) {
  OpCase c;
  c.name = "cross_entropy (" + std::to_string(N) + ", " + std::to_string(C) + ") smoothing " + std::to_string(smoothing);
  c.inputs = {InputSpec::uniform({N, C}, -2.0, 2.0), InputSpec::integer({N}, 0, C)};
  c.fn = [smoothing](const TensorList& in) { return cross_entropy(in[0], in[1], smoothing); };
  c.reference = [N, C, smoothing](const Inputs& in) {
    std::vector<double> t(static_cast<size_t>(N * C), smoothing / static_cast<double>(C));
    for (int64_t n = 0; n < N; ++n) t[n * C + static_cast<int64_t>(in[1][n])] += 1.0 - smoothing;
    return std::vector<double>{naive_soft_ce(in[0], t, N, C)};
  };
  return c;
}

OpCaseRegistrar reg_ce(ce_case(6, 4, 0.0));
OpCaseRegistrar reg_ce_smooth(ce_case(5, 3, 0.1));

}  // namespace

TEST_CASE("one_hot places a single 1 per label") {
  const Tensor labels = Tensor::from_vector<int64_t>({2, 0, 1}, {3});
  const Tensor oh = one_hot(labels, 4);
  CHECK(oh.shape() == Shape{3, 4});
  CHECK(oh.dtype() == DType::f32);
  CHECK(oh.to_vector<float>() == std::vector<float>{0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0});
  CHECK(one_hot(labels, 3, DType::f64).to_vector<double>() == std::vector<double>{0, 0, 1, 1, 0, 0, 0, 1, 0});
}

TEST_CASE("one_hot rejects out-of-range labels and non-integer labels") {
  const Tensor labels = Tensor::from_vector<int64_t>({0, 4, 1}, {3});
  CHECK_THROWS_WITH_AS(one_hot(labels, 4), doctest::Contains("label 4 at position 1"), Error);
  CHECK_THROWS_WITH_AS(one_hot(Tensor::from_vector<int64_t>({-1}, {1}), 4), doctest::Contains("out of range [0, 4)"),
                       Error);
  CHECK_THROWS_AS(one_hot(Tensor::zeros({3}), 4), Error);
  CHECK_THROWS_AS(one_hot(labels, 0), Error);
  // cross_entropy goes through the same check.
  CHECK_THROWS_WITH_AS(cross_entropy(Tensor::zeros({3, 4}), labels), doctest::Contains("one_hot"), Error);
}

TEST_CASE("loss shape errors name both shapes") {
  CHECK_THROWS_WITH_AS(soft_cross_entropy(Tensor::zeros({3, 4}), Tensor::zeros({3, 5})),
                       doctest::Contains("[3, 5]"), Error);
  CHECK_THROWS_AS(soft_cross_entropy(Tensor::zeros({3, 4, 2}), Tensor::zeros({3, 4, 2})), Error);
  CHECK_THROWS_AS(cross_entropy(Tensor::zeros({3, 4}), Tensor::from_vector<int64_t>({0, 1}, {2})), Error);
  CHECK_THROWS_AS(cross_entropy(Tensor::zeros({3, 4}), Tensor::from_vector<int64_t>({0, 1, 2}, {3}), 1.5), Error);
}

TEST_CASE("cross_entropy equals soft_cross_entropy on one-hot targets") {
  const Tensor logits = Tensor::from_vector<double>({0.1, 2.0, -1.0, 0.5, 0.5, 3.0}, {2, 3});
  const Tensor labels = Tensor::from_vector<int64_t>({1, 2}, {2});
  const double ce = cross_entropy(logits, labels).item();
  CHECK(ce == doctest::Approx(soft_cross_entropy(logits, one_hot(labels, 3, DType::f64)).item()).epsilon(1e-14));
  // Uniform logits: the loss is log(C) whatever the labels and smoothing.
  CHECK(cross_entropy(Tensor::zeros({4, 5}), Tensor::from_vector<int64_t>({0, 1, 2, 4}, {4}), 0.3).item() ==
        doctest::Approx(std::log(5.0)));
}
