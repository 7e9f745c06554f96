// APGD-CE, L-inf (Croce & Hein, ICML 2020; fra31/auto-attack, autopgd_base.py,
// APGDAttack.attack_single_run): gradient ascent on the cross-entropy whose step size needs
// no tuning.
//
//   start   x0 = clip01(x + eps * t / max|t|), t ~ U[-1, 1] per pixel
//   step    z = P(x_k + eta * sign(g_k)); x_{k+1} = P(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1})),
//           a = 1 at the first iteration, 0.75 after (momentum); P clips to the eps-box around
//           x, then to [0, 1]
//   eta     2 eps per sample at first; at checkpoints spaced k = 0.22 N iterations apart at
//           first, shrinking by 0.03 N per checkpoint down to 0.06 N, a sample's eta is halved
//           and its iterate (and gradient) go back to its best point when fewer than 75% of
//           the steps since the last checkpoint raised its loss, or when eta was not halved
//           at the last checkpoint and the best loss has not improved since.
//
// Per-sample bookkeeping (losses, step sizes, who is fooled) lives on the host, N numbers
// per iteration; the images stay on the model's device and change through masks. Cost: N
// forward and input-only backward passes; memory: six image batches.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "probe/attack.h"

namespace dmix::probe {

namespace {

Tensor mask(const std::vector<bool>& rows, const Tensor& like) {
  std::vector<uint8_t> m(rows.begin(), rows.end());
  Shape shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = static_cast<int64_t>(m.size());
  return Tensor::from_vector(m, shape).to(like.device());
}

// Per-sample values as a (N, 1, ..., 1) tensor that broadcasts against `like`.
Tensor per_sample(const std::vector<double>& v, const Tensor& like) {
  Shape shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = static_cast<int64_t>(v.size());
  return Tensor::from_vector(v, shape).to(like.dtype()).to(like.device());
}

// min(max(v, x - eps), x + eps), then clip to [0, 1], as autopgd_base.py writes it.
Tensor clip_box(const Tensor& v, const Tensor& lo, const Tensor& hi) {
  Tensor out = where(greater(lo, v), lo, v);
  out = where(greater(out, hi), hi, out);
  return clamp(out, 0.0, 1.0);
}

}  // namespace

Tensor apgd_ce(AttackModel& model, const Tensor& x, const Tensor& labels, const AttackOptions& o, Generator& gen) {
  const int64_t n = x.size(0), iterations = o.steps;
  const auto at_least_one = [](double v) { return std::max<int64_t>(static_cast<int64_t>(v), 1); };
  int64_t interval = at_least_one(0.22 * double(iterations));
  const int64_t min_interval = at_least_one(0.06 * double(iterations));
  const int64_t interval_decrease = at_least_one(0.03 * double(iterations));
  constexpr double kRho = 0.75;
  // The objective the attack maximises, per sample: CE, or minus CE at the target.
  const auto objective = [&](const LossGradient& r) {
    std::vector<double> l = per_sample_cross_entropy(r.logits, labels);
    if (o.targeted)
      for (double& v : l) v = -v;
    return l;
  };

  const Tensor lo = x - o.eps, hi = x + o.eps;
  const Tensor t = gen.uniform(x.shape(), -1.0, 1.0, x.dtype(), x.device());
  const Tensor t_max = max(abs(t).reshape({n, -1}), 1).values.reshape(sample_norms(t).shape());
  Tensor x_adv = clamp(x + o.eps * (t / (t_max + 1e-12)), 0.0, 1.0);

  LossGradient r = objective_gradient(model, x_adv, labels, o.targeted);
  Tensor grad = r.gradient, grad_best = grad;
  Tensor x_best = x_adv, x_best_adv = x_adv, x_old = x_adv;
  std::vector<double> loss = objective(r), loss_best = loss;
  std::vector<bool> ever_fooled = fooled(r.logits, labels, o.targeted);
  std::vector<double> step(static_cast<size_t>(n), 2.0 * o.eps);

  std::vector<double> loss_best_last_check = loss_best;
  std::vector<bool> reduced_last_check(static_cast<size_t>(n), true);
  // autopgd_base.py compares the first loss with a row of zeros (loss_steps[-1]).
  std::vector<double> previous_loss(static_cast<size_t>(n), 0.0);
  std::vector<int64_t> increases(static_cast<size_t>(n), 0);
  int64_t since_check = 0;

  for (int64_t i = 0; i < iterations; ++i) {
    const Tensor momentum = x_adv - x_old;
    x_old = x_adv;
    const double a = i > 0 ? 0.75 : 1.0;
    const Tensor z = clip_box(x_adv + per_sample(step, x) * sign(grad), lo, hi);
    x_adv = clip_box(x_adv + (z - x_adv) * a + momentum * (1.0 - a), lo, hi);

    r = objective_gradient(model, x_adv, labels, o.targeted);
    grad = r.gradient;
    loss = objective(r);
    const std::vector<bool> now = fooled(r.logits, labels, o.targeted);
    std::vector<bool> improved(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      if (now[j]) ever_fooled[j] = true;
      increases[j] += loss[j] > previous_loss[j];
      previous_loss[j] = loss[j];
      improved[j] = loss[j] > loss_best[j];
      if (improved[j]) loss_best[j] = loss[j];
    }
    x_best_adv = where(mask(now, x), x_adv, x_best_adv);
    const Tensor better = mask(improved, x);
    x_best = where(better, x_adv, x_best);
    grad_best = where(better, grad, grad_best);

    if (++since_check < interval) continue;
    std::vector<bool> halve(static_cast<size_t>(n));
    bool any = false;
    for (int64_t j = 0; j < n; ++j) {
      const bool oscillating = double(increases[j]) <= double(interval) * kRho;
      const bool stalled = !reduced_last_check[j] && loss_best_last_check[j] >= loss_best[j];
      halve[j] = oscillating || stalled;
      if (halve[j]) step[j] /= 2.0;
      any = any || halve[j];
      reduced_last_check[j] = halve[j];
      loss_best_last_check[j] = loss_best[j];
      increases[j] = 0;
    }
    if (any) {
      const Tensor back = mask(halve, x);
      x_adv = where(back, x_best, x_adv);
      grad = where(back, grad_best, grad);
    }
    interval = std::max(interval - interval_decrease, min_interval);
    since_check = 0;
  }
  return where(mask(ever_fooled, x), x_best_adv, x_best);
}

}  // namespace dmix::probe
