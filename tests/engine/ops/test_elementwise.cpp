// Elementwise ops: the behaviour the op table cannot express (its rows are in
// rows_elementwise.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/ops.h"

using namespace dmix;

TEST_CASE("elementwise: broadcasting errors name the op and both shapes") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 3});
  CHECK_THROWS_WITH_AS(add(a, b), "add: shapes [2, 3] and [4, 3] do not broadcast", Error);
  CHECK_THROWS_AS(mul(a, Tensor::zeros({2, 3}, DType::f64)), Error);
  CHECK_THROWS_AS(add(a, Tensor::zeros({2, 3}, DType::i64)), Error);
}

TEST_CASE("elementwise: f32 broadcasting over a large NCHW tensor matches a naive loop") {
  // Large enough that the OpenMP paths run.
  Generator g(7);
  Tensor x = g.uniform({8, 16, 32, 32}), s = g.uniform({16, 1, 1});
  Tensor y = mul(x, s);
  auto xv = x.to_vector<float>(), sv = s.to_vector<float>(), yv = y.to_vector<float>();
  double err = 0;
  for (size_t i = 0; i < xv.size(); ++i)
    err = std::max(err, std::abs(double(yv[i]) - double(xv[i]) * double(sv[(i / 1024) % 16])));
  CHECK(err < 1e-7);  // one f32 rounding of values below 1
}

TEST_CASE("elementwise: masks are u8 and not differentiable") {
  Tensor a = Tensor::from_vector<float>({-1, 0, 2}, {3});
  Tensor m = greater_scalar(a, 0.0);
  CHECK(m.dtype() == DType::u8);
  CHECK(m.to_vector<uint8_t>() == std::vector<uint8_t>{0, 0, 1});
  CHECK(mask_to_float(m, DType::f32).to_vector<float>() == std::vector<float>{0, 0, 1});
}
