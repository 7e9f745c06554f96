// Top-k eigenpairs: power iteration with deflation and Lanczos (Spectra) on matrices with
// a known spectrum, directly and as the Hessian of a quadratic model; the two orders;
// product counts; eigenvectors saved with parameter names; bad k.
#include <doctest/doctest.h>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "engine/safetensors.h"
#include "probe/eigen.h"
#include "tests/probe/fixtures.h"

using namespace dmix;
using namespace dmix::probe;
using namespace dmix::probe::testing;

namespace {

// loss(w) = 0.5 w^T A w + b^T w: its Hessian is A at every w.
class QuadraticModel : public nn::Module {
 public:
  QuadraticModel(Tensor a, Tensor b) : a(std::move(a)), b(std::move(b)) {
    w = register_parameter("w", Generator(5).normal({this->a.size(0)}, 0, 1, DType::f64));
  }
  Tensor forward(const Tensor&) override {
    const Tensor col = w.reshape({-1, 1});
    return sum(matmul(transpose(col), matmul(a, col))) * 0.5 + sum(b * w);
  }
  Tensor a, b, w;
};

Tensor quadratic_loss(nn::Module& model, const augment::Batch& batch) { return model(batch.images); }

double residual(const SymmetricOperator& op, const Tensor& v, double lambda) {
  const std::vector<double> hv = host(op.apply(v)), x = host(v);
  double r = 0;
  for (size_t i = 0; i < x.size(); ++i) r = std::max(r, std::abs(hv[i] - lambda * x[i]));
  return r;
}

}  // namespace

TEST_CASE("eigen: power iteration finds the top-k by magnitude, as PyHessian") {
  const SymmetricOperator op = matrix_operator(matrix_with_spectrum(known_spectrum()));
  EigenOptions o;
  o.k = 3;
  o.tol = 1e-12;
  o.max_iterations = 1000;
  const EigenResult r = power_iteration(op, o);
  REQUIRE(r.eigenvalues.size() == 3);
  // PyHessian normalises by ||v|| + 1e-6, twice per iteration, so the Rayleigh quotient is low
  // by a relative 2e-6 (1 + 1/|lambda|): exact to about 3e-6 here, not to rounding.
  CHECK(r.eigenvalues[0] == doctest::Approx(10).epsilon(5e-6));
  CHECK(r.eigenvalues[1] == doctest::Approx(-7).epsilon(5e-6));
  CHECK(r.eigenvalues[2] == doctest::Approx(5).epsilon(5e-6));
  for (int i = 0; i < 3; ++i) {
    CHECK(r.converged[i]);
    CHECK(norm(r.eigenvectors[i]) == doctest::Approx(1).epsilon(1e-6));
  }
  CHECK(residual(op, r.eigenvectors[0], 10) < 1e-5);
  CHECK(residual(op, r.eigenvectors[1], -7) < 1e-5);
  CHECK(residual(op, r.eigenvectors[2], 5) < 1e-5);
  CHECK(r.hvps == r.iterations);
}

TEST_CASE("eigen: PyHessian's defaults (tol 1e-3, 100 iterations) stop early, within about tol") {
  const SymmetricOperator op = matrix_operator(matrix_with_spectrum(known_spectrum()));
  EigenOptions o;
  o.k = 3;
  int64_t calls = 0;
  o.progress = [&](const std::string& stage, int64_t hvps, double) {
    CHECK(stage == "power");
    calls = hvps;
  };
  const EigenResult r = power_iteration(op, o);
  CHECK(calls == r.hvps);
  CHECK(r.hvps < 3 * 100);
  CHECK(r.eigenvalues[0] == doctest::Approx(10).epsilon(2e-2));
  CHECK(r.eigenvalues[1] == doctest::Approx(-7).epsilon(2e-2));
  CHECK(r.eigenvalues[2] == doctest::Approx(5).epsilon(2e-2));
}

