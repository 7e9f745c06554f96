// Adversarial attacks (probe/): FGSM, PGD (L-inf and L2) and APGD-CE on a model seen as a
// differentiable function of [0, 1] pixels, with its per-channel normalisation inside the
// graph and the model in eval mode, following torchattacks' and AutoAttack's conventions;
// targeted variants, restarts, and clean / robust / transferred error rates over batches.
// Namespace dmix::probe; the call below is the shortcut for one batch.
//
//   dmix::probe::NormalizedModel m(*model, {0.286f}, {0.353f});   // Fashion-MNIST's normalisation
//   auto opts = dmix::probe::default_attack_options(dmix::probe::AttackKind::pgd);  // 8/255, 2/255, 10
//   dmix::Generator gen(seed);
//   dmix::Tensor adv = dmix::probe::attack(m, images, labels, opts, gen);         // images in [0, 1]
//   dmix::probe::TensorBatches batches(images, labels, 256);                      // or LoaderBatches
//   auto e = dmix::probe::evaluate_attack(m, batches, {opts});   // e.clean / e.adversarial .top1_error()
#pragma once
#include <cstdint>
#include <vector>

#include "engine/rng.h"
#include "nn/module.h"
#include "probe/attack.h"

namespace dmix {

// Adversarial images for pixel-space `images` (N, C, H, W) in [0, 1] with labels (N), crafted
// on `model` normalised with mean / std per channel (both empty: none), by the attack of
// `options` with random starts drawn from a Generator seeded with `seed`.
inline Tensor adversarial_examples(nn::Module& model, const Tensor& images, const Tensor& labels,
                                   const std::vector<float>& mean, const std::vector<float>& stdev,
                                   const probe::AttackOptions& options = {}, uint64_t seed = 0) {
  probe::NormalizedModel m(model, mean, stdev);
  Generator gen(seed);
  return probe::attack(m, images, labels, options, gen);
}

}  // namespace dmix
