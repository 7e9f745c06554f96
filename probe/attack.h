// Adversarial attacks on a classifier seen as a differentiable function of its input in
// [0, 1] pixel space, following torchattacks' conventions (v3.5.1) and Croce & Hein's APGD
// (2020, the attack at the heart of AutoAttack):
//
//   FGSM      x' = clip01(x + eps * sign(g))                                  (fgsm.cpp)
//   PGD L-inf from x + U[-eps, eps] (clipped to [0, 1]), `steps` times:
//             x' = clip01(x + clip(x' + step * sign(g) - x, -eps, eps))      (pgd.cpp)
//   PGD L2    from x + delta * r * eps / |delta|, delta ~ N(0, I), r ~ U[0, 1] (torchattacks'
//             start, which is not uniform in the ball), `steps` times:
//             x' = clip01(x + P(x' + step * g / |g| - x)), P scaling to norm <= eps
//   APGD-CE   L-inf, step size 2 eps halved per sample at checkpoints where fewer than 75%
//             of the steps since the last one raised the loss, or where the step was not
//             halved last time and the best loss has not improved since; momentum 0.75;
//             the iterate falls back to the best point when the step is halved    (apgd.cpp)
//
// with g the gradient of the mean cross-entropy at the labels (targeted: of minus the
// cross-entropy at the target classes, so the attack walks towards them). Every iterate
// stays in the eps-ball around x and in [0, 1]; eps and step are in pixel units.
// Restarts (every attack but FGSM) rerun the attack, from a new random start, on the points
// no run has fooled yet, as AutoAttack does; APGD attacks only points the model classifies
// correctly (or, targeted, not yet as their target), the others are returned unchanged.
//
// The model is an AttackModel: "x -> (loss, dloss/dx)". NormalizedModel wraps an nn::Module
// whose training used per-channel normalisation: (x - mean) / std is part of the graph, the
// model is in eval mode, and its parameters stop requiring grad while the wrapper lives, so
// each backward computes the input gradient only (no weight gradients): both are put back
// by its destructor. Everything is tensor ops on the model's device (CPU or CUDA); random
// starts come from the Philox Generator passed in, so results are reproducible for a seed.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "augment/loader.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "nn/module.h"
#include "probe/hvp.h"

namespace dmix::probe {

// ---- the model as the attacks see it ----

struct LossGradient {
  Tensor loss;      // scalar: the mean cross-entropy at the labels (no graph)
  Tensor gradient;  // d loss / d x, shaped like x
  Tensor logits;    // (N, classes), no graph
};

class AttackModel {
 public:
  virtual ~AttackModel() = default;
  // Logits of pixel-space images x (N, C, H, W), without a graph.
  virtual Tensor logits(const Tensor& x) = 0;
  // The mean cross-entropy of x's logits at `labels` (i64 (N)) and its gradient in x.
  virtual LossGradient loss_gradient(const Tensor& x, const Tensor& labels) = 0;
  // Where the attack's tensors live.
  virtual Device device() const = 0;
};

class NormalizedModel : public AttackModel {
 public:
  // mean and std: one value per input channel, applied as (x - mean) / std inside the graph;
  // both empty: the model takes [0, 1] pixels as they are. Keeps a reference to `model`.
  NormalizedModel(nn::Module& model, std::vector<float> mean, std::vector<float> stdev);
  ~NormalizedModel() override;
  NormalizedModel(const NormalizedModel&) = delete;
  NormalizedModel& operator=(const NormalizedModel&) = delete;

  Tensor logits(const Tensor& x) override;
  LossGradient loss_gradient(const Tensor& x, const Tensor& labels) override;
  Device device() const override { return device_; }
  const std::vector<float>& channel_mean() const { return mean_; }
  const std::vector<float>& channel_std() const { return std_; }

 private:
  Tensor forward(const Tensor& x);

