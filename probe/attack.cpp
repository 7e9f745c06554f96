// What the attacks share (attack.h): the model seen as x -> (loss, dloss/dx) with its
// normalisation inside the graph, the projections, the checks, and the restarts loop.
#include "probe/attack.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"

namespace dmix::probe {

NormalizedModel::NormalizedModel(nn::Module& model, std::vector<float> mean, std::vector<float> stdev)
    : model_(model),
      mean_(std::move(mean)),
      std_(std::move(stdev)),
      device_(model.device()),
      was_training_(model.training()) {
  check(mean_.size() == std_.size(), "attack", "the normalisation has ", mean_.size(), " means but ", std_.size(),
        " standard deviations");
  for (float s : std_) check(s > 0 && std::isfinite(s), "attack", "a normalisation std must be positive, got ", s);
  model_.eval();
  for (auto& [name, p] : model_.named_parameters())
    if (p.requires_grad()) {
      frozen_.push_back(p);
      Tensor(p).set_requires_grad(false);
    }
}

NormalizedModel::~NormalizedModel() {
  for (Tensor& p : frozen_) p.set_requires_grad(true);
  model_.train(was_training_);
}

Tensor NormalizedModel::forward(const Tensor& x) {
  check(x.dim() == 4, "attack", "images must be (N, C, H, W), got ", x.str());
  if (mean_.empty()) return model_(x);
  const int64_t c = static_cast<int64_t>(mean_.size());
  check(x.size(1) == c, "attack", "the normalisation has ", c, " channels but the images ", x.size(1), " (", x.str(),
        ")");
  const Tensor mean = Tensor::from_vector(mean_, {1, c, 1, 1}).to(x.dtype()).to(x.device());
  const Tensor std = Tensor::from_vector(std_, {1, c, 1, 1}).to(x.dtype()).to(x.device());
  return model_((x - mean) / std);
}

Tensor NormalizedModel::logits(const Tensor& x) {
  autograd::NoGradGuard no_grad;
  return forward(x.to(device_));
}

LossGradient NormalizedModel::loss_gradient(const Tensor& x, const Tensor& labels) {
  autograd::EnableGradGuard grad_on;
  Tensor input = x.to(device_).detach().clone().set_requires_grad();
  const Tensor logits = forward(input);
  const Tensor loss = cross_entropy(logits, labels.to(device_));
  LossGradient r;
  r.gradient = autograd::grad({loss}, {input})[0];
  r.loss = loss.detach();
  r.logits = logits.detach();
  return r;
}

AttackKind parse_attack_kind(const std::string& name) {
  for (AttackKind k : {AttackKind::fgsm, AttackKind::pgd, AttackKind::pgd_l2, AttackKind::apgd_ce})
    if (attack_name(k) == name) return k;
  fail("attack", "unknown attack '", name, "': fgsm, pgd, pgd-l2 or apgd-ce");
}

std::string attack_name(AttackKind kind) {
  switch (kind) {
    case AttackKind::fgsm: return "fgsm";
    case AttackKind::pgd: return "pgd";
    case AttackKind::pgd_l2: return "pgd-l2";
    case AttackKind::apgd_ce: return "apgd-ce";
  }
  return "?";
}

AttackOptions default_attack_options(AttackKind kind) {
  AttackOptions o;
  o.kind = kind;
  switch (kind) {
    case AttackKind::fgsm:
      o.steps = 1;
      o.step = o.eps;
      o.random_start = false;
      break;
    case AttackKind::pgd: break;
    case AttackKind::pgd_l2:
      o.eps = 1.0;
      o.step = 0.2;
      break;
    case AttackKind::apgd_ce:
      o.steps = 100;
      o.step = 2 * o.eps;  // its first step; the algorithm halves it per sample
      break;
  }
  return o;
}

void check_attack_options(const AttackOptions& o) {
  const std::string name = attack_name(o.kind);
  // An L2 radius is over the whole image and may exceed 1 (ImageNet's is often 3).
  if (o.kind == AttackKind::pgd_l2)
    check(o.eps >= 0 && std::isfinite(o.eps), "attack", "eps must be zero or more, got ", o.eps);
  else
    check(o.eps >= 0 && o.eps <= 1, "attack", "eps must lie in [0, 1] (pixel units), got ", o.eps);
  check((o.kind != AttackKind::pgd && o.kind != AttackKind::pgd_l2) || (o.step > 0 && std::isfinite(o.step)), "attack",
        name, ": the step must be positive, got ", o.step);
  check(o.steps >= 1, "attack", name, ": steps must be at least 1, got ", o.steps);
  check(o.restarts >= 1, "attack", name, ": restarts must be at least 1, got ", o.restarts);
  check(o.restarts == 1 || o.kind == AttackKind::apgd_ce || (o.kind != AttackKind::fgsm && o.random_start), "attack",
        name, ": restarts need a random start (each run would repeat the first)");
}

LossGradient objective_gradient(AttackModel& model, const Tensor& x, const Tensor& labels, bool targeted) {
  LossGradient r = model.loss_gradient(x, labels);
  if (targeted) r.gradient = neg(r.gradient);
  return r;
}

Tensor project_linf(const Tensor& v, const Tensor& x, double eps) {
  return clamp(x + clamp(v - x, -eps, eps), 0.0, 1.0);
}

Tensor sample_norms(const Tensor& x) {
  Shape keep(static_cast<size_t>(x.dim()), 1);
  keep[0] = x.size(0);
  return sqrt(sum((x * x).reshape({x.size(0), -1}), {1})).reshape(keep);
}

Tensor project_l2(const Tensor& v, const Tensor& x, double eps) {
  const Tensor d = v - x;
  const Tensor norms = sample_norms(d);
  // min(eps / |d|, 1), without the 0 / 0 of a zero step at eps = 0.
  const Tensor factor = where(greater_scalar(norms, eps), Tensor::scalar(eps, norms.dtype(), norms.device()) / norms,
                              Tensor::ones({1}, norms.dtype(), norms.device()));
  return clamp(x + d * factor, 0.0, 1.0);
}

namespace {

// The class a row of logits predicts: the largest, the lower index on ties (as top-k counts).
int64_t top1(const float* row, int64_t classes) {
  int64_t best = 0;
  for (int64_t c = 1; c < classes; ++c)
    if (row[c] > row[best]) best = c;
  return best;
}

}  // namespace

std::vector<double> per_sample_cross_entropy(const Tensor& logits, const Tensor& labels) {
  const Tensor l = logits.detach().to(Device::cpu()).to(DType::f32);
  const std::vector<int64_t> y = labels.to(Device::cpu()).to_vector<int64_t>();
  const int64_t n = l.size(0), k = l.size(1);
  const float* p = l.data<float>();
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = p + i * k;
    const double mx = *std::max_element(row, row + k);
    double s = 0;
    for (int64_t c = 0; c < k; ++c) s += std::exp(double(row[c]) - mx);
    out[i] = mx + std::log(s) - double(row[y[i]]);
  }
  return out;
}

