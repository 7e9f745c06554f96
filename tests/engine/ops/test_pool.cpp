// Pooling: output sizes, divisors, gradient routing and errors (the op-table rows against
// naive loops are in rows_pool.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/ops.h"

using namespace dmix;

TEST_CASE("pool output sizes follow PyTorch's ceil_mode rule") {
  const Tensor x = Tensor::zeros({1, 1, 5, 5});
  CHECK(max_pool2d(x, Pool2dOptions{{2, 2}}).shape() == Shape{1, 1, 2, 2});
  CHECK(max_pool2d(x, Pool2dOptions{{2, 2}, {0, 0}, {0, 0}, true}).shape() == Shape{1, 1, 3, 3});
  // A 4th window would start at 5 = H, inside the right padding only: dropped.
  CHECK(avg_pool2d(x, Pool2dOptions{{2, 2}, {2, 2}, {1, 1}, true}).shape() == Shape{1, 1, 3, 3});
  CHECK(max_pool2d(Tensor::zeros({1, 1, 112, 112}), Pool2dOptions{{3, 3}, {2, 2}, {1, 1}}).shape() == Shape{1, 1, 56, 56});
}

TEST_CASE("avg_pool2d divisors match PyTorch on a ones input") {
  // Ones make every output the fraction of its divisor that lies inside the input.
  const Tensor ones = Tensor::ones({1, 1, 3, 3}, DType::f64);
  // kernel 2, stride 2, pad 1, ceil: windows [-1,1), [1,3); corner window has 1 real cell of 4.
  const auto with_pad = avg_pool2d(ones, Pool2dOptions{{2, 2}, {2, 2}, {1, 1}, true, true}).to_vector<double>();
  CHECK(with_pad == std::vector<double>{0.25, 0.5, 0.5, 1.0});
  const auto without_pad = avg_pool2d(ones, Pool2dOptions{{2, 2}, {2, 2}, {1, 1}, true, false}).to_vector<double>();
  CHECK(without_pad == std::vector<double>{1.0, 1.0, 1.0, 1.0});
  // kernel 2, stride 2, no pad, ceil on 3: the last window [2, 4) reaches past the input
  // (no padding there), so even count_include_pad divides by the 1 real cell.
  const auto past = avg_pool2d(ones, Pool2dOptions{{2, 2}, {2, 2}, {0, 0}, true, true}).to_vector<double>();
  CHECK(past == std::vector<double>{1.0, 1.0, 1.0, 1.0});
}

TEST_CASE("max_pool2d routes the gradient to the first maximum of each window only") {
  const std::vector<double> v = {1, 5, 2, 0,  //
                                 3, 4, 7, 7,  //
                                 0, 0, 1, 1,  //
                                 0, 9, 1, 1};
  Tensor x = Tensor::from_vector(v, {1, 1, 4, 4}).set_requires_grad(true);
  Tensor y = max_pool2d(x, Pool2dOptions{{2, 2}});
  CHECK(y.to_vector<double>() == std::vector<double>{5, 7, 9, 1});
  const auto g = autograd::grad({sum(y)}, {x})[0].to_vector<double>();
  CHECK(g == std::vector<double>{0, 1, 0, 0,  //
                                 0, 0, 1, 0,  //
                                 0, 0, 1, 0,  //
                                 0, 1, 0, 0});
}

TEST_CASE("pooling rejects bad shapes and options with messages naming the op") {
  const Tensor x = Tensor::zeros({2, 3, 4, 4});
  CHECK_THROWS_WITH_AS(max_pool2d(x, Pool2dOptions{{5, 5}}),
                       doctest::Contains("max_pool2d: kernel 5x5 is larger than the padded input 4x4"), Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, Pool2dOptions{{2, 2}, {2, 2}, {2, 2}}),
                       doctest::Contains("avg_pool2d: padding must be at most half the kernel"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({3, 4, 4}), Pool2dOptions{{2, 2}}), doctest::Contains("max_pool2d"), Error);
  CHECK_THROWS_AS(avg_pool2d(x, Pool2dOptions{{0, 2}}), Error);
  CHECK_THROWS_AS(avg_pool2d(x, Pool2dOptions{{2, 2}, {-1, 1}}), Error);
  CHECK_THROWS_WITH_AS(adaptive_avg_pool2d(x, 0, 2), doctest::Contains("adaptive_avg_pool2d"), Error);
  CHECK_THROWS_WITH_AS(global_avg_pool2d(Tensor::zeros({2, 3})), doctest::Contains("global_avg_pool2d"), Error);
  CHECK_THROWS_AS(max_pool2d(Tensor::zeros({1, 1, 4, 4}, DType::i64), Pool2dOptions{{2, 2}}), Error);
}

TEST_CASE("max_pool2d's backward pair is closed: the gather's backward is the scatter again") {
  // g1 = scatter(v) at the arg max; g2 = d<g1, r>/dv = gather(r); d<g2, w>/dr = scatter(w).
  std::vector<double> xs(2 * 2 * 5 * 5);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(1.7 * static_cast<double>(i));  // no ties
  const Tensor x = Tensor::from_vector(xs, {2, 2, 5, 5}).set_requires_grad(true);
  const Pool2dOptions o = Pool2dOptions{{3, 3}, {2, 2}, {1, 1}};
  const Shape out = max_pool2d(x.detach(), o).shape();
  auto filled = [](const Shape& s, double step) {
    std::vector<double> v(static_cast<size_t>(shape_numel(s)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::cos(step * static_cast<double>(i));
    return Tensor::from_vector(v, s);
  };
  const Tensor v = filled(out, 0.3).set_requires_grad(true);
  const Tensor r = filled(x.shape(), 0.7).set_requires_grad(true);
  const Tensor w = filled(out, 1.1);

  const Tensor g1 = autograd::grad({sum(mul(max_pool2d(x, o), v))}, {x}, {}, true)[0];
  const Tensor g2 = autograd::grad({sum(mul(g1, r))}, {v}, {}, true)[0];
  const Tensor g3 = autograd::grad({sum(mul(g2, w))}, {r})[0];
  const Tensor want = autograd::grad({sum(mul(max_pool2d(x, o), w))}, {x})[0];
  CHECK(g3.to_vector<double>() == want.to_vector<double>());
  CHECK(g3.grad_fn() == nullptr);
}

TEST_CASE("avg_pool2d's backward pair is closed: the adjoint's backward is avg_pool2d again") {
  const Pool2dOptions o = Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true, false};
  std::vector<double> xs(2 * 3 * 7 * 6);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.9 * static_cast<double>(i));
  const Tensor x = Tensor::from_vector(xs, {2, 3, 7, 6}).set_requires_grad(true);
  const Shape out = avg_pool2d(x.detach(), o).shape();
  const Tensor v = Tensor::ones(out, DType::f64).set_requires_grad(true);
  const Tensor g1 = autograd::grad({sum(mul(avg_pool2d(x, o), v))}, {x}, {}, true)[0];
  const Tensor r = Tensor::from_vector(xs, x.shape());
  const Tensor g2 = autograd::grad({sum(mul(g1, r))}, {v})[0];
  const auto got = g2.to_vector<double>();
  const auto want = avg_pool2d(r, o).to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-14));
}
