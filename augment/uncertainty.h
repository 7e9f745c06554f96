// Sample-wise uncertainty from K-image mixing (the paper's §III-C, Eq. 8, Fig. 2): for every
// anchor image x_i, M DCutMix composites in which the anchor keeps a fixed share phi_i and
// the K-1 non-anchor shares are re-drawn from the conditional Dirichlet D(alpha \ alpha_i)
// scaled by 1 - phi_i, with random partners and box positions; the soft-label
// cross-entropy of each composite under a given model gives the loss distribution
// L_i = {L_i,m}; its mean m, standard deviation sigma and coefficient of variation
// CV = sigma / m are the scores subsampling ranks by (augment/subsample.h).
//
// Defaults follow shared/reference/reference-setups.md §1.10 / §9.3: M = 10, K = 3 (two
// non-anchor images), alpha \ alpha_i = {2/9, 2/9}, phi_i = 1/3 (not stated by the paper;
// 2/9 = (1/3)(2/3) suggests it).
//
// Where the anchor sits: depth 0, the outer ring, by default. DCutMix nests the images so
// that depth 0 is the unshuffled batch (the anchor of the training code and of Algorithm 1)
// and every later image is pasted inside the previous box; the paper's uncertainty reuses
// that composite with the anchor's share held fixed, so the anchor stays the outer image
// and the occluding patches of the partners move over it (Fig. 2: "the randomly selected
// position of occlusion caused by non-anchor image patches"). anchor_depth = d puts the
// anchor at depth d instead (d = K-1: the innermost patch) for experiments.
//
// The geometry is DCutMix's own (augment/mixing.h): stick_fractions of the proportions,
// dcutmix_boxes for the nested boxes (round-half-to-even sides, uniform integer offsets
// inside the parent), ring_weights for the label weights, which are the realised pixel
// fractions. Partners are drawn uniformly, with replacement, from the scored pool without
// the anchor itself (a partner may appear at two depths, as in DCutMix).
//
// Reproducibility: the draws of anchor i are a pure function of (seed, dataset index of
// i, pool size, anchor position in the pool), read from Philox streams of their own
// (anchor_draws below), so scores do not depend on batch size, thread count or the order
// anchors are scored in; composites are then identical bit for bit, and the losses equal
// up to the float rounding of the model's batched arithmetic.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "augment/datasets.h"
#include "augment/mixing.h"
#include "augment/transforms.h"
#include "nn/module.h"

