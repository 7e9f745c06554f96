// The trace and the diagonal of a symmetric operator (a Hessian) by Hutchinson's estimator.
//
// What: tr(H) ~ mean of z.Hz and diag(H) ~ mean of z * Hz (elementwise) over Rademacher
// vectors z (entries +1 / -1 with equal probability), both unbiased.
// How: as PyHessian's `trace`: draw z, take z.Hz, and stop once the running mean moves by
// less than tol relative to the previous mean, |m_new - m_old| / (|m_old| + 1e-6) < tol, or
// after max_samples. That rule often stops after a handful of samples, so `samples` > 0
// asks for exactly that many instead. The standard error is the samples' standard
// deviation over sqrt(count) (NaN with a single sample).
// Cost: one Hessian-vector product per sample; memory two flat vectors (three with the
// diagonal).
#pragma once
#include <cstdint>
#include <vector>

#include "probe/operator.h"

namespace dmix::probe {

struct TraceOptions {
  double tol = 1e-3;          // PyHessian's stopping rule on the running mean
  int64_t max_samples = 100;  // PyHessian's maxIter
  int64_t samples = 0;        // > 0: exactly this many samples, no stopping rule
  bool diagonal = false;      // also estimate diag(H)
  uint64_t seed = 0;
  ProgressFn progress;
};

struct TraceResult {
  double trace = 0;             // the mean of the samples
  double standard_error = 0;    // of that mean
  std::vector<double> samples;  // z.Hz, one per Rademacher vector
  Tensor diagonal;              // flat estimate of diag(H) (with options.diagonal)
  int64_t hvps = 0;
  bool converged = false;  // the stopping rule fired (always true with `samples`)
};

TraceResult hutchinson(const SymmetricOperator& op, const TraceOptions& options);

}  // namespace dmix::probe