std::vector<bool> fooled(const Tensor& logits, const Tensor& labels, bool targeted) {
  const Tensor l = logits.detach().to(Device::cpu()).to(DType::f32);
  const std::vector<int64_t> y = labels.to(Device::cpu()).to_vector<int64_t>();
  const int64_t n = l.size(0), k = l.size(1);
  std::vector<bool> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const bool predicted = top1(l.data<float>() + i * k, k) == y[i];
    out[i] = targeted ? predicted : !predicted;
  }
  return out;
}

namespace {

Tensor run_once(AttackModel& model, const Tensor& x, const Tensor& labels, const AttackOptions& o, Generator& gen) {
  switch (o.kind) {
    case AttackKind::fgsm: return fgsm(model, x, labels, o);
    case AttackKind::pgd: return pgd_linf(model, x, labels, o, gen);
    case AttackKind::pgd_l2: return pgd_l2(model, x, labels, o, gen);
    case AttackKind::apgd_ce: return apgd_ce(model, x, labels, o, gen);
  }
  fail("attack", "unknown attack kind");
}

// A u8 mask (N, 1, ..., 1) of the rows to take, on `device`.
Tensor row_mask(const std::vector<bool>& rows, int64_t dims, Device device) {
  std::vector<uint8_t> m(rows.begin(), rows.end());
  Shape shape(static_cast<size_t>(dims), 1);
  shape[0] = static_cast<int64_t>(m.size());
  return Tensor::from_vector(m, shape).to(device);
}

// x in [0, 1], allowing the round-off of un-normalised images (torchattacks #136), which is clipped.
Tensor checked_pixels(const Tensor& x) {
  check(x.dim() == 4 && x.size(0) > 0, "attack", "images must be a non-empty (N, C, H, W) batch, got ", x.str());
  check(x.dtype() == DType::f32 || x.dtype() == DType::f64, "attack", "images must be f32 or f64, got ", x.str());
  const Tensor flat = x.detach().reshape({-1});
  const double hi = max(flat, 0).values.item(), lo = -max(neg(flat), 0).values.item();
  constexpr double kRoundOff = 1e-6;
  check(lo >= -kRoundOff && hi <= 1 + kRoundOff, "attack", "images must be pixels in [0, 1], got values in [", lo, ", ",
        hi, "] (un-normalise them first: the model's normalisation is applied inside the attack)");
  return clamp(x.detach(), 0.0, 1.0);
}

}  // namespace

