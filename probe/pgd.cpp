// Projected gradient descent (Madry et al. 2018) in torchattacks' two forms (pgd.py, pgdl2.py):
//   L-inf: start at clip01(x + U[-eps, eps]); each step x' += step * sign(g), then back into
//          the eps-box around x and into [0, 1];
//   L2:    start at clip01(x + eps * r * d / |d|), d ~ N(0, I), r ~ U[0, 1] per sample; each
//          step x' += step * g / (|g| + 1e-10), then the perturbation is scaled down to norm
//          eps if longer, and the image clipped to [0, 1].
// Norms are per sample, over all its pixels. Cost: `steps` forward and input-only backward
// passes.
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "probe/attack.h"

namespace dmix::probe {

Tensor pgd_linf(AttackModel& model, const Tensor& x, const Tensor& labels, const AttackOptions& o, Generator& gen) {
  Tensor adv = x;
  if (o.random_start) adv = clamp(x + gen.uniform(x.shape(), -o.eps, o.eps, x.dtype(), x.device()), 0.0, 1.0);
  for (int64_t s = 0; s < o.steps; ++s) {
    const Tensor g = objective_gradient(model, adv, labels, o.targeted).gradient;
    adv = project_linf(adv + o.step * sign(g), x, o.eps);
  }
  return adv;
}

Tensor pgd_l2(AttackModel& model, const Tensor& x, const Tensor& labels, const AttackOptions& o, Generator& gen) {
  Tensor adv = x;
  if (o.random_start) {
    const Tensor d = gen.normal(x.shape(), 0.0, 1.0, x.dtype(), x.device());
    const Tensor norms = sample_norms(d);
    const Tensor r = gen.uniform(norms.shape(), 0.0, 1.0, x.dtype(), x.device());
    adv = clamp(x + d * (r / norms * o.eps), 0.0, 1.0);
  }
  for (int64_t s = 0; s < o.steps; ++s) {
    const Tensor g = objective_gradient(model, adv, labels, o.targeted).gradient;
    adv = project_l2(adv + o.step * (g / (sample_norms(g) + 1e-10)), x, o.eps);
  }
  return adv;
}

}  // namespace dmix::probe
