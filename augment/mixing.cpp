// Batch mixing: the method's draws from the Generator (in the order mixing.h lists) and
// the geometry that follows from them are made on the host for a batch on either device
// and written down as a MixPlan: per output sample, which images it is made of, with what
// blend weights or boxes, and its label components. The pixel work then runs where the
// batch lives: the loops below on the CPU (samples are independent once the plan is made,
// so they run in parallel without changing any result), kernels/cuda/mixing.h on a GPU.
// Both compute each pixel by the same operations (a copy, or the same chain of rounded
// products and fused multiply-adds), so a CPU and a CUDA batch mixed from the same
// generator state come out identical. Soft targets are built on the host from the plan.
#include "augment/mixing.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "engine/autograd.h"
#include "engine/error.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/mixing.h"
#include "kernels/cuda/runtime.h"

namespace dmix::augment {
namespace {

constexpr const char* kOp = "mix_batch";
// Below this many floats (a CIFAR batch of 64 is 0.2M) a batch is mixed on one thread:
// the copies take well under a millisecond, less than waking a thread team on a busy machine.
constexpr int64_t kParallelFloats = int64_t{1} << 20;

std::string canonical(const std::string& name) {
  std::string s = name;
  for (char& c : s) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Checks the inputs and options; returns the labels, read on the host.
std::vector<int64_t> validate(const Tensor& images, const Tensor& labels, const Tensor& indices, int64_t num_classes,
                              const MixOptions& o) {
  check(images.defined() && labels.defined(), kOp, "images and labels must be defined");
  check(images.dtype() == DType::f32 && images.dim() == 4, kOp, "images must be f32 (B, C, H, W), got ",
        images.str());
  // Labels and indices are B numbers read on the host: on the CPU (as the loader gives
  // them) or on the images' device.
  const Device device = images.device();
  check((labels.is_cpu() || labels.device() == device) && (!indices.defined() || indices.is_cpu() ||
                                                            indices.device() == device),
        kOp, "labels and indices must be on the CPU or on the images' device, got images ", images.str(),
        ", labels ", labels.str(), indices.defined() ? ", indices " + indices.str() : std::string());
  const int64_t B = images.size(0);
  check(labels.dtype() == DType::i64 && labels.shape() == Shape{B}, kOp, "labels must be i64 (", B, "), got ",
        labels.str());
  check(!indices.defined() || (indices.dtype() == DType::i64 && indices.shape() == Shape{B}), kOp,
        "indices must be i64 (", B, ") or undefined, got ", indices.defined() ? indices.str() : "");
  check(num_classes > 0, kOp, "num_classes must be > 0, got ", num_classes);
  std::vector<int64_t> lab = labels.to_vector<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    check(lab[static_cast<size_t>(b)] >= 0 && lab[static_cast<size_t>(b)] < num_classes, kOp, "label ",
          lab[static_cast<size_t>(b)], " of sample ", b, " is outside [0, ", num_classes, ")");
  check(o.prob >= 0.0 && o.prob <= 1.0, kOp, "prob must be in [0, 1], got ", o.prob);
  check(o.label_smoothing >= 0.0 && o.label_smoothing < 1.0, kOp, "label_smoothing must be in [0, 1), got ",
        o.label_smoothing);
  const bool uses_alpha = o.method == MixMethod::Mixup || o.method == MixMethod::CutMix ||
                          o.method == MixMethod::DMixup || o.method == MixMethod::DCutMix ||
                          o.method == MixMethod::SaliencyDCutMix;
  check(!uses_alpha || (std::isfinite(o.alpha) && o.alpha > 0.0), kOp, mix_method_name(o.method),
        " needs alpha > 0, got ", o.alpha);
  const bool k_images = o.method == MixMethod::DMixup || o.method == MixMethod::DCutMix ||
                        o.method == MixMethod::SaliencyDCutMix;
  check(!k_images || o.k >= 2, kOp, mix_method_name(o.method), " needs k >= 2 images, got ", o.k);
  check(o.method != MixMethod::Cutout || o.cutout_length >= 0, kOp, "cutout_length must be >= 0, got ",
        o.cutout_length);
  if (o.method == MixMethod::SaliencyDCutMix) {
    const int64_t C = images.size(1);
    check(C == 1 || C == 3, kOp, "saliency needs 1 or 3 channels, got images ", images.str());
    check(o.mean.size() == o.std.size() && (o.mean.empty() || static_cast<int64_t>(o.mean.size()) == C), kOp,
          "mean and std must both be empty or have ", C, " entries, got ", o.mean.size(), " and ", o.std.size());
  }
  return lab;
}

// Copies box `box` of every channel of src into the same place in dst (both C x H x W);
// a null src pastes zeros.
void paste_box(const float* src, float* dst, int64_t C, int64_t H, int64_t W, const PatchBox& box) {
  if (box.height <= 0 || box.width <= 0) return;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = box.top; y < box.top + box.height; ++y) {
      const int64_t at = (c * H + y) * W + box.left;
      if (src)
        std::memcpy(dst + at, src + at, static_cast<size_t>(box.width) * sizeof(float));
      else
        std::fill_n(dst + at, box.width, 0.0f);
    }
}

std::vector<int64_t> draw_permutation(Generator& gen, int64_t B) { return gen.randperm(B).to_vector<int64_t>(); }

// Shared by DCutMix and Saliency-DCutMix: sizes from the stick fractions, position from
// place(k, parent, height, width) -> (top, left).
template <class Place>
std::vector<PatchBox> nested_boxes(const std::vector<double>& pi, int64_t H, int64_t W, Place&& place) {
  check(H > 0 && W > 0, "dcutmix_boxes", "image size must be positive, got ", H, " x ", W);
  const std::vector<double> v = stick_fractions(pi);
  std::vector<PatchBox> boxes;
  boxes.reserve(v.size());
  PatchBox parent{0, 0, H, W};
  for (size_t k = 0; k < v.size(); ++k) {
    // A stick used up by earlier proportions can give v > 1: the box collapses to nothing.
    const double scale = std::sqrt(std::max(1.0 - v[k], 0.0));
    // nearbyint rounds half to even in the default rounding mode, as numpy's round.
    const int64_t h = std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(parent.height * scale)), 0, parent.height);
    const int64_t w = std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(parent.width * scale)), 0, parent.width);
    const auto [top, left] = place(k, parent, h, w);
    PatchBox child{top, left, h, w};
    boxes.push_back(child);
    parent = child;
  }
  return boxes;
}

