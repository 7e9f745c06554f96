// Clean and adversarial error rates of models under an attack crafted on the same or other
// models (attack.h: transfer_evaluation), batch after batch.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/error.h"
#include "engine/ops/shape.h"
#include "nn/metrics.h"
#include "probe/attack.h"

namespace dmix::probe {

TensorBatches::TensorBatches(Tensor images, Tensor labels, int64_t batch)
    : images_(std::move(images)), labels_(std::move(labels)), batch_(batch) {
  check(batch_ > 0, "attack", "the batch size must be positive, got ", batch_);
  check(images_.dim() >= 1 && images_.size(0) > 0, "attack", "no images: ", images_.str());
  check(labels_.dim() == 1 && labels_.size(0) == images_.size(0), "attack", "images ", images_.str(), " and labels ",
        labels_.str(), " differ in count");
}

bool TensorBatches::next(augment::Batch& out) {
  const int64_t n = images_.size(0);
  if (next_ >= n) return false;
  const int64_t len = std::min(batch_, n - next_);
  out.images = narrow(images_, 0, next_, len);
  out.labels = narrow(labels_, 0, next_, len);
  out.indices = narrow(Tensor::arange(n), 0, next_, len);
  out.batch_index = next_ / batch_;
  next_ += len;
  return true;
}

namespace {

double percent(int64_t part, int64_t whole) { return whole > 0 ? 100.0 * double(part) / double(whole) : 0.0; }

void count(ErrorCounts& c, const Tensor& logits, const Tensor& labels, const Tensor& targets) {
  const int64_t n = labels.size(0), k = std::min<int64_t>(5, logits.size(1));
  c.images += n;
  c.top1_wrong += n - nn::count_topk_correct(logits, labels, 1);
  c.top5_wrong += n - nn::count_topk_correct(logits, labels, k);
  if (targets.defined()) c.target_hits += nn::count_topk_correct(logits, targets, 1);
}

// Targets for a batch: `fixed` for every image, or a uniformly drawn class other than the label.
Tensor draw_targets(const Tensor& labels, int64_t classes, int64_t fixed, Generator& gen) {
  const std::vector<int64_t> y = labels.to(Device::cpu()).to_vector<int64_t>();
  const int64_t n = static_cast<int64_t>(y.size());
  std::vector<int64_t> t(y.size(), fixed);
  if (fixed < 0) {
    const std::vector<int64_t> offset = gen.randint({n}, 1, classes).to_vector<int64_t>();
    for (int64_t i = 0; i < n; ++i) t[i] = (y[i] + offset[i]) % classes;
  }
  return Tensor::from_vector(t, {n});
}

}  // namespace

double ErrorCounts::top1_error() const { return percent(top1_wrong, images); }
double ErrorCounts::top5_error() const { return percent(top5_wrong, images); }
double ErrorCounts::target_hit_rate() const { return percent(target_hits, images); }

std::vector<std::vector<AttackEvaluation>> transfer_evaluation(const std::vector<AttackModel*>& crafters,
                                                               const std::vector<AttackModel*>& evaluated,
                                                               BatchSource& batches, const TransferOptions& o) {
  check(!crafters.empty() && !evaluated.empty(), "attack", "needs a model to craft on and a model to evaluate");
  check_attack_options(o.attack);
  check(o.attack.targeted || o.target_class < 0, "attack", "a target class needs a targeted attack");
  std::vector<std::vector<AttackEvaluation>> result(crafters.size(), std::vector<AttackEvaluation>(evaluated.size()));
  // Every crafter draws from its own generator, so a row does not depend on the others.
  std::vector<Generator> gens(crafters.size(), Generator(o.seed));
  constexpr uint64_t kTargetDomain = 0x3C6EF372FE94F82Bull;  // frac(sqrt(5)) bits: targets apart from starts
  Generator target_gen(o.seed ^ kTargetDomain);
  int64_t done = 0;
  batches.start();
  for (augment::Batch b; batches.next(b);) {
    const Tensor labels = b.labels.to(Device::cpu());
    check(labels.dtype() == DType::i64, "attack", "labels must be i64 class indices, got ", labels.str());
    Tensor targets;
    for (size_t e = 0; e < evaluated.size(); ++e) {
      const Tensor logits = evaluated[e]->logits(b.images);
      if (e == 0 && o.attack.targeted) {
        const int64_t classes = logits.size(1);
        check(o.target_class < classes, "attack", "target class ", o.target_class, " is outside [0, ", classes, ")");
        targets = draw_targets(labels, classes, o.target_class, target_gen);
      }
      for (auto& row : result) count(row[e].clean, logits, labels, targets);
    }
    const Tensor& attack_labels = o.attack.targeted ? targets : labels;
    for (size_t c = 0; c < crafters.size(); ++c) {
      const Tensor adv = attack(*crafters[c], b.images, attack_labels, o.attack, gens[c]);
      for (size_t e = 0; e < evaluated.size(); ++e)
        count(result[c][e].adversarial, evaluated[e]->logits(adv), labels, targets);
      if (o.on_batch) o.on_batch(c, b, adv, attack_labels);
    }
    done += labels.size(0);
    if (o.progress) o.progress(done);
  }
  check(done > 0, "attack", "the batches hold no image");
  return result;
}

AttackEvaluation evaluate_attack(AttackModel& model, BatchSource& batches, const TransferOptions& options) {
  return transfer_evaluation({&model}, {&model}, batches, options).at(0).at(0);
}

}  // namespace dmix::probe
