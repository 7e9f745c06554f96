// FGSM (Goodfellow et al. 2015) as torchattacks computes it: one step of eps along the sign
// of the input gradient, clipped to [0, 1]; no random start. Cost: one forward and one
// input-only backward pass.
#include "engine/ops/elementwise.h"
#include "probe/attack.h"

namespace dmix::probe {

Tensor fgsm(AttackModel& model, const Tensor& x, const Tensor& labels, const AttackOptions& o) {
  const Tensor g = objective_gradient(model, x, labels, o.targeted).gradient;
  return clamp(x + o.eps * sign(g), 0.0, 1.0);
}

}  // namespace dmix::probe
