// Top-k eigenpairs by power iteration with deflation, as PyHessian's `eigenvalues`
// (hessian.py, top_n / maxIter / tol).
//
// For each pair: start from a normalised Gaussian vector; each iteration orthogonalises v
// against the eigenvectors already found (Gram-Schmidt, which deflates them away), takes
// the Rayleigh quotient lambda = v.Hv, and sets v = Hv / ||Hv||; the pair is done when lambda
// changes by less than tol relative to the previous estimate, or after max_iterations. As
// in PyHessian the reported eigenvalue is the estimate before the last one and the
// eigenvector the last normalised Hv. Also as in PyHessian, vectors are normalised by
// ||v|| + 1e-6 (twice per iteration: the new v, then after deflation), which biases the
// eigenvalue low by a relative 2e-6 (1 + 1/|lambda|): harmless at tol 1e-3 for curvatures
// above 1e-2, and the price of parity.
// Converges to the largest-magnitude eigenvalue left, at the rate |lambda_2 / lambda_1| per
// product. Cost: one Hessian-vector product per iteration; k + 1 flat vectors of memory.
#include <cmath>
#include <limits>

#include "engine/error.h"
#include "probe/eigen.h"

namespace dmix::probe {

EigenResult power_iteration(const SymmetricOperator& op, const EigenOptions& options) {
  check(options.k >= 1 && options.k <= op.size, "power_iteration", "k must lie in [1, ", op.size,
        "] (the number of parameters), got ", options.k);
  check(options.order == EigenOrder::largest_magnitude, "power_iteration",
        "finds the largest-magnitude eigenvalues only; use the Lanczos method for the algebraically largest");
  check(options.max_iterations >= 1 && options.tol > 0, "power_iteration", "needs max_iterations >= 1 and tol > 0");
  Generator gen(options.seed);
  EigenResult result;
  for (int64_t pair = 0; pair < options.k; ++pair) {
    Tensor v = normalized(gaussian_vector(op, gen));
    double eigenvalue = std::numeric_limits<double>::quiet_NaN();
    bool converged = false;
    for (int64_t it = 0; it < options.max_iterations; ++it) {
      v = orthonormalized(v, result.eigenvectors);
      const Tensor hv = op.apply(v);
      ++result.hvps;
      ++result.iterations;
      const double estimate = dot(hv, v);
      check(std::isfinite(estimate), "power_iteration", "the Rayleigh quotient is ", estimate, " at iteration ", it);
      v = normalized(hv);
      if (options.progress) options.progress("power", result.hvps, estimate);
      if (it > 0 && std::abs(eigenvalue - estimate) / (std::abs(eigenvalue) + 1e-6) < options.tol) {
        converged = true;
        break;
      }
      eigenvalue = estimate;
    }
    result.eigenvalues.push_back(eigenvalue);
    result.eigenvectors.push_back(v);
    result.converged.push_back(converged);
  }
  return result;
}

}  // namespace dmix::probe
