// Hutchinson's trace and diagonal estimates (see trace.h for the method and cost).
#include "probe/trace.h"

#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"

namespace dmix::probe {

TraceResult hutchinson(const SymmetricOperator& op, const TraceOptions& options) {
  check(options.samples >= 0 && (options.samples > 0 || options.max_samples >= 1), "hutchinson",
        "needs samples > 0 or max_samples >= 1");
  check(options.tol > 0, "hutchinson", "tol must be positive, got ", options.tol);
  const int64_t limit = options.samples > 0 ? options.samples : options.max_samples;
  Generator gen(options.seed);
  TraceResult result;
  double previous_mean = 0, total = 0;
  for (int64_t i = 0; i < limit; ++i) {
    const Tensor z = rademacher_vector(op, gen);
    const Tensor hz = op.apply(z);
    ++result.hvps;
    const double sample = dot(z, hz);
    check(std::isfinite(sample), "hutchinson", "z.Hz is ", sample, " at sample ", i);
    result.samples.push_back(sample);
    if (options.diagonal) {
      autograd::NoGradGuard no_grad;
      const Tensor term = mul(z, hz);
      result.diagonal = result.diagonal.defined() ? add(result.diagonal, term) : term;
    }
    total += sample;
    const double mean = total / double(result.samples.size());
    if (options.progress) options.progress("hutchinson", result.hvps, mean);
    // PyHessian's rule, from its starting "mean" of 0 (so it cannot stop at the first sample
    // unless that sample is zero to within 1e-6 * tol).
    if (options.samples == 0 && std::abs(mean - previous_mean) / (std::abs(previous_mean) + 1e-6) < options.tol) {
      result.converged = true;
      break;
    }
    previous_mean = mean;
  }
  if (options.samples > 0) result.converged = true;
  const double n = double(result.samples.size());
  result.trace = total / n;
  if (result.samples.size() < 2) {
    result.standard_error = std::numeric_limits<double>::quiet_NaN();
  } else {
    double squares = 0;
    for (double s : result.samples) squares += (s - result.trace) * (s - result.trace);
    result.standard_error = std::sqrt(squares / (n - 1) / n);
  }
  if (options.diagonal) {
    autograd::NoGradGuard no_grad;
    result.diagonal = mul_scalar(result.diagonal, 1.0 / n);
  }
  return result;
}

}  // namespace dmix::probe
