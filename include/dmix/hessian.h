// Hessian analyses (probe/): the Hessian of a model's loss seen as "v -> Hv" on a flat
// parameter vector, and what PyHessian computes from it: top eigenpairs (power iteration
// with deflation, or Lanczos with far fewer products), the trace and diagonal
// (Hutchinson), the spectral density (stochastic Lanczos quadrature), and all three per
// layer. Namespace dmix::probe; the calls below are shortcuts for one fixed batch.
//
//   dmix::probe::FixedBatch batch(images, labels);           // or LoaderBatches(loader): the whole split
//   dmix::probe::HessianOperator H(*model, batch);             // eval mode, every parameter
//   dmix::probe::EigenOptions eo;
//   eo.k = 3;
//   eo.method = dmix::probe::EigenMethod::lanczos;
//   auto top = dmix::probe::top_eigenpairs(H.as_operator(), eo);   // top.eigenvalues, top.hvps
//   auto tr = dmix::probe::hutchinson(H.as_operator(), {});        // tr.trace +- tr.standard_error
//   auto esd = dmix::probe::smoothed_density(dmix::probe::stochastic_lanczos_quadrature(H.as_operator(), {}));
//   dmix::probe::save_eigenvectors("top3.safetensors", H, top);
#pragma once
#include <cstdint>
#include <vector>

#include "nn/module.h"
#include "probe/density.h"
#include "probe/eigen.h"
#include "probe/hvp.h"
#include "probe/operator.h"
#include "probe/per_layer.h"
#include "probe/trace.h"

namespace dmix {

// The k largest-magnitude eigenvalues of the Hessian of the mean loss over one batch (eval
// mode, every parameter), by Lanczos to PyHessian's tolerance (1e-3).
inline std::vector<double> hessian_eigenvalues(nn::Module& model, const Tensor& inputs, const Tensor& targets,
                                               int64_t k = 1) {
  probe::FixedBatch batch(inputs, targets);
  probe::HessianOperator h(model, batch);
  probe::EigenOptions options;
  options.k = k;
  options.method = h.size() > k ? probe::EigenMethod::lanczos : probe::EigenMethod::power;
  return probe::top_eigenpairs(h.as_operator(), options).eigenvalues;
}

// Hutchinson's estimate of the trace of that Hessian with PyHessian's stopping rule.
inline probe::TraceResult hessian_trace(nn::Module& model, const Tensor& inputs, const Tensor& targets) {
  probe::FixedBatch batch(inputs, targets);
  probe::HessianOperator h(model, batch);
  return probe::hutchinson(h.as_operator(), {});
}

}  // namespace dmix
