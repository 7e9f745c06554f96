// Batch-level mixing augmentations: Cutout, Mixup, CutMix, DMixup, DCutMix and
// Saliency-DCutMix (the K-image mixing paper, Algorithm 1, and the reference code
// described in shared/reference/reference-setups.md §1, §2.3, §4.6, §6).
//
// mix_batch() takes a normalised f32 batch (B, C, H, W) as the DataLoader delivers it and
// returns the mixed images with soft targets. Dims 2 and 3 are H (rows) and W (columns);
// every box is {top, left, height, width} in those terms. (The reference code calls dim 2
// "W" and dim 3 "H"; the geometry is the same, only the names differ.)
//
// Devices: the batch is mixed where it lives, on the CPU or a CUDA device. The draws below
// and the geometry are always made on the host from the Generator; on a GPU the pixels
// are then pasted and blended by kernels (kernels/cuda/mixing.h) after one small upload of
// the per-sample table, so the images never travel to the host and back, with one
// exception: Saliency-DCutMix computes its saliency maps on the host (augment/saliency.h),
// so a CUDA batch is copied to the host for that. Pixels are computed by the same
// operations on both devices (copies; blends as a fixed chain of rounded products and
// fused multiply-adds), so the same Generator state gives identical images, targets and
// components on the CPU and on a GPU.
//
// Randomness comes only from the Generator passed in, one stream per draw, in this order:
//   gate         uniform_scalar(); the batch is mixed iff u < prob (one draw per batch, as
//                the reference code does; drawn for every method but None, also when
//                prob is 1, so the stream count does not depend on prob)
//   Cutout       randint(B) rows, randint(B) columns: one centre per sample
//   Mixup        beta_scalar(alpha, alpha), randperm(B)
//   CutMix       beta_scalar(alpha, alpha), randperm(B), randint(1) row, randint(1) column
//   DMixup       randperm(B) for each depth 0..K-2, dirichlet(B, alpha 1_K) (f64)
//   DCutMix      as DMixup, then uniform({K-1, B, 2}) (f64): the offset draws of each box
//   Saliency-DCutMix  as DMixup (the boxes are placed by saliency, not drawn)
// When the gate says no, nothing else is drawn.
//
// Methods:
//   Cutout   (PC-DARTS): per sample, zero the square [c - L/2, c + L/2) around a uniform
//            centre, clipped at the border, on the normalised image. Labels unchanged.
//   Mixup    x = lam x + (1 - lam) x[perm], lam ~ Beta(alpha, alpha) per batch.
//   CutMix   one lam ~ Beta(alpha, alpha), one permutation and one box per batch: side
//            floor(S sqrt(1 - lam)), centre uniform, box [c - side/2, c + side/2) clipped;
//            the anchor's weight is recomputed from the real box area.
//   DMixup   per sample pi ~ Dirichlet(alpha 1_K); x = sum_k pi_k x[sigma_{k-1}] with
//            sigma_{-1} the identity and K-1 batch permutations; weights pi.
//   DCutMix  per sample pi ~ Dirichlet(alpha 1_K); stick fractions v_0 = pi_0,
//            v_k = pi_k / prod_{j<k}(1 - v_j) (the analytic remaining stick, + 1e-10);
//            nested boxes: box k has sides round-half-to-even(parent side sqrt(1 - v_k))
//            and a uniform integer offset inside the realised parent box (pinned to the
//            parent's corner when a side equals the parent's); depth k pastes the
//            co-located crop of the clean image sigma_k(b). Weights are the realised
//            integer ring areas / HW: exactly the pixel fractions, summing to 1.
//   Saliency-DCutMix  the same boxes and weights, but box k is centred on the most
//            salient pixel of its source image sigma_k(b) (saliency computed on the
//            unnormalised image, `mean`/`std` undone) and shifted to stay inside its parent.
//
// Soft targets: y = sum over components of weight * onehot(label), so weights of
// components that share a class accumulate; then, if label_smoothing e > 0,
// y = (1 - e) y + e / num_classes.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "augment/saliency.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace dmix::augment {

enum class MixMethod { None, Cutout, Mixup, CutMix, DMixup, DCutMix, SaliencyDCutMix };