// Uniform integer in [0, n] from u in [0, 1).
int64_t uniform_offset(double u, int64_t n) {
  return std::clamp<int64_t>(static_cast<int64_t>(std::floor(u * static_cast<double>(n + 1))), 0, n);
}

}  // namespace

MixMethod parse_mix_method(const std::string& name) {
  const std::string s = canonical(name);
  if (s == "none") return MixMethod::None;
  if (s == "cutout") return MixMethod::Cutout;
  if (s == "mixup") return MixMethod::Mixup;
  if (s == "cutmix") return MixMethod::CutMix;
  if (s == "dmixup") return MixMethod::DMixup;
  if (s == "dcutmix") return MixMethod::DCutMix;
  if (s == "saliency-dcutmix") return MixMethod::SaliencyDCutMix;
  fail("mix", "unknown method '", name, "' (expected none, cutout, mixup, cutmix, dmixup, dcutmix or saliency-dcutmix)");
}

const char* mix_method_name(MixMethod method) {
  switch (method) {
    case MixMethod::None: return "none";
    case MixMethod::Cutout: return "cutout";
    case MixMethod::Mixup: return "mixup";
    case MixMethod::CutMix: return "cutmix";
    case MixMethod::DMixup: return "dmixup";
    case MixMethod::DCutMix: return "dcutmix";
    case MixMethod::SaliencyDCutMix: return "saliency-dcutmix";
  }
  return "?";
}

