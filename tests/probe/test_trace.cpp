// Hutchinson's trace and diagonal: exact on a diagonal matrix (every Rademacher sample is
// the trace), unbiased within its standard error on a dense one; PyHessian's stopping
// rule against a fixed sample count.
#include <doctest/doctest.h>

#include <cmath>

#include "probe/trace.h"
#include "tests/probe/fixtures.h"

using namespace dmix;
using namespace dmix::probe;
using namespace dmix::probe::testing;

TEST_CASE("trace: a diagonal matrix gives its exact trace and diagonal from any sample") {
  const std::vector<double> d = {4, -1, 2.5, 0.5, 3};
  const SymmetricOperator op = matrix_operator(diagonal_matrix(d));
  TraceOptions o;
  o.diagonal = true;
  const TraceResult r = hutchinson(op, o);
  // PyHessian's rule compares the running mean with the previous one: equal samples stop it at the second.
  CHECK(r.samples.size() == 2);
  CHECK(r.converged);
  CHECK(r.hvps == 2);
  CHECK(r.trace == doctest::Approx(9.0).epsilon(1e-12));
  CHECK(r.standard_error == doctest::Approx(0.0));
  const std::vector<double> diag = host(r.diagonal);
  for (size_t i = 0; i < d.size(); ++i) CHECK(diag[i] == doctest::Approx(d[i]).epsilon(1e-12));
}

TEST_CASE("trace: a dense matrix's estimate lies within a few standard errors of the trace") {
  const std::vector<double> spectrum = known_spectrum();
  double exact = 0;
  for (double l : spectrum) exact += l;
  const Tensor a = matrix_with_spectrum(spectrum);
  const SymmetricOperator op = matrix_operator(a);
  TraceOptions o;
  o.samples = 400;
  o.diagonal = true;
  o.seed = 7;
  const TraceResult r = hutchinson(op, o);
  CHECK(r.samples.size() == 400);
  CHECK(r.hvps == 400);
  CHECK(r.standard_error > 0);
  CHECK(std::abs(r.trace - exact) < 4 * r.standard_error);
  // The diagonal's entries sum to the trace estimate, and approach diag(A).
  const std::vector<double> diag = host(r.diagonal), full = host(a);
  double total = 0, worst = 0;
  for (size_t i = 0; i < diag.size(); ++i) {
    total += diag[i];
    worst = std::max(worst, std::abs(diag[i] - full[i * diag.size() + i]));
  }
  CHECK(total == doctest::Approx(r.trace).epsilon(1e-9));
  CHECK(worst < 1.0);  // each entry's error ~ sqrt(sum_j a_ij^2 / 400), below 0.5 here

  // PyHessian's rule: same seed, same Rademacher vectors, stopping once the running mean
  // moves by less than tol relative to the previous one, after a handful of samples.
  TraceOptions rule;
  rule.seed = 7;
  const TraceResult quick = hutchinson(op, rule);
  REQUIRE(quick.samples.size() >= 2);
  CHECK(quick.samples.size() < 100);
  CHECK(quick.converged);
  double before = 0;
  for (size_t i = 0; i < quick.samples.size(); ++i) {
    CHECK(quick.samples[i] == r.samples[i]);
    if (i + 1 < quick.samples.size()) before += quick.samples[i];
  }
  before /= double(quick.samples.size() - 1);
  CHECK(std::abs(quick.trace - before) / (std::abs(before) + 1e-6) < 1e-3);
}

TEST_CASE("trace: bad options are one-line errors") {
  const SymmetricOperator op = matrix_operator(diagonal_matrix({1, 2}));
  TraceOptions o;
  o.samples = -1;
  CHECK_THROWS_AS(hutchinson(op, o), Error);
  o.samples = 0;
  o.max_samples = 0;
  CHECK_THROWS_AS(hutchinson(op, o), Error);
}
