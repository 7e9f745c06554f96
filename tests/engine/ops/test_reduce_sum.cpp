// sum, mean, expand and sum_to: shape behaviour (the op-table rows are in rows_reduce_sum.cpp).
#include <doctest/doctest.h>

#include "engine/ops.h"

using namespace dmix;

TEST_CASE("sum: a general (non-coalescable) pattern matches the naive loop") {
  Generator g(3);
  Tensor x = g.uniform({3, 4, 5, 6}, -1, 1, DType::f64);
  Tensor s = sum(x, {0, 2}, true);  // pattern R K R K
  auto xv = x.to_vector<double>(), sv = s.to_vector<double>();
  std::vector<double> want(24, 0.0);
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 4; ++b)
      for (int c = 0; c < 5; ++c)
        for (int d = 0; d < 6; ++d) want[b * 6 + d] += xv[((a * 4 + b) * 5 + c) * 6 + d];
  CHECK(s.shape() == Shape{1, 4, 1, 6});
  for (int i = 0; i < 24; ++i) CHECK(sv[i] == doctest::Approx(want[i]).epsilon(1e-12));
}

TEST_CASE("sum: bad dims are reported") {
  Tensor x = Tensor::zeros({2, 3});
  CHECK_THROWS_AS(sum(x, {2}), Error);
  CHECK_THROWS_AS(sum(x, {0, -2}), Error);
  CHECK_THROWS_AS(expand(x, {3, 3}), Error);
}
