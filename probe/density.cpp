// Stochastic Lanczos quadrature and its Gaussian smoothing (see density.h).
#include "probe/density.h"

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"

namespace dmix::probe {

namespace {

// v minus its components along the (orthonormal) basis. Two Gram-Schmidt passes: in
// f32 one pass leaves components at rounding level times the removed norm, which Lanczos
// would amplify into spurious copies of the extreme eigenvalues.
Tensor orthogonal_to(Tensor v, const std::vector<Tensor>& basis) {
  for (int pass = 0; pass < 2; ++pass)
    for (const Tensor& u : basis) axpy(v, -dot(v, u), u);
  return v;
}

double rounding_level(DType dtype) {
  return 100 * (dtype == DType::f64 ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon());
}

}  // namespace

SpectralQuadrature stochastic_lanczos_quadrature(const SymmetricOperator& op, const DensityOptions& options) {
  check(op.size >= 1, "slq", "the operator is empty");
  check(options.steps >= 1 && options.probes >= 1, "slq", "needs steps >= 1 and probes >= 1, got ", options.steps,
        " and ", options.probes);
  const int64_t m = std::min(options.steps, op.size);
  Generator gen(options.seed);
  SpectralQuadrature out;
  autograd::NoGradGuard no_grad;
  for (int64_t probe = 0; probe < options.probes; ++probe) {
    std::vector<double> alpha, beta;  // beta[i] couples steps i and i + 1
    std::vector<Tensor> basis;
    Tensor v = rademacher_vector(op, gen);
    v = mul_scalar(v, 1.0 / norm(v));
    Tensor w;
    double scale = 0;  // the largest |alpha| so far: what "beta is at rounding level" is relative to
    for (int64_t i = 0; i < m; ++i) {
      if (i > 0) {
        const double b = norm(w);
        if (b > rounding_level(op.dtype) * scale) {
          beta.push_back(b);
          v = mul_scalar(w, 1.0 / b);
        } else {  // an invariant subspace is exhausted: continue in a fresh direction
          beta.push_back(0.0);
          v = orthogonal_to(gaussian_vector(op, gen), basis);
          v = mul_scalar(v, 1.0 / norm(v));
        }
      }
      basis.push_back(v);
      w = op.apply(v);
      ++out.hvps;
      const double a = dot(w, v);
      check(std::isfinite(a), "slq", "v.Hv is ", a, " at Lanczos step ", i);
      alpha.push_back(a);
      scale = std::max(scale, std::abs(a));
      if (options.progress) options.progress("slq", out.hvps, a);
      if (i + 1 < m) w = orthogonal_to(w, basis);  // full reorthogonalisation (removes alpha v and beta v_prev too)
    }
    // T = tridiag(beta, alpha, beta): eigenvalues ascending into alpha, eigenvectors into z.
    std::vector<double> z(static_cast<size_t>(m * m));
    const lapack_int info = LAPACKE_dstev(LAPACK_COL_MAJOR, 'V', static_cast<lapack_int>(m), alpha.data(),
                                          m > 1 ? beta.data() : nullptr, z.data(), static_cast<lapack_int>(m));
    check(info == 0, "slq", "LAPACK dstev failed (info ", info, ") on the ", m, "x", m, " tridiagonal matrix");
    std::vector<double> weights(static_cast<size_t>(m));
    for (int64_t j = 0; j < m; ++j) weights[j] = z[static_cast<size_t>(j * m)] * z[static_cast<size_t>(j * m)];
    out.nodes.push_back(alpha);
    out.weights.push_back(weights);
  }
  return out;
}

SmoothedDensity smoothed_density(const SpectralQuadrature& quadrature, int64_t bins, double sigma_squared,
                                 double overhead) {
  check(!quadrature.nodes.empty(), "density", "no Lanczos run to smooth");
  check(bins >= 2 && sigma_squared > 0 && overhead >= 0, "density",
        "needs bins >= 2, sigma_squared > 0, overhead >= 0");
  const size_t runs = quadrature.nodes.size();
  double lo = 0, hi = 0;
  for (const auto& nodes : quadrature.nodes) {
    lo += *std::min_element(nodes.begin(), nodes.end()) / double(runs);
    hi += *std::max_element(nodes.begin(), nodes.end()) / double(runs);
  }
  lo -= overhead;
  hi += overhead;
  check(hi > lo, "density", "the spectrum has zero width; pass overhead > 0");
  SmoothedDensity out;
  out.sigma_squared = sigma_squared * std::max(1.0, hi - lo);
  out.grid.resize(static_cast<size_t>(bins));
  out.density.assign(static_cast<size_t>(bins), 0.0);
  const double step = (hi - lo) / double(bins - 1);
  const double norm = 1.0 / std::sqrt(2 * M_PI * out.sigma_squared);
  for (int64_t j = 0; j < bins; ++j) {
    const double x = lo + step * double(j);
    out.grid[j] = x;
    double total = 0;
    for (size_t r = 0; r < runs; ++r)
      for (size_t i = 0; i < quadrature.nodes[r].size(); ++i) {
        const double d = x - quadrature.nodes[r][i];
        total += quadrature.weights[r][i] * norm * std::exp(-d * d / (2 * out.sigma_squared));
      }
    out.density[j] = total / double(runs);
  }
  double area = 0;
  for (double d : out.density) area += d * step;
  check(area > 0, "density", "the smoothed density vanishes on its grid");
  for (double& d : out.density) d /= area;
  return out;
}

}  // namespace dmix::probe