std::vector<double> stick_fractions(const std::vector<double>& pi) {
  check(!pi.empty(), "stick_fractions", "needs at least one proportion");
  std::vector<double> v;
  if (pi.size() < 2) return v;
  v.reserve(pi.size() - 1);
  double remaining = 1.0;  // the analytic stick left, 1 - sum of the proportions so far
  for (size_t k = 0; k + 1 < pi.size(); ++k) {
    const double fraction = k == 0 ? pi[0] : pi[k] / (remaining + 1e-10);
    remaining *= 1.0 - fraction;
    v.push_back(fraction);
  }
  return v;
}

std::vector<PatchBox> dcutmix_boxes(const std::vector<double>& pi, int64_t H, int64_t W,
                                    const std::vector<double>& offset_uniforms) {
  check(!pi.empty(), "dcutmix_boxes", "needs at least one proportion");
  check(offset_uniforms.size() == 2 * (pi.size() - 1), "dcutmix_boxes", "needs 2 (K - 1) = ", 2 * (pi.size() - 1),
        " offset draws, got ", offset_uniforms.size());
  return nested_boxes(pi, H, W, [&](size_t k, const PatchBox& parent, int64_t h, int64_t w) {
    // Uniform placement only when the box is smaller than its parent in both directions.
    if (h < parent.height && w < parent.width)
      return std::pair<int64_t, int64_t>{parent.top + uniform_offset(offset_uniforms[2 * k], parent.height - h),
                                         parent.left + uniform_offset(offset_uniforms[2 * k + 1], parent.width - w)};
    return std::pair<int64_t, int64_t>{parent.top, parent.left};
  });
}

std::vector<PatchBox> saliency_dcutmix_boxes(const std::vector<double>& pi, int64_t H, int64_t W,
                                             const std::vector<std::pair<int64_t, int64_t>>& peaks) {
  check(!pi.empty(), "saliency_dcutmix_boxes", "needs at least one proportion");
  check(peaks.size() == pi.size() - 1, "saliency_dcutmix_boxes", "needs K - 1 = ", pi.size() - 1, " peaks, got ",
        peaks.size());
  return nested_boxes(pi, H, W, [&](size_t k, const PatchBox& parent, int64_t h, int64_t w) {
    const auto [row, col] = peaks[k];
    return std::pair<int64_t, int64_t>{
        std::clamp<int64_t>(row - h / 2, parent.top, parent.top + parent.height - h),
        std::clamp<int64_t>(col - w / 2, parent.left, parent.left + parent.width - w)};
  });
}

std::vector<double> ring_weights(const std::vector<PatchBox>& boxes, int64_t H, int64_t W) {
  check(H > 0 && W > 0, "ring_weights", "image size must be positive, got ", H, " x ", W);
  const double total = static_cast<double>(H * W);
  std::vector<double> w;
  w.reserve(boxes.size() + 1);
  int64_t outer = H * W;
  for (const PatchBox& box : boxes) {
    w.push_back(static_cast<double>(outer - box.area()) / total);
    outer = box.area();
  }
  w.push_back(static_cast<double>(outer) / total);
  return w;
}

PatchBox centred_clipped_box(int64_t H, int64_t W, int64_t cut_h, int64_t cut_w, int64_t cy, int64_t cx) {
  const int64_t top = std::clamp<int64_t>(cy - cut_h / 2, 0, H), bottom = std::clamp<int64_t>(cy + cut_h / 2, 0, H);
  const int64_t left = std::clamp<int64_t>(cx - cut_w / 2, 0, W), right = std::clamp<int64_t>(cx + cut_w / 2, 0, W);
  return {top, left, bottom - top, right - left};
}