  nn::Module& model_;
  std::vector<float> mean_, std_;
  Device device_;
  bool was_training_;
  std::vector<Tensor> frozen_;  // parameters that required grad before
};

// ---- attacks ----

enum class AttackKind { fgsm, pgd, pgd_l2, apgd_ce };
// "fgsm", "pgd", "pgd-l2", "apgd-ce" (and back); an unknown name is a dmix::Error listing them.
AttackKind parse_attack_kind(const std::string& name);
std::string attack_name(AttackKind kind);

struct AttackOptions {
  AttackKind kind = AttackKind::pgd;
  double eps = 8.0 / 255.0;   // radius of the ball, pixel units: L-inf, or L2 over the whole image
  double step = 2.0 / 255.0;  // PGD's step (FGSM steps eps; APGD sets its own)
  int64_t steps = 10;         // PGD's and APGD's iterations
  bool random_start = true;   // PGD; FGSM has none, APGD always starts at a random point
  int64_t restarts = 1;       // runs on the points still unfooled; restarts > 1 needs a random start
  bool targeted = false;      // the labels are then target classes, which the attack walks towards
};

// Each attack's defaults: torchattacks' for FGSM (eps 8/255), PGD (8/255, 2/255, 10 steps,
// random start) and PGDL2 (eps 1.0, step 0.2, 10 steps, random start); AutoAttack's standard
// setting for APGD-CE (eps 8/255, 100 iterations, 1 restart; torchattacks' APGD takes 10).
AttackOptions default_attack_options(AttackKind kind);

// A one-line dmix::Error for options no attack can run with: eps outside [0, 1], a step
// that is not positive, no iteration, restarts < 1 or restarts without a random start.
void check_attack_options(const AttackOptions& options);

// Adversarial images for x (N, C, H, W) in [0, 1] (round-off up to 1e-6 outside is clipped;
// more is an error) and labels (i64 (N); target classes when options.targeted), on the
// model's device, in x's dtype. `gen` draws the random starts.
Tensor attack(AttackModel& model, const Tensor& x, const Tensor& labels, const AttackOptions& options, Generator& gen);

// One run of each attack, without the checks and restarts of attack().
Tensor fgsm(AttackModel& model, const Tensor& x, const Tensor& labels, const AttackOptions& options);
Tensor pgd_linf(AttackModel& model, const Tensor& x, const Tensor& labels, const AttackOptions& options,
                Generator& gen);
Tensor pgd_l2(AttackModel& model, const Tensor& x, const Tensor& labels, const AttackOptions& options, Generator& gen);
// Returns, per sample, the last iterate that fooled the model (misclassified it, or targeted:
// classified it as its target), else the iterate of the highest loss. AutoAttack returns
// the clean image for the unfooled ones; its robust accuracy is the same either way.
Tensor apgd_ce(AttackModel& model, const Tensor& x, const Tensor& labels, const AttackOptions& options, Generator& gen);

// The building blocks the attacks share, for one's own variants.
// The gradient the attack ascends: of the mean cross-entropy at the labels, or (targeted)
// of minus it at the targets; logits and loss (the cross-entropy itself) come along.
LossGradient objective_gradient(AttackModel& model, const Tensor& x, const Tensor& labels, bool targeted);
// clip01(x + clip(v - x, -eps, eps)): v brought back into the L-inf ball around x and [0, 1].
Tensor project_linf(const Tensor& v, const Tensor& x, double eps);
// clip01(x + d * min(1, eps / |d|)), d = v - x and |d| the L2 norm of each sample.
Tensor project_l2(const Tensor& v, const Tensor& x, double eps);
// The L2 norm of each sample of x (N, ...), shaped (N, 1, ..., 1) to broadcast against it.
Tensor sample_norms(const Tensor& x);
// Per-sample cross-entropy of logits (N, classes) at labels (N), on the host, in double.
std::vector<double> per_sample_cross_entropy(const Tensor& logits, const Tensor& labels);
// Whether the attack has reached its goal for each sample: misclassified, or (targeted)
// classified as its target.
std::vector<bool> fooled(const Tensor& logits, const Tensor& labels, bool targeted);

// ---- evaluation over batches ----

// A fixed set of images and labels, handed out `batch` samples at a time.
class TensorBatches : public BatchSource {
 public:
  TensorBatches(Tensor images, Tensor labels, int64_t batch);
  void start() override { next_ = 0; }
  bool next(augment::Batch& out) override;

 private:
  Tensor images_, labels_;
  int64_t batch_, next_ = 0;
};

// Counts on one model; errors in percent, as `dmix eval` reports them.
struct ErrorCounts {
  int64_t images = 0, top1_wrong = 0, top5_wrong = 0;  // top-5: top-k, k = min(5, classes)
  int64_t target_hits = 0;                             // targeted attacks: classified as the target
  double top1_error() const;
  double top5_error() const;
  double target_hit_rate() const;
};

struct AttackEvaluation {
  ErrorCounts clean;        // the evaluated model on the clean images
  ErrorCounts adversarial;  // on the images crafted on the crafting model
};

struct TransferOptions {
  AttackOptions attack;
  uint64_t seed = 0;          // each crafting model draws its random starts from Generator(seed)
  int64_t target_class = -1;  // targeted: this class for every image; -1: a random other class per image
  // Called once per batch and crafting model with the clean batch (pixel space), the
  // adversarial images and the labels the attack used (the targets when targeted).
  std::function<void(size_t crafter, const augment::Batch& clean, const Tensor& adversarial,
                     const Tensor& attack_labels)>
      on_batch;
  std::function<void(int64_t images_done)> progress;
};

// Crafts adversarial images on each model of `crafters` and evaluates every model of
// `evaluated` on them: result[c][e]. With the same model in both lists, [c][c] is the
// white-box figure and the others are transfer (gray- or black-box) figures. Random
// targets are drawn once per image, the same for every crafter.
std::vector<std::vector<AttackEvaluation>> transfer_evaluation(const std::vector<AttackModel*>& crafters,
                                                               const std::vector<AttackModel*>& evaluated,
                                                               BatchSource& batches, const TransferOptions& options);

// White-box: the model attacked and evaluated on its own adversarial images.
AttackEvaluation evaluate_attack(AttackModel& model, BatchSource& batches, const TransferOptions& options);

}  // namespace dmix::probe
