// matmul, linear and transpose: what the op table (rows_linalg.cpp) cannot express: shape
// errors, both GEMM backends giving the same products and gradients, and products large
// enough for the threaded kernels.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "engine/ops.h"
#include "engine/rng.h"
#include "kernels/cpu/gemm.h"
#include "tests/engine/ops/linalg_reference.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

struct BackendGuard {
  kernels::cpu::GemmBackend saved = kernels::cpu::gemm_backend();
  ~BackendGuard() { kernels::cpu::set_gemm_backend(saved); }
};

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to(DType::f64).to_vector<double>(), vb = b.to(DType::f64).to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("matmul: mismatched inner sizes name both shapes") {
  const Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  const std::string msg = message_of([&] { matmul(a, b); });
  CHECK(msg.find("matmul") != std::string::npos);
  CHECK(msg.find("[2, 3]") != std::string::npos);
  CHECK(msg.find("[4, 5]") != std::string::npos);
}

TEST_CASE("matmul and transpose: wrong ranks and dtypes are errors") {
  CHECK_THROWS_AS(matmul(Tensor::zeros({3}), Tensor::zeros({3, 2})), Error);
  CHECK_THROWS_AS(matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({4, 2})), Error);
  CHECK_THROWS_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}, DType::f64)), Error);
  CHECK_THROWS_AS(matmul(Tensor::zeros({2, 3}, DType::i64), Tensor::zeros({3, 2}, DType::i64)), Error);
  CHECK_THROWS_AS(matmul(Tensor(), Tensor::zeros({3, 2})), Error);
  CHECK_THROWS_AS(transpose(Tensor::zeros({2, 3, 4})), Error);
  const std::string msg = message_of([] { matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({4, 2})); });
  CHECK(msg.find("[2, 3, 4]") != std::string::npos);
  CHECK(msg.find("[4, 2]") != std::string::npos);
}

TEST_CASE("linear: mismatched weight and bias shapes name both shapes") {
  const Tensor x = Tensor::zeros({4, 6});
  std::string msg = message_of([&] { linear(x, Tensor::zeros({3, 5})); });
  CHECK(msg.find("linear") != std::string::npos);
  CHECK(msg.find("[4, 6]") != std::string::npos);
  CHECK(msg.find("[3, 5]") != std::string::npos);

  msg = message_of([&] { linear(x, Tensor::zeros({3, 6}), Tensor::zeros({4})); });
  CHECK(msg.find("[4]") != std::string::npos);
  CHECK(msg.find("[3, 6]") != std::string::npos);

  CHECK_THROWS_AS(linear(x, Tensor::zeros({6})), Error);
  CHECK_THROWS_AS(linear(x, Tensor::zeros({3, 6}), Tensor::zeros({3, 1})), Error);
  CHECK_THROWS_AS(linear(x, Tensor::zeros({3, 6}, DType::f64)), Error);
}

TEST_CASE("matmul: empty operands give empty or zero products") {
  CHECK(matmul(Tensor::zeros({0, 3}), Tensor::zeros({3, 4})).shape() == Shape{0, 4});
  const Tensor z = matmul(Tensor::ones({2, 0}), Tensor::ones({0, 3}));
  CHECK(z.shape() == Shape{2, 3});
  for (float v : z.to_vector<float>()) CHECK(v == 0.0f);
}

TEST_CASE("matmul and linear: both GEMM backends give the same products and gradients") {
  BackendGuard guard;
  Generator gen(11);
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    // Big enough for the threaded paths of both kernels, with odd edges.
    const Tensor a = gen.uniform({67, 130}, -1, 1, dt), b = gen.uniform({130, 45}, -1, 1, dt);
    const Tensor w = gen.uniform({45, 130}, -1, 1, dt), bias = gen.uniform({45}, -1, 1, dt);
    const double tol = dt == DType::f32 ? 1e-4 : 1e-11;

    auto run = [&](kernels::cpu::GemmBackend backend) {
      kernels::cpu::set_gemm_backend(backend);
      Tensor ar = a.detach().set_requires_grad(), br = b.detach().set_requires_grad();
      Tensor y = matmul(ar, br);
      Tensor lin = linear(ar, w, bias);
      sum(mul(y, y)).backward();
      return TensorList{y, lin, ar.grad(), br.grad()};
    };
    const TensorList blas = run(kernels::cpu::GemmBackend::OpenBLAS);
    const TensorList hand = run(kernels::cpu::GemmBackend::Handwritten);

    const std::vector<double> want =
        naive_matmul(a.to(DType::f64).to_vector<double>(), b.to(DType::f64).to_vector<double>(), 67, 130, 45);
    const Tensor want_t = Tensor::from_vector(want, {67, 45});
    CHECK(max_abs_diff(blas[0], want_t) < tol * 10);
    CHECK(max_abs_diff(hand[0], want_t) < tol * 10);
    for (size_t i = 0; i < blas.size(); ++i) {
      CAPTURE(i);
      CHECK(max_abs_diff(blas[i], hand[i]) < tol * 100);
    }
  }
}

TEST_CASE("linear: a larger batch matches the naive loop") {
  Generator gen(5);
  const Tensor x = gen.uniform({96, 150}, -1, 1, DType::f64), w = gen.uniform({70, 150}, -1, 1, DType::f64),
               b = gen.uniform({70}, -1, 1, DType::f64);
  const auto bv = b.to_vector<double>();
  const auto want = naive_linear(x.to_vector<double>(), w.to_vector<double>(), &bv, 96, 150, 70);
  const auto got = linear(x, w, b).to_vector<double>();
  double err = 0;
  for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::abs(got[i] - want[i]));
  CHECK(err < 1e-11);
}
