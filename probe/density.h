// The eigenvalue spectral density of a symmetric operator (a Hessian) by stochastic
// Lanczos quadrature (Ghorbani, Krishnan & Xiao 2019; PyHessian's `density` and
// `density_plot.density_generate`).
//
// What: for a unit probe vector v, the spectral measure sum_i (q_i.v)^2 delta(t - lambda_i)
// of H; averaged over Rademacher probes it estimates the density (1/n) sum_i delta(t - lambda_i).
// How: m Lanczos steps from v with full reorthogonalisation give a tridiagonal T (alpha on
// the diagonal, beta beside it); the Gauss quadrature nodes are T's eigenvalues and the
// weights the squared first components of its eigenvectors (LAPACK dstev). The
// quadrature is exact for the moments v.H^p v, p < 2m. smoothed_density() then puts a
// Gaussian of variance sigma_squared * max(1, width) on every node, on PyHessian's grid.
// Cost: m Hessian-vector products per probe; memory m flat vectors (the Lanczos basis).
//
// Two departures from PyHessian, both for exactness on small operators: steps are capped
// at the dimension n, and when the Krylov space is exhausted (beta at rounding level) the
// next vector is a fresh Gaussian orthogonalised against the basis and T's beta there is
// 0, where PyHessian tests beta != 0 exactly and divides by ||w|| + 1e-6.
#pragma once
#include <cstdint>
#include <vector>

#include "probe/operator.h"

namespace dmix::probe {

struct DensityOptions {
  int64_t steps = 100;  // Lanczos steps per probe (PyHessian's iter), at most the dimension
  int64_t probes = 1;   // independent Rademacher probes (PyHessian's n_v)
  uint64_t seed = 0;
  ProgressFn progress;
};

struct SpectralQuadrature {
  std::vector<std::vector<double>> nodes;    // per probe: eigenvalues of T, ascending
  std::vector<std::vector<double>> weights;  // per probe: squared first eigenvector components, summing to 1
  int64_t hvps = 0;
};

SpectralQuadrature stochastic_lanczos_quadrature(const SymmetricOperator& op, const DensityOptions& options);

struct SmoothedDensity {
  std::vector<double> grid;     // bins points, evenly spaced
  std::vector<double> density;  // at each grid point; sum(density) * spacing = 1
  double sigma_squared = 0;     // the kernel variance used
};

// PyHessian's density_generate: the grid runs from (mean over probes of the smallest node)
// - overhead to (mean of the largest) + overhead; each node is a Gaussian of variance
// sigma_squared * max(1, grid width) weighted by its weight; probes are averaged and the
// result normalised to unit area.
SmoothedDensity smoothed_density(const SpectralQuadrature& quadrature, int64_t bins = 10000,
                                 double sigma_squared = 1e-5, double overhead = 0.01);

}  // namespace dmix::probe
