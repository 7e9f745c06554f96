// Data-movement ops: integer dtypes, dropout and the errors (the op-table rows against naive
// loops are in rows_shape.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/ops.h"

using namespace dmix;

namespace {

Tensor labels(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}); }

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("shape ops move i64 labels and u8 images") {
  const Tensor y = labels({3, 1, 4, 1, 5});
  CHECK(cat({y, labels({9, 2})}, 0).to_vector<int64_t>() == std::vector<int64_t>{3, 1, 4, 1, 5, 9, 2});
  CHECK(narrow(y, 0, 1, 3).to_vector<int64_t>() == std::vector<int64_t>{1, 4, 1});
  CHECK(index_select(y, 0, labels({4, 0, 0})).to_vector<int64_t>() == std::vector<int64_t>{5, 3, 3});
  CHECK(cat({labels({}), y, labels({})}, 0).to_vector<int64_t>() == y.to_vector<int64_t>());
  CHECK(index_select(y, 0, labels({})).numel() == 0);

  // Three 1x2x2 "images", gathered as a batch.
  std::vector<uint8_t> pixels(12);
  for (int i = 0; i < 12; ++i) pixels[i] = static_cast<uint8_t>(200 + i);
  const Tensor images = Tensor::from_vector(pixels, {3, 1, 2, 2});
  const Tensor batch = index_select(images, 0, labels({2, 0}));
  CHECK(batch.dtype() == DType::u8);
  CHECK(batch.to_vector<uint8_t>() == std::vector<uint8_t>{208, 209, 210, 211, 200, 201, 202, 203});
  CHECK(cat({images, batch}, 0).shape() == Shape{5, 1, 2, 2});
  CHECK(pad_channels(images, 1).to_vector<uint8_t>()[4] == 0);
}

TEST_CASE("channel_shuffle with channels/groups groups undoes channel_shuffle") {
  Generator g(3);
  const Tensor x = g.uniform({2, 12, 3, 2});
  for (int64_t groups : {1, 2, 3, 4, 6, 12}) {
    INFO("groups " << groups);
    const Tensor back = channel_shuffle(channel_shuffle(x, groups), 12 / groups);
    CHECK(back.to_vector<float>() == x.to_vector<float>());
  }
}

TEST_CASE("index_add accumulates repeated indices and index_select's gradient does too") {
  const Tensor src = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {3, 2});
  const Tensor sums = index_add(src, 0, labels({1, 1, 0}), 3);
  CHECK(sums.to_vector<double>() == std::vector<double>{5, 6, 4, 6, 0, 0});

  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3});
  x.set_requires_grad();
  sum(index_select(x, 0, labels({2, 2, 0, 2}))).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0, 3});
}

TEST_CASE("dropout zeroes at rate p, scales survivors by 1/(1-p), and is the identity in eval") {
  const double p = 0.3;
  const int64_t n = 100000;
  Generator g(5);
  const Tensor x = Tensor::ones({n}, DType::f64);
  const std::vector<double> y = dropout(x, p, true, g).to_vector<double>();
  int64_t dropped = 0;
  for (double v : y) {
    REQUIRE((v == 0.0 || std::abs(v - 1.0 / (1.0 - p)) < 1e-12));
    dropped += v == 0.0;
  }
  const double rate = static_cast<double>(dropped) / n;
  CHECK(std::abs(rate - p) < 6.0 * std::sqrt(p * (1 - p) / n));

  CHECK(dropout(x, p, false, g).same(x));
  CHECK(dropout(x, 0.0, true, g).same(x));

  // The gradient is the mask: equal to the output when x is ones.
  Tensor w = Tensor::ones({1000}, DType::f64);
  w.set_requires_grad();
  Generator h(6);
  const Tensor out = dropout(w, 0.5, true, h);
  sum(out).backward();
  CHECK(w.grad().to_vector<double>() == out.detach().to_vector<double>());

  // Same generator state, same mask.
  Generator a(8), b(8);
  CHECK(dropout(x, p, true, a).to_vector<double>() == dropout(x, p, true, b).to_vector<double>());

  CHECK_THROWS_AS(dropout(x, 1.0, true, g), Error);
  CHECK_THROWS_AS(dropout(x, -0.1, true, g), Error);
}

TEST_CASE("shape ops reject bad indices, shapes and dtypes with the op name") {
  Generator g(9);
  const Tensor x = g.uniform({4, 3});
  CHECK(error_of([&] { index_select(x, 0, labels({0, 4})); }).find("index_select") == 0);
  CHECK(error_of([&] { index_select(x, 0, labels({0, 4})); }).find("out of range") != std::string::npos);
  CHECK_THROWS_AS(index_select(x, 1, labels({-1})), Error);
  CHECK_THROWS_AS(index_select(x, 0, Tensor::from_vector<double>({0.0}, {1})), Error);
  CHECK_THROWS_AS(index_select(x, 2, labels({0})), Error);
  CHECK_THROWS_AS(index_add(x, 0, labels({0, 1, 2, 5}), 4), Error);
  CHECK_THROWS_AS(index_add(x, 0, labels({0, 1}), 4), Error);  // 2 indices for 4 rows

  const std::string mismatch = error_of([&] { cat({x, g.uniform({4, 2})}, 0); });
  CHECK(mismatch.find("cat") == 0);
  CHECK(mismatch.find("[4, 2]") != std::string::npos);
  CHECK_NOTHROW(cat({x, g.uniform({4, 2})}, 1));
  CHECK_THROWS_AS(cat({x, g.uniform({4, 3}, 0.0, 1.0, DType::f64)}, 0), Error);
  CHECK_THROWS_AS(cat({x, g.uniform({4, 3, 1})}, 0), Error);
  CHECK_THROWS_AS(cat({}, 0), Error);

  CHECK_THROWS_AS(narrow(x, 0, 3, 2), Error);
  CHECK_THROWS_AS(narrow(x, 1, -1, 1), Error);
  CHECK_NOTHROW(narrow(x, 0, 4, 0));
  CHECK_THROWS_AS(channel_shuffle(g.uniform({1, 6, 2, 2}), 4), Error);
  CHECK_THROWS_AS(pad_channels(x.reshape({12}), 1), Error);
  CHECK_THROWS_AS(pad_channels(g.uniform({1, 2, 2, 2}), -1), Error);
}
