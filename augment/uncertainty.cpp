// Uncertainty scoring: per anchor, the draws from Philox streams of its own, the composites
// rendered on the host (anchors in parallel) a chunk of whole anchors at a time, one
// forward pass per chunk with autograd off, and the soft-label losses in double on the host.
#include "augment/uncertainty.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>

#include "augment/loader.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/rng.h"

namespace dmix::augment {
namespace {

constexpr const char* kOp = "score_uncertainty";
// Sets the anchors' streams apart from every other use of the same seed.
constexpr uint64_t kUncertaintyDomain = 0x3C6EF372FE94F82Bull;  // frac(sqrt(5)) bits
// Streams each anchor takes: shares, box offsets, partners.
constexpr uint64_t kStreamsPerAnchor = 3;

void paste(const float* src, float* dst, int64_t C, int64_t H, int64_t W, const PatchBox& box) {
  if (box.height <= 0 || box.width <= 0) return;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = box.top; y < box.top + box.height; ++y) {
      const int64_t at = (c * H + y) * W + box.left;
      std::memcpy(dst + at, src + at, static_cast<size_t>(box.width) * sizeof(float));
    }
}

}  // namespace

void validate(const UncertaintyOptions& o) {
  check(o.draws >= 2, kOp, "draws (M) must be >= 2 for a standard deviation, got ", o.draws);
  check(o.k >= 2, kOp, "k must be >= 2 (the anchor and at least one partner), got ", o.k);
  check(std::isfinite(o.anchor_share) && o.anchor_share > 0.0 && o.anchor_share < 1.0, kOp,
        "anchor_share must be in (0, 1), got ", o.anchor_share);
  check(std::isfinite(o.alpha) && o.alpha > 0.0, kOp, "alpha must be finite and > 0, got ", o.alpha);
  check(o.anchor_depth >= 0 && o.anchor_depth < o.k, kOp, "anchor_depth must be in [0, k - 1 = ", o.k - 1, "], got ",
        o.anchor_depth);
  check(o.batch_size >= 1, kOp, "batch_size must be >= 1, got ", o.batch_size);
}

std::vector<AnchorDraw> anchor_draws(const std::vector<int64_t>& pool, int64_t position, int64_t H, int64_t W,
                                     const UncertaintyOptions& o) {
  validate(o);
  const int64_t P = static_cast<int64_t>(pool.size());
  check(P >= 2, "anchor_draws", "the pool needs at least 2 images (the anchor and a partner), got ", P);
  check(position >= 0 && position < P, "anchor_draws", "position ", position, " is outside the pool [0, ", P, ")");
  const int64_t M = o.draws, K = o.k, anchor = pool[static_cast<size_t>(position)];
  check(anchor >= 0, "anchor_draws", "dataset index ", anchor, " is negative");

  Generator gen;
  gen.set_state(o.seed ^ kUncertaintyDomain, static_cast<uint64_t>(anchor) * kStreamsPerAnchor);
  const std::vector<double> rest =
      gen.dirichlet(M, std::vector<double>(static_cast<size_t>(K - 1), o.alpha), DType::f64).to_vector<double>();
  const std::vector<double> offsets = gen.uniform({M, 2 * (K - 1)}, 0.0, 1.0, DType::f64).to_vector<double>();
  const std::vector<int64_t> partner = gen.randint({M, K - 1}, 0, P - 1).to_vector<int64_t>();

  std::vector<AnchorDraw> draws(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) {
    AnchorDraw& d = draws[static_cast<size_t>(m)];
    d.sources.resize(static_cast<size_t>(K));
    d.shares.resize(static_cast<size_t>(K));
    for (int64_t k = 0, j = 0; k < K; ++k) {
      if (k == o.anchor_depth) {
        d.sources[static_cast<size_t>(k)] = anchor;
        d.shares[static_cast<size_t>(k)] = o.anchor_share;
        continue;
      }
      // Uniform over the pool without the anchor: skip its position.
      int64_t r = partner[static_cast<size_t>(m * (K - 1) + j)];
      if (r >= position) ++r;
      d.sources[static_cast<size_t>(k)] = pool[static_cast<size_t>(r)];
      d.shares[static_cast<size_t>(k)] = (1.0 - o.anchor_share) * rest[static_cast<size_t>(m * (K - 1) + j)];
      ++j;
    }
    const std::vector<double> u(offsets.begin() + m * 2 * (K - 1), offsets.begin() + (m + 1) * 2 * (K - 1));
    d.boxes = dcutmix_boxes(d.shares, H, W, u);
    d.weights = ring_weights(d.boxes, H, W);
  }
  return draws;
}

void render_composites(const std::vector<AnchorDraw>& draws, const std::function<const float*(int64_t)>& image,
                       int64_t C, int64_t H, int64_t W, float* out) {
  const int64_t CHW = C * H * W, n = static_cast<int64_t>(draws.size());
#pragma omp parallel for schedule(static) if (n * CHW >= (int64_t{1} << 18))
  for (int64_t i = 0; i < n; ++i) {
    const AnchorDraw& d = draws[static_cast<size_t>(i)];
    float* dst = out + i * CHW;
    std::memcpy(dst, image(d.sources[0]), static_cast<size_t>(CHW) * sizeof(float));
    for (size_t j = 0; j < d.boxes.size(); ++j) paste(image(d.sources[j + 1]), dst, C, H, W, d.boxes[j]);
  }
}