Tensor smooth_targets(const Tensor& targets, double epsilon) {
  const char* op = "smooth_targets";
  check(targets.defined() && targets.is_cpu() && targets.dim() == 2 &&
            (targets.dtype() == DType::f32 || targets.dtype() == DType::f64),
        op, "expects f32 or f64 (N, C) targets on the CPU, got ", targets.defined() ? targets.str() : "undefined");
  check(epsilon >= 0.0 && epsilon < 1.0, op, "epsilon must be in [0, 1), got ", epsilon);
  Tensor out = Tensor::empty(targets.shape(), targets.dtype());
  const double uniform = epsilon / static_cast<double>(targets.size(1));
  const int64_t n = targets.numel();
  if (targets.dtype() == DType::f32) {
    const float* src = targets.data<float>();
    float* dst = out.data<float>();
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>((1.0 - epsilon) * src[i] + uniform);
  } else {
    const double* src = targets.data<double>();
    double* dst = out.data<double>();
    for (int64_t i = 0; i < n; ++i) dst[i] = (1.0 - epsilon) * src[i] + uniform;
  }
  return out;
}

namespace {

// What one batch's draws decided, for either device.
struct MixPlan {
  bool mixed = false;
  // How the pixels of output sample b are made from its K sources source[b K + k]:
  //   Copy   K = 1, the sample itself;
  //   Blend  out = w_0 x_0, then out = fma(w_k, x_k, out) for k = 1 .. K-1, in float, with
  //          w = weight[b K ..] (kernels/cuda/mixing.h: mix_blend);
  //   Paste  source 0, then box j of boxes[b (K-1) + j] pasted from source j + 1 over it,
  //          for j = 0 .. K-2 in order; source -1 is an all-zero image (mix_paste).
  enum class Pixels { Copy, Blend, Paste } pixels = Pixels::Copy;
  int64_t K = 1;
  std::vector<int64_t> source;
  std::vector<float> weight;
  std::vector<PatchBox> boxes;
  // Per sample, the label components, anchor first: (batch position, weight).
  std::vector<std::vector<std::pair<int64_t, double>>> parts;
};

// Saliency peak (row, column) of every image of the batch, on the host copy `src`: each
// permutation of Saliency-DCutMix uses all of them.
std::vector<std::pair<int64_t, int64_t>> saliency_peaks(const float* src, int64_t B, int64_t C, int64_t H, int64_t W,
                                                        const MixOptions& o) {
  const int64_t CHW = C * H * W, HW = H * W;
  std::vector<std::pair<int64_t, int64_t>> peak(static_cast<size_t>(B));
#pragma omp parallel for schedule(dynamic) if (B > 1)
  for (int64_t b = 0; b < B; ++b) {
    // Saliency looks at the picture, not at the normalised network input.
    std::vector<float> plain(src + b * CHW, src + (b + 1) * CHW);
    if (!o.mean.empty())
      for (int64_t c = 0; c < C; ++c) {
        const float scale = o.std[static_cast<size_t>(c)], shift = o.mean[static_cast<size_t>(c)];
        for (int64_t i = 0; i < HW; ++i) plain[static_cast<size_t>(c * HW + i)] = plain[static_cast<size_t>(c * HW + i)] * scale + shift;
      }
    peak[static_cast<size_t>(b)] = argmax_pixel(saliency_map(o.detector, plain.data(), C, H, W), H, W);
  }
  return peak;
}

// The draws, in the order mixing.h lists, and everything that follows from them.
// host_images() gives the batch on the host; only Saliency-DCutMix calls it.
template <class HostImages>
MixPlan plan_mix(const MixOptions& o, int64_t B, int64_t C, int64_t H, int64_t W, Generator& gen,
                 HostImages&& host_images) {
  const int64_t HW = H * W;
  MixPlan plan;
  plan.parts.resize(static_cast<size_t>(B));
  auto part = [&](int64_t b) -> std::vector<std::pair<int64_t, double>>& { return plan.parts[static_cast<size_t>(b)]; };

  plan.mixed = o.method != MixMethod::None && gen.uniform_scalar() < o.prob;
  if (!plan.mixed) {
    for (int64_t b = 0; b < B; ++b) {
      plan.source.push_back(b);
      part(b) = {{b, 1.0}};
    }
  } else if (o.method == MixMethod::Cutout) {
    const std::vector<int64_t> rows = gen.randint({B}, 0, H).to_vector<int64_t>();
    const std::vector<int64_t> cols = gen.randint({B}, 0, W).to_vector<int64_t>();
    plan.pixels = MixPlan::Pixels::Paste;
    plan.K = 2;
    for (int64_t b = 0; b < B; ++b) {
      plan.source.insert(plan.source.end(), {b, -1});
      plan.boxes.push_back(centred_clipped_box(H, W, o.cutout_length, o.cutout_length, rows[static_cast<size_t>(b)],
                                               cols[static_cast<size_t>(b)]));
      part(b) = {{b, 1.0}};
    }
  } else if (o.method == MixMethod::Mixup) {
    const double lam = gen.beta_scalar(o.alpha, o.alpha);
    const std::vector<int64_t> perm = draw_permutation(gen, B);
    plan.pixels = MixPlan::Pixels::Blend;
    plan.K = 2;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t other = perm[static_cast<size_t>(b)];
      // Pixels as fma(lam, x, (1 - lam) x[perm]): the partner's product is rounded first.
      plan.source.insert(plan.source.end(), {other, b});
      plan.weight.insert(plan.weight.end(), {static_cast<float>(1.0 - lam), static_cast<float>(lam)});
      part(b) = {{b, lam}, {other, 1.0 - lam}};
    }
  } else if (o.method == MixMethod::CutMix) {
    const double lam = gen.beta_scalar(o.alpha, o.alpha);
    const std::vector<int64_t> perm = draw_permutation(gen, B);
    const int64_t cy = gen.randint({1}, 0, H).to_vector<int64_t>()[0];
    const int64_t cx = gen.randint({1}, 0, W).to_vector<int64_t>()[0];
    const double cut = std::sqrt(1.0 - lam);
    const int64_t cut_h = static_cast<int64_t>(std::floor(static_cast<double>(H) * cut));
    const int64_t cut_w = static_cast<int64_t>(std::floor(static_cast<double>(W) * cut));
    const PatchBox box = centred_clipped_box(H, W, cut_h, cut_w, cy, cx);
    // The label follows the pixels actually pasted, not the drawn lambda (CutMix issue #1).
    const double pasted = static_cast<double>(box.area()) / static_cast<double>(HW);
    plan.pixels = MixPlan::Pixels::Paste;
    plan.K = 2;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t other = perm[static_cast<size_t>(b)];
      plan.source.insert(plan.source.end(), {b, other});
      plan.boxes.push_back(box);
      part(b) = {{b, 1.0 - pasted}, {other, pasted}};
    }
  } else {
    // DMixup, DCutMix, Saliency-DCutMix: K-1 shared permutations, per-sample proportions.
    const int64_t K = o.k;
    std::vector<std::vector<int64_t>> perms;
    for (int64_t k = 0; k + 1 < K; ++k) perms.push_back(draw_permutation(gen, B));
    const std::vector<double> pi_all =
        gen.dirichlet(B, std::vector<double>(static_cast<size_t>(K), o.alpha), DType::f64).to_vector<double>();
    // Batch position of image k of sample b: the anchor, then sigma_{k-1}(b).
    auto source = [&](int64_t b, int64_t k) { return k == 0 ? b : perms[static_cast<size_t>(k - 1)][static_cast<size_t>(b)]; };
    auto proportions = [&](int64_t b) {
      return std::vector<double>(pi_all.begin() + b * K, pi_all.begin() + (b + 1) * K);
    };
    plan.K = K;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < K; ++k) plan.source.push_back(source(b, k));

    std::vector<std::vector<double>> weights(static_cast<size_t>(B));
    if (o.method == MixMethod::DMixup) {
      plan.pixels = MixPlan::Pixels::Blend;
      for (int64_t b = 0; b < B; ++b) {
        weights[static_cast<size_t>(b)] = proportions(b);
        for (double p : weights[static_cast<size_t>(b)]) plan.weight.push_back(static_cast<float>(p));
      }
    } else if (o.method == MixMethod::DCutMix) {
      const std::vector<double> offsets = gen.uniform({K - 1, B, 2}, 0.0, 1.0, DType::f64).to_vector<double>();
      plan.pixels = MixPlan::Pixels::Paste;
      for (int64_t b = 0; b < B; ++b) {
        std::vector<double> u(static_cast<size_t>(2 * (K - 1)));
        for (int64_t k = 0; k + 1 < K; ++k)
          for (int64_t j = 0; j < 2; ++j)
            u[static_cast<size_t>(2 * k + j)] = offsets[static_cast<size_t>((k * B + b) * 2 + j)];
        const std::vector<PatchBox> boxes = dcutmix_boxes(proportions(b), H, W, u);
        plan.boxes.insert(plan.boxes.end(), boxes.begin(), boxes.end());
        weights[static_cast<size_t>(b)] = ring_weights(boxes, H, W);
      }
    } else {
      const std::vector<std::pair<int64_t, int64_t>> peak = saliency_peaks(host_images(), B, C, H, W, o);
      plan.pixels = MixPlan::Pixels::Paste;
      for (int64_t b = 0; b < B; ++b) {
        std::vector<std::pair<int64_t, int64_t>> peaks;
        for (int64_t k = 1; k < K; ++k) peaks.push_back(peak[static_cast<size_t>(source(b, k))]);
        const std::vector<PatchBox> boxes = saliency_dcutmix_boxes(proportions(b), H, W, peaks);
        plan.boxes.insert(plan.boxes.end(), boxes.begin(), boxes.end());
        weights[static_cast<size_t>(b)] = ring_weights(boxes, H, W);
      }
    }
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < K; ++k)
        part(b).push_back({source(b, k), weights[static_cast<size_t>(b)][static_cast<size_t>(k)]});
  }
  return plan;
}

