// The top-k eigenpairs of a symmetric operator (a Hessian), by two methods:
//
//   power iteration with deflation (power_iteration.cpp): PyHessian's `eigenvalues`,
//     step for step, for parity with published numbers;
//   implicitly restarted Lanczos (lanczos.cpp, through Spectra's SymEigsSolver): the same
//     eigenpairs from far fewer Hessian-vector products, and a stronger stopping rule.
//
// Which eigenvalues: PyHessian's power iteration converges to the largest in magnitude
// (a large negative eigenvalue wins over a small positive one). Lanczos can do the same
// (EigenOrder::largest_magnitude, the default) or return the algebraically largest, the
// most positive curvature (EigenOrder::largest_algebraic), which is what "sharpness"
// usually means; the two agree whenever the top of the spectrum is positive, as it is
// near a minimum.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "probe/hvp.h"
#include "probe/operator.h"

namespace dmix::probe {

enum class EigenMethod { power, lanczos };
enum class EigenOrder { largest_magnitude, largest_algebraic };

struct EigenOptions {
  int64_t k = 1;  // how many eigenpairs (PyHessian's top_n)
  EigenMethod method = EigenMethod::power;
  EigenOrder order = EigenOrder::largest_magnitude;  // power iteration knows only largest_magnitude
  // Power: stop an eigenpair when |lambda_prev - lambda| / (|lambda_prev| + 1e-6) < tol, or after
  // max_iterations products (PyHessian: 1e-3, 100). Lanczos: a Ritz pair is accepted when its
  // residual ||Hx - theta x|| < tol * |theta|, which puts an eigenvalue within tol * |theta| of
  // theta; max_iterations bounds the restarts.
  double tol = 1e-3;
  int64_t max_iterations = 100;
  // Lanczos basis size (Spectra's ncv); 0: 2k + 1, at most the dimension. On a trained
  // PyramidNet (k = 3) 7 to 10 took the fewest products; larger bases cost more per restart.
  int64_t krylov_size = 0;
  uint64_t seed = 0;        // the random start vectors
  ProgressFn progress;
};

struct EigenResult {
  std::vector<double> eigenvalues;   // in the order found (power) or by the requested order (Lanczos)
  std::vector<Tensor> eigenvectors;  // flat, unit norm, on the operator's device
  std::vector<bool> converged;       // per eigenpair; Lanczos returns only converged pairs
  int64_t hvps = 0;                  // Hessian-vector products made
  int64_t iterations = 0;            // power: iterations over all pairs; Lanczos: restarts
};

EigenResult power_iteration(const SymmetricOperator& op, const EigenOptions& options);
EigenResult lanczos_eigenpairs(const SymmetricOperator& op, const EigenOptions& options);
// options.method picks one of the two.
EigenResult top_eigenpairs(const SymmetricOperator& op, const EigenOptions& options);

// Writes the eigenvectors as one safetensors file: eigenvector i's part for parameter p is
// the tensor "<i>.<p>" (as torch.nn.ParameterList would name it), shaped like p; the
// metadata holds "eigenvalues" (a JSON array) and "parameters" (how many tensors each
// eigenvector has). Atomic, like every safetensors write.
void save_eigenvectors(const std::string& path, const HessianOperator& op, const EigenResult& result,
                       std::map<std::string, std::string> metadata = {});

}  // namespace dmix::probe
