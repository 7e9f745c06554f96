// matmul, linear and transpose: op-table rows (forward vs naive loops, gradcheck,
// gradgradcheck) and what the table cannot express: shape errors, both GEMM
// backends giving the same products and gradients, and products large enough for
// the threaded kernels.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "engine/rng.h"
#include "kernels/cpu/gemm.h"
#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

// (M,K) x (K,N), row-major.
std::vector<double> naive_matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t M, int64_t K,
                                 int64_t N) {
  std::vector<double> c(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) c[i * N + j] += a[i * K + k] * b[k * N + j];
  return c;
}

std::vector<double> naive_transpose(const std::vector<double>& a, int64_t R, int64_t C) {
  std::vector<double> t(a.size());
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) t[c * R + r] = a[r * C + c];
  return t;
}

// y[n, o] = sum_i x[n, i] w[o, i] + b[o]
std::vector<double> naive_linear(const std::vector<double>& x, const std::vector<double>& w,
                                 const std::vector<double>* b, int64_t rows, int64_t in, int64_t out) {
  std::vector<double> y(size_t(rows * out), 0.0);
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t o = 0; o < out; ++o) {
      double s = b ? (*b)[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += x[n * in + i] * w[o * in + i];
      y[n * out + o] = s;
    }
  return y;
}

OpCase matmul_case(int64_t M, int64_t K, int64_t N) {
  OpCase c;
  c.name = "matmul " + std::to_string(M) + "x" + std::to_string(K) + " * " + std::to_string(K) + "x" + std::to_string(N);
  c.inputs = {InputSpec::uniform({M, K}), InputSpec::uniform({K, N})};
  c.fn = [](const TensorList& in) { return matmul(in[0], in[1]); };
  c.reference = [M, K, N](const Inputs& in) { return naive_matmul(in[0], in[1], M, K, N); };
  return c;
}

OpCase transpose_case(int64_t R, int64_t C) {
  OpCase c;
  c.name = "transpose " + std::to_string(R) + "x" + std::to_string(C);
  c.inputs = {InputSpec::uniform({R, C})};
  c.fn = [](const TensorList& in) { return transpose(in[0]); };
  c.reference = [R, C](const Inputs& in) { return naive_transpose(in[0], R, C); };
  return c;
}

// x of shape lead + (in); weight (out, in); optional bias (out).
OpCase linear_case(const std::string& name, Shape x_shape, int64_t out, bool bias) {
  const int64_t in = x_shape.back();
  const int64_t rows = shape_numel(x_shape) / in;
  OpCase c;
  c.name = name;
  c.inputs = {InputSpec::uniform(x_shape), InputSpec::uniform({out, in})};
  if (bias) c.inputs.push_back(InputSpec::uniform({out}));
  c.fn = [bias](const TensorList& in) { return bias ? linear(in[0], in[1], in[2]) : linear(in[0], in[1]); };
  c.reference = [=](const Inputs& v) { return naive_linear(v[0], v[1], bias ? &v[2] : nullptr, rows, in, out); };
  return c;
}

OpCaseRegistrar reg_matmul(matmul_case(5, 7, 3));
OpCaseRegistrar reg_matmul_vectors(matmul_case(1, 4, 1));       // row times column
OpCaseRegistrar reg_matmul_outer(matmul_case(6, 1, 9));         // K = 1: an outer product
OpCaseRegistrar reg_matmul_odd(matmul_case(9, 13, 6));
OpCaseRegistrar reg_transpose(transpose_case(3, 5));
OpCaseRegistrar reg_transpose_row(transpose_case(1, 7));
OpCaseRegistrar reg_transpose_tiles(transpose_case(37, 3));     // crosses the 32-wide tile edge
OpCaseRegistrar reg_linear_bias(linear_case("linear with bias", {4, 6}, 3, true));
OpCaseRegistrar reg_linear_nobias(linear_case("linear without bias", {5, 7}, 2, false));
OpCaseRegistrar reg_linear_one(linear_case("linear one sample, one output", {1, 5}, 1, true));
OpCaseRegistrar reg_linear_3d(linear_case("linear 3-D input with bias", {2, 3, 4}, 5, true));
OpCaseRegistrar reg_linear_1d(linear_case("linear 1-D input", {6}, 4, true));
OpCaseRegistrar reg_matmul_transposed([] {
  // transpose feeding matmul: gradients flow through both ops, and the second-order
  // terms exercise the transposed-operand products of matmul's backward.
  OpCase c;
  c.name = "matmul(transpose(a), b)";
  c.inputs = {InputSpec::uniform({4, 3}), InputSpec::uniform({4, 5})};
  c.fn = [](const TensorList& in) { return matmul(transpose(in[0]), in[1]); };
  c.reference = [](const Inputs& in) { return naive_matmul(naive_transpose(in[0], 4, 3), in[1], 3, 4, 5); };
  return c;
}());

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