// The plan's pixels for a batch on the CPU: src and dst (B, C, H, W), not overlapping.
void mix_pixels_cpu(const MixPlan& plan, const float* src, float* dst, int64_t B, int64_t C, int64_t H, int64_t W) {
  const int64_t CHW = C * H * W, K = plan.K;
  const bool parallel = B * CHW >= kParallelFloats;
  auto image = [&](int64_t b, int64_t k) -> const float* {
    const int64_t s = plan.source[static_cast<size_t>(b * K + k)];
    return s < 0 ? nullptr : src + s * CHW;
  };
  switch (plan.pixels) {
    case MixPlan::Pixels::Copy:
      std::memcpy(dst, src, static_cast<size_t>(B * CHW) * sizeof(float));
      break;
    case MixPlan::Pixels::Blend:
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t b = 0; b < B; ++b) {
        float* d = dst + b * CHW;
        const float* w = plan.weight.data() + b * K;
        const float* s0 = image(b, 0);
        for (int64_t i = 0; i < CHW; ++i) d[i] = w[0] * s0[i];
        // std::fma, not a * b + c: the rounding is then the one the CUDA kernel does,
        // whatever the compiler would have contracted.
        for (int64_t k = 1; k < K; ++k) {
          const float wk = w[k];
          const float* s = image(b, k);
          for (int64_t i = 0; i < CHW; ++i) d[i] = std::fma(wk, s[i], d[i]);
        }
      }
      break;
    case MixPlan::Pixels::Paste:
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t b = 0; b < B; ++b) {
        float* d = dst + b * CHW;
        const float* anchor = image(b, 0);
        if (anchor)
          std::memcpy(d, anchor, static_cast<size_t>(CHW) * sizeof(float));
        else
          std::fill_n(d, CHW, 0.0f);
        for (int64_t j = 0; j + 1 < K; ++j)
          paste_box(image(b, j + 1), d, C, H, W, plan.boxes[static_cast<size_t>(b * (K - 1) + j)]);
      }
      break;
  }
}