Tensor attack(AttackModel& model, const Tensor& images, const Tensor& labels, const AttackOptions& o, Generator& gen) {
  check_attack_options(o);
  const Device device = model.device();
  const Tensor x = checked_pixels(images).to(device);
  check(labels.dtype() == DType::i64 && labels.dim() == 1 && labels.size(0) == x.size(0), "attack",
        "labels must be i64 (", x.size(0), "), got ", labels.str());
  const Tensor y = labels.to(device);
  const int64_t n = x.size(0);
  // torchattacks' attacks run on every point; AutoAttack's APGD only on those not already fooled.
  std::vector<bool> done(static_cast<size_t>(n), false);
  if (o.kind == AttackKind::apgd_ce) done = fooled(model.logits(x), y, o.targeted);
  if (o.restarts == 1 && o.kind != AttackKind::apgd_ce) return run_once(model, x, y, o, gen);

  Tensor adv = x;
  std::vector<double> best_loss(static_cast<size_t>(n), -std::numeric_limits<double>::infinity());
  for (int64_t r = 0; r < o.restarts; ++r) {
    std::vector<int64_t> todo;
    for (int64_t i = 0; i < n; ++i)
      if (!done[i]) todo.push_back(i);
    if (todo.empty()) break;
    const Tensor index = Tensor::from_vector(todo, {static_cast<int64_t>(todo.size())}).to(device);
    const Tensor xs = index_select(x, 0, index), ys = index_select(y, 0, index);
    const Tensor run = run_once(model, xs, ys, o, gen);
    const Tensor logits = model.logits(run);
    const std::vector<bool> now = fooled(logits, ys, o.targeted);
    const std::vector<double> loss = per_sample_cross_entropy(logits, ys);
    // Fooled points keep what fooled them; the others the run of the highest loss so far
    // (targeted: the lowest loss at the target).
    std::vector<bool> take(static_cast<size_t>(n), false);
    for (size_t j = 0; j < todo.size(); ++j) {
      const size_t i = static_cast<size_t>(todo[j]);
      const double score = o.targeted ? -loss[j] : loss[j];
      if (now[j] || score > best_loss[i]) {
        take[i] = true;
        best_loss[i] = score;
      }
      if (now[j]) done[i] = true;
    }
    adv = where(row_mask(take, x.dim(), device), index_add(run, 0, index, n), adv);
  }
  return adv;
}

}  // namespace dmix::probe