namespace dmix::augment {

struct UncertaintyOptions {
  int64_t draws = 10;               // M: composites per anchor (>= 2 for a standard deviation)
  double anchor_share = 1.0 / 3.0;  // phi_i, in (0, 1)
  double alpha = 2.0 / 9.0;         // concentration of each non-anchor image in D(alpha \ alpha_i)
  int64_t k = 3;                    // images per composite: the anchor and k - 1 partners (>= 2)
  int64_t anchor_depth = 0;         // 0: the outer ring, as DCutMix's anchor; up to k - 1
  uint64_t seed = 0;
  int64_t batch_size = 256;  // composites per forward pass (whole anchors: max(1, batch / M))
  bool keep_losses = false;  // fill SampleUncertainty::losses with the M losses
  // Called after every forward pass with (anchors scored, anchors in all).
  std::function<void(int64_t, int64_t)> progress;
};

// Checks the options (throws dmix::Error naming the bad one).
void validate(const UncertaintyOptions& options);

// One composite of an anchor.
struct AnchorDraw {
  std::vector<int64_t> sources;  // K dataset indices by depth (the anchor at anchor_depth)
  std::vector<double> shares;    // K proportions: phi_i at the anchor, (1 - phi_i) D(alpha \ alpha_i) elsewhere
  std::vector<PatchBox> boxes;   // K-1 nested boxes (dcutmix_boxes of `shares`)
  std::vector<double> weights;   // K label weights (ring_weights): the pixel fraction of each depth
};

// The M composites of anchor pool[position] in an H x W image, partners from the rest of
// `pool` (dataset indices, no repeats; at least 2). Philox streams keyed by (seed, anchor's
// dataset index): the shares (Dirichlet row m), the box offsets (row m) and the partners
// (row m) of draw m, so draw m does not depend on M either.
std::vector<AnchorDraw> anchor_draws(const std::vector<int64_t>& pool, int64_t position, int64_t H, int64_t W,
                                     const UncertaintyOptions& options);

// Writes the composites of `draws` into out (draws.size(), C, H, W): depth 0's image, then
// box j pasted from depth j + 1's image at the same coordinates. image(i) gives dataset
// image i as C x H x W floats.
void render_composites(const std::vector<AnchorDraw>& draws, const std::function<const float*(int64_t)>& image,
                       int64_t C, int64_t H, int64_t W, float* out);

// The soft-label cross-entropy -sum_c y_c log softmax(logits)_c of one composite, with
// y = sum_k weight_k onehot(label of source k) (weights of a shared class add up).
// logits: num_classes floats; labels: every dataset label.
double composite_loss(const AnchorDraw& draw, const int64_t* labels, const float* logits, int64_t num_classes);

// Mean, standard deviation (population: divided by M, as numpy's std; the ranking within
// a class is the same for M - 1) and CV = std / mean (0 when the mean is 0).
struct LossSummary {
  double mean = 0.0, std = 0.0, cv = 0.0;
};
LossSummary summarize_losses(const std::vector<double>& losses);

struct SampleUncertainty {
  int64_t index = 0;  // dataset index of the anchor
  int64_t label = 0;  // its class
  double mean = 0.0, std = 0.0, cv = 0.0;
  std::vector<double> losses;  // the M losses, when UncertaintyOptions::keep_losses
};

// The uncertainty of every image of `pool` (dataset indices; empty: the whole dataset),
// partners drawn from the same pool. Images go through `pipeline`, which must be
// deterministic (an evaluation pipeline: no random crop, flip, jitter or lighting). The
// model runs in eval mode with autograd off on its own device (composites are made on the
// host and moved there) and is left in the mode it came in. Results are in pool order.
std::vector<SampleUncertainty> score_uncertainty(nn::Module& model, const Dataset& dataset, const Pipeline& pipeline,
                                                 const std::vector<int64_t>& pool, const UncertaintyOptions& options);

// ---- helpers shared with augment/subsample.h ----

// pool, or 0..N-1 when empty; validated against the dataset.
std::vector<int64_t> resolve_pool(const Dataset& dataset, const std::vector<int64_t>& pool);

// Puts a module tree back in the training mode it had (every module, also those whose own
// flag was set meanwhile) when it goes out of scope.
class TrainingModeGuard {
 public:
  explicit TrainingModeGuard(nn::Module& model) : model_(model), training_(model.training()) {}
  ~TrainingModeGuard() { model_.train(training_); }
  TrainingModeGuard(const TrainingModeGuard&) = delete;
  TrainingModeGuard& operator=(const TrainingModeGuard&) = delete;

 private:
  nn::Module& model_;
  bool training_;
};

// Throws dmix::Error unless the pipeline draws nothing (the same image on every call).
void require_deterministic(const Pipeline& pipeline, const char* op);

// Dataset images through a deterministic pipeline, prepared a list at a time.
class PreparedImages {
 public:
  PreparedImages(const Dataset& dataset, const Pipeline& pipeline);
  // Prepares the images of `indices` (duplicates allowed) in parallel, replacing the last set.
  void prepare(const std::vector<int64_t>& indices);
  const float* image(int64_t index) const;  // one of the last prepared; C x H x W floats
  int64_t channels() const { return C_; }
  int64_t height() const { return out_h_; }
  int64_t width() const { return out_w_; }
  // The images of `indices` as one f32 (n, C, H, W) CPU tensor.
  Tensor batch(const std::vector<int64_t>& indices);

 private:
  const Dataset& dataset_;
  const Pipeline& pipeline_;
  int64_t C_ = 0, H_ = 0, W_ = 0, out_h_ = 0, out_w_ = 0;
  std::vector<int64_t> slot_;  // dataset index -> row of pixels_, -1 when not prepared
  std::vector<int64_t> held_;  // dataset indices with a slot
  std::vector<float> pixels_;
};

}  // namespace dmix::augment