// Writes the batch `images` mixed as `plan` says into out (same shape and device); on a
// CUDA device with one small upload of the plan's table and one kernel.
void mix_pixels(const MixPlan& plan, const Tensor& images, const Tensor& out) {
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  const float* src = images.data<float>();
  float* dst = out.data<float>();
  if constexpr (kernels::cuda::kBuilt) {
    if (images.is_cuda()) {
      const int64_t CHW = C * H * W, K = plan.K;
      const int device = images.device().index;
      switch (plan.pixels) {
        case MixPlan::Pixels::Copy:
          kernels::cuda::copy_device_to_device(dst, src, static_cast<size_t>(B * CHW) * sizeof(float), device);
          break;
        case MixPlan::Pixels::Blend:
          kernels::cuda::mix_blend(src, B, CHW, K, plan.source.data(), plan.weight.data(), dst, device);
          break;
        case MixPlan::Pixels::Paste: {
          std::vector<int64_t> boxes;
          boxes.reserve(plan.boxes.size() * 4);
          for (const PatchBox& box : plan.boxes) boxes.insert(boxes.end(), {box.top, box.left, box.height, box.width});
          kernels::cuda::mix_paste(src, B, C, H, W, K, plan.source.data(), boxes.data(), dst, device);
          break;
        }
      }
      return;
    }
  }
  mix_pixels_cpu(plan, src, dst, B, C, H, W);
}

}  // namespace

