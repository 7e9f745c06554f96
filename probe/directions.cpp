// The two directions of a 2-D loss surface: the top-2 Hessian eigenvectors (PyHessian's
// recipe, the paper's Fig. 3a) or two Gaussian directions with Li et al.'s filter
// normalisation (landscape.h says how each is scaled).
#include <utility>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "probe/landscape.h"

namespace dmix::probe {

namespace {

// Each slice along dim 0 of d rescaled to the norm of the same slice of w (Li et al.'s
// normalize_direction with norm='filter'; the 1e-10 keeps an all-zero slice finite).
Tensor filter_normalized(const Tensor& d, const Tensor& w) {
  const int64_t rows = w.size(0);
  const Tensor d2 = d.reshape({rows, -1});
  const Tensor w2 = w.detach().reshape({rows, -1});
  const Tensor w_norm = sqrt(sum(w2 * w2, {1}, /*keepdim=*/true));
  const Tensor d_norm = sqrt(sum(d2 * d2, {1}, /*keepdim=*/true)) + 1e-10;
  return (d2 * (w_norm / d_norm)).reshape(w.shape());
}

}  // namespace

DirectionPair eigen_directions(nn::Module& model, BatchSource& batches, const EigenDirectionOptions& options) {
  HessianOperator h(model, batches, options.hessian);
  EigenOptions eo = options.eigen;
  eo.k = 2;
  check(h.size() >= 2, "landscape", "a surface along two eigenvectors needs 2 parameters, the model has ", h.size());
  if (eo.method == EigenMethod::lanczos && h.size() <= 2) eo.method = EigenMethod::power;
  EigenResult r = top_eigenpairs(h.as_operator(), eo);
  check(r.eigenvectors.size() == 2, "landscape", "only ", r.eigenvectors.size(),
        " of the top 2 Hessian eigenpairs converged (raise the solver's max_iterations or tol)");
  if (r.eigenvalues[1] > r.eigenvalues[0]) {  // power iteration gives them in the order found
    std::swap(r.eigenvalues[0], r.eigenvalues[1]);
    std::swap(r.eigenvectors[0], r.eigenvectors[1]);
  }
  DirectionPair out;
  out.names = h.parameter_names();
  out.d1 = h.unflatten(r.eigenvectors[0]);
  out.d2 = h.unflatten(r.eigenvectors[1]);
  out.eigenvalues = r.eigenvalues;
  out.hvps = h.hvp_count();
  return out;
}

DirectionPair random_directions(const nn::Module& model, const RandomDirectionOptions& options) {
  const NamedParameters params = selected_parameters(model, options.parameters);
  Generator gen(options.seed);
  DirectionPair out;
  out.names = params.names;
  autograd::NoGradGuard no_grad;
  for (TensorList* d : {&out.d1, &out.d2})
    for (const Tensor& w : params.tensors) {
      Tensor draw = gen.normal(w.shape(), 0.0, 1.0, w.dtype(), w.device());
      if (options.filter_normalize)
        draw = w.dim() >= 2 ? filter_normalized(draw, w) : Tensor::zeros(w.shape(), w.dtype(), w.device());
      d->push_back(draw);
    }
  return out;
}

}  // namespace dmix::probe
