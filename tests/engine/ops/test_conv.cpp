// conv2d, conv2d_backward_input and conv2d_backward_weight: errors, shapes and higher-order
// derivatives (the op-table rows against a naive convolution are in rows_conv.cpp).
#include <doctest/doctest.h>

#include <array>
#include <cmath>

#include "engine/ops.h"
#include "tests/engine/ops/conv_options.h"

using namespace dmix;
using dmix::testing::conv_options;

namespace {

Tensor randn(const Shape& s, uint64_t seed) {
  std::vector<double> v(static_cast<size_t>(shape_numel(s)));
  uint64_t state = seed;
  for (auto& e : v) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    e = static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53) - 0.5;
  }
  return Tensor::from_vector(v, s);
}

}  // namespace

TEST_CASE("conv2d rejects bad shapes with messages naming the op and shapes") {
  const Tensor x = Tensor::zeros({2, 4, 5, 5});
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({6, 2, 3, 3}), Tensor(), conv_options({1, 1}, {0, 0}, {1, 1}, 3)),
                       doctest::Contains("conv2d: input channels 4 (input [2, 4, 5, 5]) are not divisible by groups 3"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({3, 2, 3, 3}), Tensor(), conv_options({1, 1}, {0, 0}, {1, 1}, 2)),
                       doctest::Contains("output channels 3"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({6, 3, 3, 3})), doctest::Contains("weight [6, 3, 3, 3] expects 3"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({6, 4, 7, 3})),
                       doctest::Contains("kernel 7x3 (dilated 7x3) is larger than the padded input 5x5"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({6, 4, 3, 3}), Tensor(), conv_options({1, 1}, {0, 0}, {3, 3})),
                       doctest::Contains("dilated 7x7"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({6, 4, 3, 3}), Tensor::zeros({5})),
                       doctest::Contains("bias must have shape [6]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(Tensor::zeros({4, 5, 5}), Tensor::zeros({6, 4, 3, 3})),
                       doctest::Contains("input must be 4-D"), Error);
  CHECK_THROWS_AS(conv2d(x, Tensor::zeros({6, 4, 3, 3}, DType::f64)), Error);
  CHECK_THROWS_AS(conv2d(x, Tensor::zeros({6, 4, 3, 3}), Tensor(), conv_options({0, 1}, {0, 0})), Error);
  CHECK_THROWS_AS(conv2d(x, Tensor::zeros({6, 4, 3, 3}), Tensor(), conv_options({1, 1}, {-1, 0})), Error);
}

TEST_CASE("conv2d adjoints reject a grad_out that does not match the forward output") {
  const Conv2dOptions opt = conv_options({2, 2}, {1, 1});
  const Tensor w = Tensor::zeros({4, 3, 3, 3});
  CHECK_THROWS_WITH_AS(conv2d_backward_input(Tensor::zeros({2, 4, 4, 4}), w, {2, 3, 6, 6}, opt),
                       doctest::Contains("conv2d_backward_input: grad_out [2, 4, 4, 4] does not match the output "
                                         "shape [2, 4, 3, 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d_backward_weight(Tensor::zeros({2, 5, 3, 3}), Tensor::zeros({2, 3, 6, 6}),
                                              {4, 3, 3, 3}, opt),
                       doctest::Contains("conv2d_backward_weight: grad_out [2, 5, 3, 3]"), Error);
}

TEST_CASE("conv2d's input size is recovered exactly by backward_input when the stride hides it") {
  // Inputs of height 5 and 6 both give 3 output rows at stride 2; the adjoint needs the shape.
  const Conv2dOptions opt = conv_options({2, 2}, {1, 1});
  for (int64_t h : {5, 6}) {
    Tensor x = randn({1, 2, h, h}, 1).set_requires_grad(true);
    Tensor w = randn({3, 2, 3, 3}, 2);
    Tensor y = conv2d(x, w, Tensor(), opt);
    CHECK(y.shape() == Shape{1, 3, 3, 3});
    const Tensor gx = autograd::grad({sum(y)}, {x})[0];
    CHECK(gx.shape() == x.shape());
  }
}

TEST_CASE("conv2d third-order derivatives exist (each adjoint's backward is differentiable)") {
  // d^3/dx dw dw of a bilinear-in-(x,w) objective composed with a square is finite and
  // defined: the graph goes conv2d -> backward_weight -> backward_input -> conv2d.
  Tensor x = randn({2, 2, 5, 5}, 3).set_requires_grad(true);
  Tensor w = randn({3, 2, 3, 3}, 4).set_requires_grad(true);
  const Conv2dOptions opt = conv_options({1, 1}, {1, 1});
  Tensor y = conv2d(x, w, Tensor(), opt);
  Tensor loss = sum(mul(y, y));
  Tensor gw = autograd::grad({loss}, {w}, {}, true)[0];
  Tensor gx = autograd::grad({sum(mul(gw, gw))}, {x}, {}, true)[0];
  Tensor gw2 = autograd::grad({sum(gx)}, {w})[0];
  CHECK(gw2.shape() == w.shape());
  double total = 0;
  for (double v : gw2.to_vector<double>()) total += std::abs(v);
  CHECK(total > 0);
}