TEST_CASE("eigen: Lanczos finds the same pairs, in both orders, with fewer products") {
  const SymmetricOperator op = matrix_operator(matrix_with_spectrum(known_spectrum()));
  EigenOptions o;
  o.k = 3;
  o.method = EigenMethod::lanczos;
  o.tol = 1e-10;
  o.krylov_size = 8;
  const EigenResult magnitude = lanczos_eigenpairs(op, o);
  REQUIRE(magnitude.eigenvalues.size() == 3);
  CHECK(magnitude.eigenvalues[0] == doctest::Approx(10).epsilon(1e-9));
  CHECK(magnitude.eigenvalues[1] == doctest::Approx(-7).epsilon(1e-9));
  CHECK(magnitude.eigenvalues[2] == doctest::Approx(5).epsilon(1e-9));
  for (int i = 0; i < 3; ++i) CHECK(residual(op, magnitude.eigenvectors[i], magnitude.eigenvalues[i]) < 1e-7);

  o.order = EigenOrder::largest_algebraic;
  const EigenResult algebraic = top_eigenpairs(op, o);
  REQUIRE(algebraic.eigenvalues.size() == 3);
  CHECK(algebraic.eigenvalues[0] == doctest::Approx(10).epsilon(1e-9));
  CHECK(algebraic.eigenvalues[1] == doctest::Approx(5).epsilon(1e-9));
  CHECK(algebraic.eigenvalues[2] == doctest::Approx(3).epsilon(1e-9));

  EigenOptions p = o;
  p.method = EigenMethod::power;
  p.order = EigenOrder::largest_magnitude;
  p.max_iterations = 1000;
  const EigenResult power = top_eigenpairs(op, p);
  MESSAGE("tol 1e-10, top-3: power ", power.hvps, " products, Lanczos ", magnitude.hvps);
  CHECK(magnitude.hvps * 2 <= power.hvps);
}

TEST_CASE("eigen: the Hessian of a quadratic model through HessianOperator is its matrix") {
  QuadraticModel model(matrix_with_spectrum(known_spectrum()), Generator(9).normal({12}, 0, 1, DType::f64));
  FixedBatch batch(Tensor::zeros({1, 1}, DType::f64), Tensor::zeros({1}, DType::i64));
  HessianOptions ho;
  ho.loss = quadratic_loss;
  HessianOperator h(model, batch, ho);
  CHECK(h.size() == 12);
  CHECK(h.parameter_names() == std::vector<std::string>{"w"});
  EigenOptions o;
  o.k = 2;
  o.method = EigenMethod::lanczos;
  o.order = EigenOrder::largest_algebraic;
  o.tol = 1e-10;
  const EigenResult r = top_eigenpairs(h.as_operator(), o);
  REQUIRE(r.eigenvalues.size() == 2);
  CHECK(r.eigenvalues[0] == doctest::Approx(10).epsilon(1e-9));
  CHECK(r.eigenvalues[1] == doctest::Approx(5).epsilon(1e-9));
  CHECK(h.hvp_count() == r.hvps);

  // Saved with the parameter's name, eigenvector i as "<i>.w".
  const std::string path = "/tmp/dmix_test_eigenvectors_" + std::to_string(::getpid()) + ".safetensors";
  save_eigenvectors(path, h, r, {{"model", "quadratic"}});
  const SafetensorsFile file = load_safetensors(path);
  std::remove(path.c_str());
  REQUIRE(file.tensors.count("0.w") == 1);
  REQUIRE(file.tensors.count("1.w") == 1);
  CHECK(file.tensors.size() == 2);
  CHECK(file.tensors.at("0.w").shape() == Shape{12});
  CHECK(file.metadata.at("model") == "quadratic");
  CHECK(file.metadata.at("parameters") == "1");
  const std::string values = file.metadata.at("eigenvalues");  // "[10.000..., 4.999...]"
  REQUIRE(values.front() == '[');
  CHECK(std::stod(values.substr(1)) == doctest::Approx(r.eigenvalues[0]).epsilon(1e-15));
  CHECK(std::stod(values.substr(values.find(',') + 1)) == doctest::Approx(r.eigenvalues[1]).epsilon(1e-15));
  const std::vector<double> saved = host(file.tensors.at("0.w")), found = host(r.eigenvectors[0]);
  for (size_t i = 0; i < saved.size(); ++i) CHECK(saved[i] == found[i]);
}

TEST_CASE("eigen: k outside [1, n] is a one-line error") {
  const SymmetricOperator op = matrix_operator(diagonal_matrix({3, 2, 1}));
  EigenOptions o;
  o.k = 4;
  CHECK_THROWS_WITH_AS(power_iteration(op, o), doctest::Contains("k must lie in [1, 3]"), Error);
  o.k = 3;
  CHECK(power_iteration(op, o).eigenvalues.size() == 3);
  o.method = EigenMethod::lanczos;
  CHECK_THROWS_WITH_AS(top_eigenpairs(op, o), doctest::Contains("k must lie in [1, 2]"), Error);
  o.k = 0;
  CHECK_THROWS_AS(top_eigenpairs(op, o), Error);
  o.k = 1;
  o.method = EigenMethod::power;
  o.order = EigenOrder::largest_algebraic;
  CHECK_THROWS_WITH_AS(top_eigenpairs(op, o), doctest::Contains("largest-magnitude"), Error);
  try {
    o.k = 7;
    power_iteration(op, o);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find('\n') == std::string::npos);
  }
}
