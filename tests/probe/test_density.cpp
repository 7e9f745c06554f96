// Stochastic Lanczos quadrature: on a diagonal matrix every normalised Rademacher probe
// sees the uniform spectral measure, so nodes and weights are exact; on a dense matrix
// with a known spectrum the quadrature's moments match the spectrum's; the smoothed
// density is PyHessian's (unit area, grid, kernel width).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "probe/density.h"
#include "tests/probe/fixtures.h"

using namespace dmix;
using namespace dmix::probe;
using namespace dmix::probe::testing;

namespace {

double moment(const std::vector<double>& nodes, const std::vector<double>& weights, int p) {
  double m = 0;
  for (size_t i = 0; i < nodes.size(); ++i) m += weights[i] * std::pow(nodes[i], p);
  return m;
}

}  // namespace

TEST_CASE("density: a full Lanczos run on a diagonal matrix recovers its spectrum with weights 1/n") {
  const std::vector<double> d = {-2, -0.5, 0.25, 1, 3, 4.5, 8};
  DensityOptions o;
  o.probes = 3;
  const SpectralQuadrature q = stochastic_lanczos_quadrature(matrix_operator(diagonal_matrix(d)), o);
  CHECK(q.hvps == 3 * 7);  // steps capped at the dimension
  REQUIRE(q.nodes.size() == 3);
  for (size_t r = 0; r < 3; ++r) {
    REQUIRE(q.nodes[r].size() == d.size());
    for (size_t i = 0; i < d.size(); ++i) {
      CHECK(q.nodes[r][i] == doctest::Approx(d[i]).epsilon(1e-9));
      CHECK(q.weights[r][i] == doctest::Approx(1.0 / 7).epsilon(1e-9));
    }
  }
}

TEST_CASE("density: fewer steps than the dimension still match the moments v.H^p v for p < 2m") {
  // Diagonal, so v.H^p v = mean(d^p) for every normalised Rademacher v.
  const std::vector<double> d = {-1, 0.2, 0.5, 1, 1.5, 2, 3, 5, 6, 9};
  DensityOptions o;
  o.steps = 4;
  const SpectralQuadrature q = stochastic_lanczos_quadrature(matrix_operator(diagonal_matrix(d)), o);
  CHECK(q.hvps == 4);
  REQUIRE(q.nodes[0].size() == 4);
  for (int p = 0; p < 8; ++p) {
    double exact = 0;
    for (double x : d) exact += std::pow(x, p) / double(d.size());
    CHECK(moment(q.nodes[0], q.weights[0], p) == doctest::Approx(exact).epsilon(1e-8));
  }
}

TEST_CASE("density: a dense matrix's moments, averaged over probes, match its spectrum's") {
  const std::vector<double> spectrum = known_spectrum();
  const SymmetricOperator op = matrix_operator(matrix_with_spectrum(spectrum));
  DensityOptions o;
  o.probes = 100;
  o.seed = 4;
  const SpectralQuadrature q = stochastic_lanczos_quadrature(op, o);
  // Every probe's nodes are the spectrum itself (steps = n).
  std::vector<double> sorted = spectrum;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) CHECK(q.nodes[17][i] == doctest::Approx(sorted[i]).epsilon(1e-8));
  for (int p = 1; p <= 3; ++p) {
    double exact = 0, mean = 0, squares = 0;
    for (double x : spectrum) exact += std::pow(x, p) / double(spectrum.size());
    const double n = double(q.nodes.size());
    for (size_t r = 0; r < q.nodes.size(); ++r) mean += moment(q.nodes[r], q.weights[r], p) / n;
    for (size_t r = 0; r < q.nodes.size(); ++r) squares += std::pow(moment(q.nodes[r], q.weights[r], p) - mean, 2);
    const double standard_error = std::sqrt(squares / (n - 1) / n);
    CHECK(standard_error > 0);
    CHECK(std::abs(mean - exact) < 4 * standard_error);
  }
}

TEST_CASE("density: PyHessian's smoothing: grid, kernel variance and unit area") {
  SpectralQuadrature q;
  q.nodes = {{-1, 0, 2}, {-1.2, 0.1, 2.2}};  // the grid spans the mean extremes, -1.1 to 2.1 (and 0.01 more)
  q.weights = {{0.25, 0.5, 0.25}, {0.3, 0.4, 0.3}};
  const SmoothedDensity s = smoothed_density(q, 10000);
  REQUIRE(s.grid.size() == 10000);
  CHECK(s.grid.front() == doctest::Approx(-1.1 - 0.01));
  CHECK(s.grid.back() == doctest::Approx(2.1 + 0.01));
  CHECK(s.sigma_squared == doctest::Approx(1e-5 * (3.2 + 0.02)));
  const double step = s.grid[1] - s.grid[0];
  double area = 0, mean = 0;
  for (size_t i = 0; i < s.grid.size(); ++i) {
    area += s.density[i] * step;
    mean += s.grid[i] * s.density[i] * step;
  }
  CHECK(area == doctest::Approx(1.0).epsilon(1e-12));
  // The second probe's extreme nodes lie outside that grid (16 kernel widths): PyHessian
  // drops them and renormalises, so the mean is the mixture's without them.
  const double kept = 0.25 * -1 + 0.25 * 2 + 0.4 * 0.1;
  CHECK(mean == doctest::Approx(kept / (1.0 + 0.4)).epsilon(2e-2));
  // Peaks at the nodes: the density at 0 (weight 0.5) is higher than at 1 (no node).
  auto at = [&](double x) { return s.density[size_t(std::lround((x - s.grid.front()) / step))]; };
  CHECK(at(0.0) > 100 * at(1.0));
}

TEST_CASE("density: bad options are one-line errors") {
  const SymmetricOperator op = matrix_operator(diagonal_matrix({1, 2}));
  DensityOptions o;
  o.steps = 0;
  CHECK_THROWS_AS(stochastic_lanczos_quadrature(op, o), Error);
  CHECK_THROWS_AS(smoothed_density(SpectralQuadrature{}), Error);
}