// "none", "cutout", "mixup", "cutmix", "dmixup", "dcutmix", "saliency-dcutmix" (also with
// '_'); anything else is a dmix::Error listing the choices.
MixMethod parse_mix_method(const std::string& name);
const char* mix_method_name(MixMethod method);

struct MixOptions {
  MixMethod method = MixMethod::None;
  int64_t k = 3;               // images per sample for DMixup / DCutMix / Saliency-DCutMix (>= 2)
  double alpha = 1.0;          // Dirichlet concentration (D*), Beta(alpha, alpha) for Mixup / CutMix
  double prob = 1.0;           // probability that a batch is mixed
  int64_t cutout_length = 16;  // Cutout square side
  SaliencyDetector detector = SaliencyDetector::SpectralResidual;
  std::vector<float> mean, std;  // the batch's normalisation, undone for saliency; empty: none
  double label_smoothing = 0.0;  // applied to the soft targets, mixed or not
};

// One source image of a mixed sample.
struct MixComponent {
  int64_t index;   // dataset index of the source image (batch position when no indices given)
  int64_t label;   // its class
  double weight;   // its share of the sample's soft label (before label smoothing)
};

struct MixedBatch {
  Tensor images;   // f32 (B, C, H, W), normalised like the input (a new tensor on its device)
  Tensor targets;  // f32 (B, num_classes) soft labels, on the images' device
  // Per sample, in mixing order, anchor first: K entries for the K-image methods, 2 for
  // Mixup / CutMix, 1 (the sample itself, weight 1) for Cutout and unmixed batches. A
  // source image that appears at several depths has one entry per depth.
  std::vector<std::vector<MixComponent>> components;
  bool mixed = false;  // whether the gate let the method run
};

// images f32 (B, C, H, W) on the CPU or a CUDA device, labels i64 (B) in [0, num_classes),
// indices i64 (B) or undefined; labels and indices on the CPU or on the images' device
// (they are read on the host). The mixed images and the targets are on the images' device.
// Throws dmix::Error for bad shapes, dtypes, devices, labels or options.
MixedBatch mix_batch(const Tensor& images, const Tensor& labels, const Tensor& indices, int64_t num_classes,
                     const MixOptions& options, Generator& gen);

// (1 - epsilon) targets + epsilon / C for f32 or f64 targets (N, C); epsilon in [0, 1).
Tensor smooth_targets(const Tensor& targets, double epsilon);

// ---- geometry (public for tests and for the uncertainty scorer) ----

struct PatchBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
  int64_t area() const { return height * width; }
};

// The K-1 stick fractions v_0..v_{K-2} of the proportions pi (size K), as the reference does.
std::vector<double> stick_fractions(const std::vector<double>& pi);

// DCutMix's K-1 nested boxes in an H x W image for proportions pi. offset_uniforms holds
// 2 (K-1) values in [0, 1): the row and column offset draws of box 0, box 1, ...
std::vector<PatchBox> dcutmix_boxes(const std::vector<double>& pi, int64_t H, int64_t W,
                                    const std::vector<double>& offset_uniforms);

// Saliency-DCutMix's boxes: sizes as dcutmix_boxes; box k is centred on peaks[k] (row,
// column: top = row - height / 2) and shifted to lie inside box k-1 (the image for k = 0).
std::vector<PatchBox> saliency_dcutmix_boxes(const std::vector<double>& pi, int64_t H, int64_t W,
                                             const std::vector<std::pair<int64_t, int64_t>>& peaks);

// The K weights of nested boxes: (area(parent_k) - area(box_k)) / HW for k < K-1 (parent_0
// is the image), area(innermost) / HW for the last image.
std::vector<double> ring_weights(const std::vector<PatchBox>& boxes, int64_t H, int64_t W);

// [cy - cut_h/2, cy + cut_h/2) x [cx - cut_w/2, cx + cut_w/2) clipped to the image
// (CutMix's and Cutout's box).
PatchBox centred_clipped_box(int64_t H, int64_t W, int64_t cut_h, int64_t cut_w, int64_t cy, int64_t cx);

}  // namespace dmix::augment
