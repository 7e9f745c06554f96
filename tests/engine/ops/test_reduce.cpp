// var, max, argmax, softmax and log_softmax: indices, ties and errors (the op-table rows
// against naive loops are in rows_reduce.cpp).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/ops.h"

using namespace dmix;

TEST_CASE("max returns the values and first indices; argmax agrees") {
  const Tensor a = Tensor::from_vector<double>({1, 5, 5, 2, 9, 3, 9, 0, -1, -3, -2, -1}, {2, 2, 3});
  MaxResult r = max(a, 2);
  CHECK(r.values.shape() == Shape{2, 2});
  CHECK(r.values.to_vector<double>() == std::vector<double>{5, 9, 9, -1});
  CHECK(r.indices.dtype() == DType::i64);
  CHECK(r.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0, 2});
  CHECK(argmax(a, -1).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0, 2});
  MaxResult r0 = max(a, 0, /*keepdim=*/true);
  CHECK(r0.values.shape() == Shape{1, 2, 3});
  CHECK(r0.values.to_vector<double>() == std::vector<double>{9, 5, 5, 2, 9, 3});
  CHECK(r0.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0, 0, 0, 0});
  CHECK(argmax(a, 1, true).shape() == Shape{2, 1, 3});
  CHECK(argmax(a, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0, 0, 0, 0});
}

TEST_CASE("argmax on ties picks the first index, and max's gradient goes there only") {
  const Tensor a = Tensor::from_vector<double>({0, 3, 1, 3, 3, 2, 2, 2}, {2, 4});
  CHECK(argmax(a, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  const Tensor b = Tensor::from_vector<double>({7, 7, 7, 1, 7, 0}, {3, 2});
  CHECK(argmax(b, 0).to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  Tensor x = a.clone().set_requires_grad(true);
  sum(max(x, 1).values).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0, 1, 0, 0, 0});
}

TEST_CASE("max values are differentiable twice (the mask is constant)") {
  Tensor x = Tensor::from_vector<double>({0.5, -1, 2, 0.25}, {2, 2}).set_requires_grad(true);
  Tensor y = sum(mul(max(x, 0).values, max(x, 0).values));
  TensorList g = autograd::grad({y}, {x}, {}, /*create_graph=*/true);
  CHECK(g[0].to_vector<double>() == std::vector<double>{0, 0, 4, 0.5});
  TensorList h = autograd::grad({sum(g[0])}, {x});
  CHECK(h[0].to_vector<double>() == std::vector<double>{0, 0, 2, 2});
}

TEST_CASE("reductions along a dim reject bad dims and dtypes") {
  const Tensor a = Tensor::zeros({2, 3});
  CHECK_THROWS_AS(max(a, 2), Error);
  CHECK_THROWS_AS(argmax(a, -3), Error);
  CHECK_THROWS_AS(softmax(a, 5), Error);
  CHECK_THROWS_AS(log_softmax(Tensor::zeros({2, 3}, DType::i64), 1), Error);
  CHECK_THROWS_AS(max(Tensor::zeros({2, 0}), 1), Error);
  CHECK_THROWS_WITH_AS(var(a, {0, 0}), doctest::Contains("twice"), Error);
}

TEST_CASE("var of a single element is NaN when unbiased, 0 when biased") {
  const Tensor a = Tensor::from_vector<double>({3.0, 4.0}, {2, 1});
  CHECK(std::isnan(var(a, {1}).to_vector<double>()[0]));
  CHECK(var(a, {1}, /*unbiased=*/false).to_vector<double>()[0] == 0.0);
  CHECK(var(a).item() == doctest::Approx(0.5));
}

TEST_CASE("softmax and log_softmax survive huge logits") {
  const Tensor a = Tensor::from_vector<float>({1000.f, 0.f, -1000.f, 500.f}, {2, 2});
  const auto s = softmax(a, 1).to_vector<float>();
  CHECK(s[0] == doctest::Approx(1.0));
  CHECK(s[1] == 0.0f);
  const auto l = log_softmax(a, 1).to_vector<float>();
  CHECK(l[0] == doctest::Approx(0.0));
  CHECK(l[1] == doctest::Approx(-1000.0));
  CHECK(l[2] == doctest::Approx(-1500.0));
}