double composite_loss(const AnchorDraw& draw, const int64_t* labels, const float* logits, int64_t num_classes) {
  double top = logits[0];
  for (int64_t c = 1; c < num_classes; ++c) top = std::max<double>(top, logits[c]);
  double sum = 0.0;
  for (int64_t c = 0; c < num_classes; ++c) sum += std::exp(static_cast<double>(logits[c]) - top);
  const double log_sum = top + std::log(sum);
  double loss = 0.0;
  for (size_t k = 0; k < draw.sources.size(); ++k) {
    const int64_t label = labels[draw.sources[k]];
    loss += draw.weights[k] * (log_sum - static_cast<double>(logits[label]));
  }
  return loss;
}

LossSummary summarize_losses(const std::vector<double>& losses) {
  check(!losses.empty(), "summarize_losses", "needs at least one loss");
  const double n = static_cast<double>(losses.size());
  double sum = 0.0;
  for (double l : losses) sum += l;
  LossSummary s;
  s.mean = sum / n;
  double squares = 0.0;  // two passes: no cancellation when the spread is small next to the mean
  for (double l : losses) squares += (l - s.mean) * (l - s.mean);
  s.std = std::sqrt(squares / n);
  s.cv = s.mean != 0.0 ? s.std / s.mean : 0.0;
  return s;
}

// ---- images ----

std::vector<int64_t> resolve_pool(const Dataset& dataset, const std::vector<int64_t>& pool) {
  const int64_t N = dataset.size();
  check(dataset.labels.defined() && dataset.labels.dtype() == DType::i64 && dataset.labels.dim() == 1 &&
            dataset.labels.size(0) == N,
        "subsample", "the dataset needs i64 labels (", N, ")");
  if (pool.empty()) {
    std::vector<int64_t> all(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) all[static_cast<size_t>(i)] = i;
    check(N > 0, "subsample", "the dataset is empty");
    return all;
  }
  validate_subset(pool, N, "the pool to score");
  return pool;
}

void require_deterministic(const Pipeline& p, const char* op) {
  check(p.pad_crop == 0 && !p.hflip && !p.random_resized_crop.enabled && !p.color_jitter.enabled && !p.lighting.enabled,
        op, "needs a deterministic (evaluation) pipeline, got ", p.str());
}

PreparedImages::PreparedImages(const Dataset& dataset, const Pipeline& pipeline)
    : dataset_(dataset), pipeline_(pipeline) {
  const char* op = "PreparedImages";
  require_deterministic(pipeline, op);
  C_ = dataset.channels();
  if (dataset.source) {
    // Images of a source differ in size: the pipeline must give them one.
    check(pipeline.resize_center_crop.enabled, op, "an image folder needs a resize and centre crop, got ",
          pipeline.str());
    out_h_ = out_w_ = pipeline.resize_center_crop.crop;
  } else {
    check(dataset.images.defined() && dataset.images.dtype() == DType::u8 && dataset.images.dim() == 4, op,
          "the dataset needs u8 (N, C, H, W) images");
    H_ = dataset.images.size(2);
    W_ = dataset.images.size(3);
    pipeline.validate(C_, H_, W_);
    std::tie(out_h_, out_w_) = pipeline.output_hw(H_, W_);
  }
  slot_.assign(static_cast<size_t>(dataset.size()), -1);
}

void PreparedImages::prepare(const std::vector<int64_t>& indices) {
  for (int64_t i : held_) slot_[static_cast<size_t>(i)] = -1;
  held_.clear();
  for (int64_t i : indices) {
    check(i >= 0 && i < static_cast<int64_t>(slot_.size()), "PreparedImages", "index ", i, " is outside [0, ",
          slot_.size(), ")");
    if (slot_[static_cast<size_t>(i)] >= 0) continue;
    slot_[static_cast<size_t>(i)] = static_cast<int64_t>(held_.size());
    held_.push_back(i);
  }
  const int64_t n = static_cast<int64_t>(held_.size()), out_stride = C_ * out_h_ * out_w_;
  pixels_.resize(static_cast<size_t>(n * out_stride));
  const uint8_t* src = dataset_.source ? nullptr : dataset_.images.data<uint8_t>();
  const int64_t in_stride = C_ * H_ * W_;
  std::vector<std::string> errors(static_cast<size_t>(n));
  // Decoding is worth threads; normalising a few hundred small images is not worth waking them.
  const bool parallel = dataset_.source ? n > 1 : n * out_stride >= (int64_t{1} << 20);
#pragma omp parallel for schedule(dynamic, 4) if (parallel)
  for (int64_t s = 0; s < n; ++s) {
    const int64_t i = held_[static_cast<size_t>(s)];
    SampleRng unused(0, 0, static_cast<uint64_t>(i));  // a deterministic pipeline draws nothing
    float* dst = pixels_.data() + s * out_stride;
    try {
      if (src) {
        apply(pipeline_, src + i * in_stride, C_, H_, W_, dst, out_h_, out_w_, unused);
      } else {
        const Tensor image = dataset_.source->decode(i);
        check(image.dtype() == DType::u8 && image.dim() == 3 && image.size(0) == C_, "PreparedImages", "image ", i,
              " decoded to ", image.str());
        apply(pipeline_, image.data<uint8_t>(), C_, image.size(1), image.size(2), dst, out_h_, out_w_, unused);
      }
    } catch (const std::exception& e) {
      errors[static_cast<size_t>(s)] =
          std::string(e.what()) + (dataset_.source ? " (" + dataset_.source->describe(i) + ")" : "");
    }
  }
  for (const std::string& e : errors)
    if (!e.empty()) fail("PreparedImages", e);
}

