// one_hot, soft_cross_entropy and cross_entropy: label checks and identities (the op-table
// rows against naive loops are in rows_loss.cpp).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/ops.h"

using namespace dmix;

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