MixedBatch mix_batch(const Tensor& images, const Tensor& labels, const Tensor& indices, int64_t num_classes,
                     const MixOptions& o, Generator& gen) {
  const std::vector<int64_t> label = validate(images, labels, indices, num_classes, o);
  autograd::NoGradGuard no_grad;
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  std::vector<int64_t> index(static_cast<size_t>(B));
  if (indices.defined()) {
    index = indices.to_vector<int64_t>();
  } else {
    for (int64_t b = 0; b < B; ++b) index[static_cast<size_t>(b)] = b;
  }

  // Saliency is computed on the host (augment/saliency.h): a CUDA batch is copied over
  // for it, and only for it.
  Tensor host_copy;
  auto host_images = [&]() -> const float* {
    if (images.is_cpu()) return images.data<float>();
    if (!host_copy.defined()) host_copy = images.to(Device::cpu());
    return host_copy.data<float>();
  };
  const MixPlan plan = plan_mix(o, B, C, H, W, gen, host_images);

  MixedBatch out;
  out.mixed = plan.mixed;
  out.images = Tensor::empty(images.shape(), DType::f32, images.device());
  mix_pixels(plan, images, out.images);

  out.components.resize(static_cast<size_t>(B));
  std::vector<double> soft(static_cast<size_t>(B * num_classes), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (const auto& [position, weight] : plan.parts[static_cast<size_t>(b)]) {
      const MixComponent m{index[static_cast<size_t>(position)], label[static_cast<size_t>(position)], weight};
      out.components[static_cast<size_t>(b)].push_back(m);
      soft[static_cast<size_t>(b * num_classes + m.label)] += m.weight;
    }
  Tensor targets = Tensor::empty({B, num_classes}, DType::f32);
  float* t = targets.data<float>();
  const double e = o.label_smoothing, floor_value = e / static_cast<double>(num_classes);
  for (size_t i = 0; i < soft.size(); ++i) t[i] = static_cast<float>((1.0 - e) * soft[i] + floor_value);
  out.targets = images.is_cuda() ? targets.to(images.device()) : targets;
  return out;
}

}  // namespace dmix::augment