const float* PreparedImages::image(int64_t index) const {
  const int64_t s = index >= 0 && index < static_cast<int64_t>(slot_.size()) ? slot_[static_cast<size_t>(index)] : -1;
  check(s >= 0, "PreparedImages", "image ", index, " was not prepared");
  return pixels_.data() + s * C_ * out_h_ * out_w_;
}

Tensor PreparedImages::batch(const std::vector<int64_t>& indices) {
  prepare(indices);
  const int64_t n = static_cast<int64_t>(indices.size()), stride = C_ * out_h_ * out_w_;
  Tensor out = Tensor::empty({n, C_, out_h_, out_w_}, DType::f32);
  float* dst = out.data<float>();
  for (int64_t k = 0; k < n; ++k)
    std::memcpy(dst + k * stride, image(indices[static_cast<size_t>(k)]), static_cast<size_t>(stride) * sizeof(float));
  return out;
}

// ---- scoring ----

std::vector<SampleUncertainty> score_uncertainty(nn::Module& model, const Dataset& dataset, const Pipeline& pipeline,
                                                 const std::vector<int64_t>& pool_in, const UncertaintyOptions& o) {
  validate(o);
  const std::vector<int64_t> pool = resolve_pool(dataset, pool_in);
  const int64_t P = static_cast<int64_t>(pool.size()), M = o.draws, C = dataset.num_classes;
  check(P >= 2, kOp, "needs at least 2 images to mix, got ", P);
  check(C > 0, kOp, "the dataset has no classes");
  const int64_t* labels = dataset.labels.data<int64_t>();
  for (int64_t i : pool)
    check(labels[i] >= 0 && labels[i] < C, kOp, "sample ", i, " has label ", labels[i], ", outside [0, ", C, ")");

  PreparedImages images(dataset, pipeline);
  const int64_t IC = images.channels(), H = images.height(), W = images.width();
  const Device device = model.device();
  TrainingModeGuard restore(model);
  model.eval();
  autograd::NoGradGuard no_grad;

  std::vector<SampleUncertainty> out(static_cast<size_t>(P));
  const int64_t per_chunk = std::max<int64_t>(1, o.batch_size / M);
  std::vector<AnchorDraw> draws;
  std::vector<int64_t> needed;
  for (int64_t start = 0; start < P; start += per_chunk) {
    const int64_t count = std::min(per_chunk, P - start);
    draws.clear();
    for (int64_t a = 0; a < count; ++a) {
      std::vector<AnchorDraw> d = anchor_draws(pool, start + a, H, W, o);
      draws.insert(draws.end(), std::make_move_iterator(d.begin()), std::make_move_iterator(d.end()));
    }
    needed.clear();
    for (const AnchorDraw& d : draws) needed.insert(needed.end(), d.sources.begin(), d.sources.end());
    images.prepare(needed);

    Tensor batch = Tensor::empty({count * M, IC, H, W}, DType::f32);
    render_composites(
        draws, [&](int64_t i) { return images.image(i); }, IC, H, W, batch.data<float>());
    Tensor logits = model.forward(batch.to(device)).to(Device::cpu());
    check(logits.dtype() == DType::f32 && logits.shape() == Shape{count * M, C}, kOp, "the model gave ", logits.str(),
          " for ", count * M, " composites of ", C, " classes");
    const float* z = logits.data<float>();

    for (int64_t a = 0; a < count; ++a) {
      std::vector<double> losses(static_cast<size_t>(M));
      for (int64_t m = 0; m < M; ++m) {
        const int64_t row = a * M + m;
        losses[static_cast<size_t>(m)] = composite_loss(draws[static_cast<size_t>(row)], labels, z + row * C, C);
      }
      const LossSummary s = summarize_losses(losses);
      SampleUncertainty& u = out[static_cast<size_t>(start + a)];
      u.index = pool[static_cast<size_t>(start + a)];
      u.label = labels[u.index];
      u.mean = s.mean;
      u.std = s.std;
      u.cv = s.cv;
      if (o.keep_losses) u.losses = std::move(losses);
    }
    if (o.progress) o.progress(start + count, P);
  }
  return out;
}

}  // namespace dmix::augment
