// Batch mixing: the DCutMix geometry against the paper's worked example and hand-computed
// edge cases; every method's soft labels against the pixels it actually produced (images
// of distinct constant values tell which source each pixel came from); and statistics
// over many seeded draws with tolerances of 6 standard errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "augment/mixing.h"
#include "engine/error.h"

using namespace dmix;
using namespace dmix::augment;

namespace {

// Image b is the constant value(b, c) in channel c: every pixel names its source image.
float value(int64_t b, int64_t c) { return float(b + 1) + 1000.0f * float(c); }

struct TestBatch {
  Tensor images, labels, indices;
  int64_t B, C, H, W, num_classes;
};

TestBatch constant_batch(int64_t B, int64_t C, int64_t H, int64_t W, int64_t num_classes) {
  TestBatch t{Tensor::empty({B, C, H, W}), Tensor::empty({B}, DType::i64), Tensor::empty({B}, DType::i64), B, C, H, W,
              num_classes};
  float* x = t.images.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H * W; ++i) x[(b * C + c) * H * W + i] = value(b, c);
  for (int64_t b = 0; b < B; ++b) {
    t.labels.data<int64_t>()[b] = (b * 7) % num_classes;
    t.indices.data<int64_t>()[b] = 1000 + 3 * b;  // dataset indices differ from batch positions
  }
  return t;
}

MixOptions options(MixMethod method, int64_t k = 3, double alpha = 1.0, double prob = 1.0) {
  MixOptions o;
  o.method = method;
  o.k = k;
  o.alpha = alpha;
  o.prob = prob;
  return o;
}

int64_t position_of(const TestBatch& t, int64_t dataset_index) { return (dataset_index - 1000) / 3; }

// How many pixels of sample b came from each source batch position (read from channel 0;
// every channel must agree).
std::map<int64_t, int64_t> pixel_sources(const TestBatch& t, const MixedBatch& m, int64_t b) {
  std::map<int64_t, int64_t> count;
  const float* x = m.images.data<float>() + b * t.C * t.H * t.W;
  for (int64_t i = 0; i < t.H * t.W; ++i) {
    const int64_t src = int64_t(std::lround(x[i])) - 1;
    for (int64_t c = 1; c < t.C; ++c) REQUIRE(x[c * t.H * t.W + i] == value(src, c));
    ++count[src];
  }
  return count;
}

// The checks every method's output must pass: components name real images of the batch,
// anchor first; weights sum to 1; targets are the weights accumulated per class.
void check_components_and_targets(const TestBatch& t, const MixedBatch& m, size_t expected_components) {
  REQUIRE(m.targets.shape() == Shape{t.B, t.num_classes});
  REQUIRE(m.components.size() == size_t(t.B));
  const float* y = m.targets.data<float>();
  for (int64_t b = 0; b < t.B; ++b) {
    const auto& comps = m.components[b];
    REQUIRE(comps.size() == expected_components);
    CHECK(comps[0].index == t.indices.data<int64_t>()[b]);
    double total = 0;
    std::vector<double> per_class(t.num_classes, 0.0);
    for (const MixComponent& c : comps) {
      const int64_t pos = position_of(t, c.index);
      REQUIRE(pos >= 0);
      REQUIRE(pos < t.B);
      CHECK(c.label == t.labels.data<int64_t>()[pos]);
      CHECK(c.weight >= 0.0);
      total += c.weight;
      per_class[c.label] += c.weight;
    }
    CHECK(total == doctest::Approx(1.0).epsilon(1e-12));
    double row = 0;
    for (int64_t k = 0; k < t.num_classes; ++k) {
      CHECK(y[b * t.num_classes + k] == doctest::Approx(per_class[k]).epsilon(1e-6));
      row += y[b * t.num_classes + k];
    }
    CHECK(row == doctest::Approx(1.0).epsilon(1e-6));
  }
}

// For the cut-and-paste methods: each source's weights add up to its exact pixel count.
void check_weights_are_pixel_fractions(const TestBatch& t, const MixedBatch& m) {
  for (int64_t b = 0; b < t.B; ++b) {
    std::map<int64_t, double> weight_of_source;
    for (const MixComponent& c : m.components[b]) weight_of_source[position_of(t, c.index)] += c.weight;
    const std::map<int64_t, int64_t> pixels = pixel_sources(t, m, b);
    for (const auto& [src, w] : weight_of_source) {
      const auto it = pixels.find(src);
      const double count = it == pixels.end() ? 0.0 : double(it->second);
      CHECK(w * double(t.H * t.W) == doctest::Approx(count).epsilon(1e-9));
    }
    for (const auto& [src, n] : pixels) CHECK(weight_of_source.count(src) == 1);  // no pixel from elsewhere
  }
}

struct Moments {
  double mean = 0, var = 0, m4 = 0;
  size_t n = 0;
  double se_mean() const { return std::sqrt(var / double(n)); }
  double se_var() const { return std::sqrt((m4 - var * var) / double(n)); }
};

Moments moments(const std::vector<double>& xs) {
  Moments r;
  r.n = xs.size();
  for (double x : xs) r.mean += x;
  r.mean /= double(r.n);
  for (double x : xs) {
    const double d = (x - r.mean) * (x - r.mean);
    r.var += d;
    r.m4 += d * d;
  }
  r.var /= double(r.n - 1);
  r.m4 /= double(r.n);
  return r;
}

}  // namespace

// ---- geometry ----

TEST_CASE("DCutMix worked example: K=3, 32x32, pi=(0.5,0.3,0.2) gives weights 495/1024, 304/1024, 225/1024") {
  const std::vector<double> pi = {0.5, 0.3, 0.2};
  const std::vector<double> v = stick_fractions(pi);
  REQUIRE(v.size() == 2);
  CHECK(v[0] == 0.5);
  CHECK(v[1] == doctest::Approx(0.6).epsilon(1e-9));

  const std::vector<PatchBox> boxes = dcutmix_boxes(pi, 32, 32, {0.0, 0.0, 0.0, 0.0});
  REQUIRE(boxes.size() == 2);
  CHECK(boxes[0].height == 23);  // round(32 sqrt(0.5)) = round(22.63)
  CHECK(boxes[0].width == 23);
  CHECK(boxes[1].height == 15);  // round(23 sqrt(0.4)) = round(14.55): the realised parent, not 32 sqrt(0.2)
  CHECK(boxes[1].width == 15);
  const std::vector<double> w = ring_weights(boxes, 32, 32);
  REQUIRE(w.size() == 3);
  CHECK(w[0] == 495.0 / 1024.0);
  CHECK(w[1] == 304.0 / 1024.0);
  CHECK(w[2] == 225.0 / 1024.0);
  CHECK(w[0] + w[1] + w[2] == 1.0);

  // Offsets are uniform over the whole slack of the realised parent, inclusive.
  const std::vector<PatchBox> far = dcutmix_boxes(pi, 32, 32, {0.999, 0.999, 0.999, 0.999});
  CHECK(far[0].top == 9);   // 32 - 23
  CHECK(far[0].left == 9);
  CHECK(far[1].top == 17);  // 9 + (23 - 15)
  CHECK(far[1].left == 17);
  const std::vector<PatchBox> mid = dcutmix_boxes(pi, 32, 32, {0.5, 0.25, 0.5, 0.0});
  CHECK(mid[0].top == 5);   // floor(0.5 * 10)
  CHECK(mid[0].left == 2);  // floor(0.25 * 10)
  CHECK(mid[1].top == 5 + 4);
  CHECK(mid[1].left == 2);
}

TEST_CASE("box sides round half to even, as numpy's round") {
  // 1 - v = 1/16 exactly: sides are P / 4.
  const std::vector<double> pi = {15.0 / 16.0, 1.0 / 16.0};
  CHECK(dcutmix_boxes(pi, 10, 10, {0.0, 0.0})[0].height == 2);  // 2.5 -> 2
  CHECK(dcutmix_boxes(pi, 14, 14, {0.0, 0.0})[0].height == 4);  // 3.5 -> 4
  CHECK(dcutmix_boxes(pi, 18, 22, {0.0, 0.0})[0].height == 4);  // 4.5 -> 4
  CHECK(dcutmix_boxes(pi, 18, 22, {0.0, 0.0})[0].width == 6);   // 5.5 -> 6
}

TEST_CASE("stick edge cases: an over-used stick collapses the box; a full-size side pins the offset") {
  // v_1 = 0.9 / 0.8 > 1: box 1 and everything inside it vanish; weights still sum to 1.
  const std::vector<double> pi = {0.2, 0.9, 0.0, 0.0};
  const std::vector<PatchBox> boxes = dcutmix_boxes(pi, 20, 20, {0.3, 0.3, 0.3, 0.3, 0.3, 0.3});
  CHECK(boxes[1].area() == 0);
  CHECK(boxes[2].area() == 0);
  const std::vector<double> w = ring_weights(boxes, 20, 20);
  CHECK(w[0] + w[1] == 1.0);
  CHECK(w[2] == 0.0);
  CHECK(w[3] == 0.0);

  // A 32 x 2 image: the width rounds back to 2 = the parent's, so the box sits at (0, 0)
  // whatever the offset draws say.
  const std::vector<PatchBox> pinned = dcutmix_boxes({0.05, 0.95}, 32, 2, {0.99, 0.99});
  CHECK(pinned[0].height == 31);
  CHECK(pinned[0].width == 2);
  CHECK(pinned[0].top == 0);
  CHECK(pinned[0].left == 0);

  CHECK_THROWS_AS(dcutmix_boxes({0.5, 0.5}, 8, 8, {0.1}), Error);
}

TEST_CASE("saliency boxes are centred on the peak and shifted to stay inside the parent") {
  const std::vector<double> pi = {0.5, 0.3, 0.2};  // sides 23 then 15 on 32 x 32
  const std::vector<PatchBox> centred = saliency_dcutmix_boxes(pi, 32, 32, {{16, 15}, {16, 16}});
  CHECK(centred[0].top == 16 - 11);
  CHECK(centred[0].left == 15 - 11);
  CHECK(centred[1].top == 16 - 7);
  CHECK(centred[1].left == 16 - 7);
  const std::vector<PatchBox> clamped = saliency_dcutmix_boxes(pi, 32, 32, {{0, 31}, {31, 0}});
  CHECK(clamped[0].top == 0);
  CHECK(clamped[0].left == 9);  // right-aligned in the image
  CHECK(clamped[1].top == 0 + 23 - 15);  // bottom of box 0
  CHECK(clamped[1].left == 9);           // left of box 0
  CHECK(clamped[1].height == 15);
}

TEST_CASE("centred_clipped_box: [c - L/2, c + L/2) clipped at the borders") {
  const PatchBox inside = centred_clipped_box(32, 32, 16, 16, 10, 20);
  CHECK(inside.top == 2);
  CHECK(inside.left == 12);
  CHECK(inside.height == 16);
  CHECK(inside.width == 16);
  const PatchBox corner = centred_clipped_box(32, 32, 16, 10, 31, 0);
  CHECK(corner.top == 23);
  CHECK(corner.height == 9);
  CHECK(corner.left == 0);
  CHECK(corner.width == 5);
  CHECK(centred_clipped_box(8, 8, 5, 5, 4, 4).height == 4);  // odd side: 2 * (5 / 2)
}

// ---- methods on a batch ----

TEST_CASE("DCutMix batch: K components, weights equal the realised pixel fractions, classes accumulate") {
  for (int64_t K : {2, 3, 5}) {
    CAPTURE(K);
    const TestBatch t = constant_batch(16, 2, 13, 11, 3);  // 3 classes: repeated classes in most samples
    Generator gen(42 + K);
    const MixedBatch m = mix_batch(t.images, t.labels, t.indices, t.num_classes, options(MixMethod::DCutMix, K), gen);
    CHECK(m.mixed);
    CHECK(gen.stream() == uint64_t(K + 2));  // gate, K-1 permutations, Dirichlet, offsets
    check_components_and_targets(t, m, size_t(K));
    check_weights_are_pixel_fractions(t, m);
    // The input batch is left untouched.
    CHECK(t.images.data<float>()[t.C * t.H * t.W] == value(1, 0));
  }
}

TEST_CASE("DCutMix with a small alpha (K=5, alpha=0.2) keeps the weights exact") {
  const TestBatch t = constant_batch(32, 1, 32, 32, 10);
  Generator gen(7);
  const MixedBatch m = mix_batch(t.images, t.labels, t.indices, t.num_classes, options(MixMethod::DCutMix, 5, 0.2), gen);
  check_components_and_targets(t, m, 5);
  check_weights_are_pixel_fractions(t, m);
}

TEST_CASE("CutMix batch: one box for the whole batch, anchor weight 1 - real box area") {
  for (uint64_t seed : {1, 2, 3, 4, 5}) {
    const TestBatch t = constant_batch(12, 3, 16, 20, 4);
    Generator gen(seed);
    const MixedBatch m = mix_batch(t.images, t.labels, t.indices, t.num_classes, options(MixMethod::CutMix, 2, 1.0), gen);
    CHECK(gen.stream() == 5u);  // gate, lambda, permutation, row, column
    check_components_and_targets(t, m, 2);
    check_weights_are_pixel_fractions(t, m);
    // Every sample has the same weights and, where it pasted another image, the same region.
    std::set<int64_t> region;
    bool have_region = false;
    for (int64_t b = 0; b < t.B; ++b) {
      CHECK(m.components[b][1].weight == m.components[0][1].weight);
      if (position_of(t, m.components[b][1].index) == b) continue;  // paired with itself
      std::set<int64_t> pasted;
      const float* x = m.images.data<float>() + b * t.C * t.H * t.W;
      for (int64_t i = 0; i < t.H * t.W; ++i)
        if (x[i] != value(b, 0)) pasted.insert(i);
      if (!have_region) region = pasted;
      have_region = true;
      CHECK(pasted == region);
      CHECK(double(pasted.size()) == doctest::Approx(m.components[b][1].weight * t.H * t.W));
    }
  }
}

TEST_CASE("Mixup batch: x = lam x + (1 - lam) x[perm] with one lam per batch") {
  const TestBatch t = constant_batch(10, 2, 3, 5, 4);
  Generator gen(11);
  const MixedBatch m = mix_batch(t.images, t.labels, t.indices, t.num_classes, options(MixMethod::Mixup, 2, 0.4), gen);
  check_components_and_targets(t, m, 2);
  const double lam = m.components[0][0].weight;
  for (int64_t b = 0; b < t.B; ++b) {
    CHECK(m.components[b][0].weight == lam);
    const int64_t other = position_of(t, m.components[b][1].index);
    for (int64_t c = 0; c < t.C; ++c)
      for (int64_t i = 0; i < t.H * t.W; ++i)
        CHECK(m.images.data<float>()[(b * t.C + c) * t.H * t.W + i] ==
              doctest::Approx(lam * value(b, c) + (1 - lam) * value(other, c)).epsilon(1e-5));
  }
}

TEST_CASE("DMixup batch: x = sum_k pi_k x[sigma_{k-1}], labels by pi") {
  const TestBatch t = constant_batch(16, 2, 4, 4, 3);
  Generator gen(5);
  const MixedBatch m = mix_batch(t.images, t.labels, t.indices, t.num_classes, options(MixMethod::DMixup, 4, 1.0), gen);
  CHECK(gen.stream() == 5u);  // gate, 3 permutations, Dirichlet
  check_components_and_targets(t, m, 4);
  for (int64_t b = 0; b < t.B; ++b) {
    std::set<double> distinct;
    for (int64_t c = 0; c < t.C; ++c) {
      double expected = 0;
      for (const MixComponent& comp : m.components[b]) {
        CHECK(comp.weight > 0.0);
        expected += comp.weight * value(position_of(t, comp.index), c);
        distinct.insert(comp.weight);
      }
      for (int64_t i = 0; i < t.H * t.W; ++i)
        CHECK(m.images.data<float>()[(b * t.C + c) * t.H * t.W + i] == doctest::Approx(expected).epsilon(1e-5));
    }
    CHECK(distinct.size() == 4);  // per-sample proportions, not a shared lambda
  }
  // Different samples have different proportions.
  CHECK(m.components[0][0].weight != m.components[1][0].weight);
}

TEST_CASE("Mixup and DMixup pixels are the chain w_0 x_0, then fma(w_k, x_k, .), bit for bit") {
  // The CUDA kernel computes this exact chain (kernels/cuda/mixing.h), so CPU and GPU
  // batches agree bit for bit; a compiler's own contraction choice must not decide it.
  const int64_t B = 6, C = 2, H = 5, W = 7, CHW = C * H * W;
  Tensor images = Tensor::empty({B, C, H, W});
  for (int64_t i = 0; i < images.numel(); ++i) images.data<float>()[i] = std::sin(0.37f * float(i)) * 3.0f + 0.1f;
  Tensor labels = Tensor::zeros({B}, DType::i64);
  const float* x = images.data<float>();
  int64_t mismatches = 0;

  Generator g1(12);
  const MixedBatch mixup = mix_batch(images, labels, Tensor(), 2, options(MixMethod::Mixup, 2, 1.0), g1);
  for (int64_t b = 0; b < B; ++b) {
    const MixComponent& partner = mixup.components[b][1];
    const float lam = float(mixup.components[b][0].weight), rest = float(partner.weight);
    for (int64_t i = 0; i < CHW; ++i) {
      const float partner_part = rest * x[partner.index * CHW + i];
      mismatches += mixup.images.data<float>()[b * CHW + i] != std::fma(lam, x[b * CHW + i], partner_part);
    }
  }
  CHECK(mismatches == 0);

  Generator g2(13);
  const MixedBatch dmixup = mix_batch(images, labels, Tensor(), 2, options(MixMethod::DMixup, 4, 1.0), g2);
  for (int64_t b = 0; b < B; ++b) {
    const auto& comps = dmixup.components[b];
    for (int64_t i = 0; i < CHW; ++i) {
      float acc = float(comps[0].weight) * x[comps[0].index * CHW + i];
      for (size_t k = 1; k < comps.size(); ++k) acc = std::fma(float(comps[k].weight), x[comps[k].index * CHW + i], acc);
      mismatches += dmixup.images.data<float>()[b * CHW + i] != acc;
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("Cutout zeroes one clipped square per sample and keeps the labels") {
  const TestBatch t = constant_batch(64, 2, 12, 12, 5);
  Generator gen(3);
  MixOptions o = options(MixMethod::Cutout);
  o.cutout_length = 6;
  const MixedBatch m = mix_batch(t.images, t.labels, t.indices, t.num_classes, o, gen);
  check_components_and_targets(t, m, 1);
  int full = 0;
  std::set<std::pair<int64_t, int64_t>> corners;
  for (int64_t b = 0; b < t.B; ++b) {
    int64_t top = 99, left = 99, bottom = -1, right = -1, zeros = 0;
    for (int64_t c = 0; c < t.C; ++c)
      for (int64_t y = 0; y < t.H; ++y)
        for (int64_t x = 0; x < t.W; ++x) {
          const float v = m.images.data<float>()[((b * t.C + c) * t.H + y) * t.W + x];
          if (v == 0.0f) {
            ++zeros;
            top = std::min(top, y), left = std::min(left, x), bottom = std::max(bottom, y), right = std::max(right, x);
          } else {
            CHECK(v == value(b, c));
          }
        }
    REQUIRE(zeros > 0);
    const int64_t h = bottom - top + 1, w = right - left + 1;
    CHECK(zeros == t.C * h * w);  // a filled rectangle in every channel
    CHECK(h <= 6);
    CHECK(w <= 6);
    if (top > 0 && bottom < t.H - 1) CHECK(h == 6);
    if (left > 0 && right < t.W - 1) CHECK(w == 6);
    full += h == 6 && w == 6;
    corners.insert({top, left});
    CHECK(m.targets.data<float>()[b * t.num_classes + t.labels.data<int64_t>()[b]] == 1.0f);
  }
  CHECK(full > 0);
  CHECK(corners.size() > 10);  // per-sample centres
}

TEST_CASE("Saliency-DCutMix centres each pasted box on the blob of its source image") {
  // Image b: a flat background with one bright 3x3 blob at its own position; background
  // and blob levels also encode b so every pixel names its source. The batch is
  // normalised with a mean/std that flattens the picture unless undone, so a detector run
  // on the normalised values would find no blob.
  const int64_t B = 12, C = 3, H = 32, W = 32, K = 2;
  const float mean = 0.95f, std = 0.05f;
  Tensor images = Tensor::empty({B, C, H, W});
  Tensor labels = Tensor::empty({B}, DType::i64), indices = Tensor::empty({B}, DType::i64);
  std::vector<std::pair<int64_t, int64_t>> blob(B);
  auto background = [](int64_t b) { return 0.2f + 0.002f * float(b); };
  auto bright = [](int64_t b) { return 0.9f + 0.002f * float(b); };
  for (int64_t b = 0; b < B; ++b) {
    blob[b] = {3 + (b * 7) % 26, 3 + (b * 11) % 26};
    labels.data<int64_t>()[b] = b % 5;
    indices.data<int64_t>()[b] = b;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const bool on = std::abs(y - blob[b].first) <= 1 && std::abs(x - blob[b].second) <= 1;
          images.data<float>()[((b * C + c) * H + y) * W + x] = ((on ? bright(b) : background(b)) - mean) / std;
        }
  }
  auto source_of = [&](float normalised) {
    const float v = normalised * std + mean;
    const float base = v > 0.5f ? 0.9f : 0.2f;
    return int64_t(std::lround((v - base) / 0.002f));
  };
  for (SaliencyDetector d : {SaliencyDetector::SpectralResidual, SaliencyDetector::FineGrained}) {
    const std::string detector = saliency_detector_name(d);
    CAPTURE(detector);
    MixOptions o = options(MixMethod::SaliencyDCutMix, K, 1.0);
    o.detector = d;
    o.mean = {mean, mean, mean};
    o.std = {std, std, std};
    Generator gen(21);
    const MixedBatch m = mix_batch(images, labels, indices, 5, o, gen);
    CHECK(gen.stream() == 3u);  // gate, one permutation, Dirichlet: no offset draws
    int checked = 0;
    for (int64_t b = 0; b < B; ++b) {
      const auto& comps = m.components[b];
      REQUIRE(comps.size() == 2);
      CHECK(comps[0].weight + comps[1].weight == doctest::Approx(1.0).epsilon(1e-12));
      const int64_t src = comps[1].index;
      int64_t top = H, left = W, bottom = -1, right = -1, pasted = 0;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const int64_t s = source_of(m.images.data<float>()[(b * C * H + y) * W + x]);
          if (s == b && src != b) continue;
          CHECK((s == b || s == src));
          if (s != src) continue;
          ++pasted;
          top = std::min(top, y), left = std::min(left, x), bottom = std::max(bottom, y), right = std::max(right, x);
        }
      if (src == b) continue;
      CHECK(double(pasted) == doctest::Approx(comps[1].weight * H * W));
      if (pasted < 9) continue;  // too small a box to say where it is centred
      ++checked;
      // The box holds the blob's centre and is centred on the blob (on its 3x3 pixels:
      // the spectral residual's peak may sit one pixel off the centre) unless the border
      // stops it.
      const auto [by, bx] = blob[src];
      CHECK(top <= by);
      CHECK(bottom >= by);
      CHECK(left <= bx);
      CHECK(right >= bx);
      const int64_t h = bottom - top + 1, w = right - left + 1;
      if (top > 0 && bottom < H - 1) CHECK(std::abs(top - (by - h / 2)) <= 1);
      if (left > 0 && right < W - 1) CHECK(std::abs(left - (bx - w / 2)) <= 1);
    }
    CHECK(checked >= 6);
  }
}

TEST_CASE("Saliency-DCutMix with K=4: weights are the pixel fractions") {
  TestBatch t = constant_batch(8, 3, 16, 16, 3);
  // Make every image a little non-flat so saliency has something to find.
  for (int64_t b = 0; b < t.B; ++b) t.images.data<float>()[b * t.C * t.H * t.W + (b % 16) * 16 + 3] += 0.25f;
  Generator gen(8);
  MixOptions o = options(MixMethod::SaliencyDCutMix, 4, 1.0);
  const MixedBatch m = mix_batch(t.images, t.labels, t.indices, t.num_classes, o, gen);
  check_components_and_targets(t, m, 4);
  for (int64_t b = 0; b < t.B; ++b) {
    std::map<int64_t, double> weight_of_source;
    for (const MixComponent& c : m.components[b]) weight_of_source[position_of(t, c.index)] += c.weight;
    std::map<int64_t, int64_t> pixels;
    const float* x = m.images.data<float>() + b * t.C * t.H * t.W + 2 * t.H * t.W;  // channel 2 still names the source
    for (int64_t i = 0; i < t.H * t.W; ++i) ++pixels[int64_t(std::lround(x[i] - 2000.0f)) - 1];
    for (const auto& [src, w] : weight_of_source)
      CHECK(w * t.H * t.W == doctest::Approx(double(pixels[src])).epsilon(1e-9));
  }
}

// ---- statistics over many seeded draws ----

TEST_CASE("DCutMix with symmetric alpha: each of the K images covers 1/K of the pixels on average") {
  struct Case {
    int64_t K;
    double alpha;
  };
  for (const Case& c : {Case{3, 1.0}, Case{5, 0.2}, Case{4, 2.0}}) {
    CAPTURE(c.K);
    CAPTURE(c.alpha);
    const TestBatch t = constant_batch(256, 1, 32, 32, 10);
    Generator gen(100 + c.K);
    std::vector<std::vector<double>> w(c.K);
    for (int rep = 0; rep < 16; ++rep) {
      const MixedBatch m = mix_batch(t.images, t.labels, t.indices, t.num_classes, options(MixMethod::DCutMix, c.K, c.alpha), gen);
      for (const auto& comps : m.components)
        for (int64_t k = 0; k < c.K; ++k) w[k].push_back(comps[k].weight);
    }
    for (int64_t k = 0; k < c.K; ++k) {
      CAPTURE(k);
      const Moments mk = moments(w[k]);
      CHECK(std::abs(mk.mean - 1.0 / double(c.K)) < 6.0 * mk.se_mean());
      // Var(pi_k) of Dirichlet(alpha 1_K); the realised areas add a little rounding noise.
      const double var = (1.0 / c.K) * (1.0 - 1.0 / c.K) / (c.K * c.alpha + 1.0);
      CHECK(std::abs(mk.var - var) < 6.0 * mk.se_var() + 5e-4);
    }
  }
}

TEST_CASE("DCutMix with K=2: the pasted image's area fraction follows Beta(alpha, alpha)") {
  for (double alpha : {1.0, 0.5, 3.0}) {
    CAPTURE(alpha);
    const TestBatch t = constant_batch(256, 1, 32, 32, 10);
    Generator gen(uint64_t(alpha * 10));
    std::vector<double> pasted;
    for (int rep = 0; rep < 20; ++rep) {
      const MixedBatch m = mix_batch(t.images, t.labels, t.indices, t.num_classes, options(MixMethod::DCutMix, 2, alpha), gen);
      for (const auto& comps : m.components) pasted.push_back(comps[1].weight);
    }
    const Moments mo = moments(pasted);
    CHECK(std::abs(mo.mean - 0.5) < 6.0 * mo.se_mean());
    const double var = 1.0 / (4.0 * (2.0 * alpha + 1.0));
    // Rounding a side of ~32 px moves the area by ~1/32 at most: variance + O(1e-4).
    CHECK(std::abs(mo.var - var) < 6.0 * mo.se_var() + 5e-4);
  }
}

TEST_CASE("DMixup proportions have the Dirichlet(alpha 1_K) mean and variance") {
  const int64_t K = 3;
  const double alpha = 0.5;
  const TestBatch t = constant_batch(512, 1, 2, 2, 10);
  Generator gen(77);
  std::vector<std::vector<double>> w(K);
  for (int rep = 0; rep < 8; ++rep) {
    const MixedBatch m = mix_batch(t.images, t.labels, t.indices, t.num_classes, options(MixMethod::DMixup, K, alpha), gen);
    for (const auto& comps : m.components)
      for (int64_t k = 0; k < K; ++k) w[k].push_back(comps[k].weight);
  }
  for (int64_t k = 0; k < K; ++k) {
    const Moments mk = moments(w[k]);
    CHECK(std::abs(mk.mean - 1.0 / K) < 6.0 * mk.se_mean());
    const double var = (1.0 / K) * (1.0 - 1.0 / K) / (K * alpha + 1.0);
    CHECK(std::abs(mk.var - var) < 6.0 * mk.se_var());
  }
}

TEST_CASE("Mixup's lambda has the Beta(alpha, alpha) mean and variance") {
  for (double alpha : {1.0, 0.2}) {
    CAPTURE(alpha);
    const TestBatch t = constant_batch(2, 1, 1, 2, 2);
    Generator gen(uint64_t(1000 * alpha));
    std::vector<double> lam;
    lam.reserve(3000);
    for (int rep = 0; rep < 3000; ++rep)
      lam.push_back(mix_batch(t.images, t.labels, t.indices, 2, options(MixMethod::Mixup, 2, alpha), gen)
                        .components[0][0].weight);
    const Moments mo = moments(lam);
    CHECK(std::abs(mo.mean - 0.5) < 6.0 * mo.se_mean());
    CHECK(std::abs(mo.var - 1.0 / (4.0 * (2.0 * alpha + 1.0))) < 6.0 * mo.se_var());
  }
}

TEST_CASE("the mix probability is honoured: one gate per batch; unmixed batches are one-hot and unchanged") {
  const TestBatch t = constant_batch(4, 1, 4, 4, 3);
  for (MixMethod method : {MixMethod::DCutMix, MixMethod::CutMix, MixMethod::Mixup, MixMethod::Cutout}) {
    CAPTURE(std::string(mix_method_name(method)));
    for (double p : {0.0, 0.3, 1.0}) {
      Generator gen(9);
      int mixed = 0, unmixed_wrong = 0;
      const int n = p == 0.3 ? 1500 : 200;
      const std::vector<float> original = t.images.to_vector<float>();
      for (int rep = 0; rep < n; ++rep) {
        const uint64_t before = gen.stream();
        const MixedBatch m = mix_batch(t.images, t.labels, t.indices, t.num_classes, options(method, 3, 1.0, p), gen);
        mixed += m.mixed;
        if (m.mixed) continue;
        bool ok = gen.stream() == before + 1;  // only the gate was drawn
        ok = ok && m.images.to_vector<float>() == original;
        for (int64_t b = 0; b < t.B; ++b) {
          ok = ok && m.components[b].size() == 1 && m.components[b][0].weight == 1.0;
          for (int64_t k = 0; k < t.num_classes; ++k)
            ok = ok && m.targets.data<float>()[b * t.num_classes + k] == (k == t.labels.data<int64_t>()[b] ? 1.0f : 0.0f);
        }
        unmixed_wrong += !ok;
      }
      CHECK(unmixed_wrong == 0);
      if (p == 0.0) CHECK(mixed == 0);
      if (p == 1.0) CHECK(mixed == n);
      if (p == 0.3) CHECK(std::abs(mixed / double(n) - 0.3) < 6.0 * std::sqrt(0.3 * 0.7 / n));
    }
  }
}

// ---- determinism, options, errors ----

TEST_CASE("a seed fixes the result; another seed changes it") {
  const TestBatch t = constant_batch(8, 1, 8, 8, 4);
  for (MixMethod method : {MixMethod::DCutMix, MixMethod::DMixup, MixMethod::CutMix, MixMethod::SaliencyDCutMix}) {
    Generator g1(5), g2(5), g3(6);
    const MixedBatch a = mix_batch(t.images, t.labels, t.indices, 4, options(method, 3), g1);
    const MixedBatch b = mix_batch(t.images, t.labels, t.indices, 4, options(method, 3), g2);
    const MixedBatch c = mix_batch(t.images, t.labels, t.indices, 4, options(method, 3), g3);
    CHECK(a.images.to_vector<float>() == b.images.to_vector<float>());
    CHECK(a.targets.to_vector<float>() == b.targets.to_vector<float>());
    CHECK(a.targets.to_vector<float>() != c.targets.to_vector<float>());
  }
}

TEST_CASE("label smoothing: targets become (1 - e) y + e / C, mixed or not") {
  const TestBatch t = constant_batch(6, 1, 8, 8, 5);
  for (MixMethod method : {MixMethod::None, MixMethod::DCutMix}) {
    MixOptions o = options(method);
    Generator g1(4), g2(4);
    const MixedBatch plain = mix_batch(t.images, t.labels, t.indices, 5, o, g1);
    o.label_smoothing = 0.1;
    const MixedBatch smooth = mix_batch(t.images, t.labels, t.indices, 5, o, g2);
    const std::vector<float> y = plain.targets.to_vector<float>(), ys = smooth.targets.to_vector<float>();
    for (size_t i = 0; i < y.size(); ++i) CHECK(ys[i] == doctest::Approx(0.9 * y[i] + 0.02).epsilon(1e-6));
    const std::vector<float> via_function = smooth_targets(plain.targets, 0.1).to_vector<float>();
    for (size_t i = 0; i < y.size(); ++i) CHECK(via_function[i] == doctest::Approx(ys[i]).epsilon(1e-6));
  }
  CHECK_THROWS_AS(smooth_targets(Tensor::zeros({2, 3}), 1.0), Error);
}

TEST_CASE("method names parse; bad names, options and inputs are clear errors") {
  CHECK(parse_mix_method("none") == MixMethod::None);
  CHECK(parse_mix_method("cutout") == MixMethod::Cutout);
  CHECK(parse_mix_method("mixup") == MixMethod::Mixup);
  CHECK(parse_mix_method("CutMix") == MixMethod::CutMix);
  CHECK(parse_mix_method("dmixup") == MixMethod::DMixup);
  CHECK(parse_mix_method("dcutmix") == MixMethod::DCutMix);
  CHECK(parse_mix_method("saliency_dcutmix") == MixMethod::SaliencyDCutMix);
  for (MixMethod m : {MixMethod::None, MixMethod::Cutout, MixMethod::Mixup, MixMethod::CutMix, MixMethod::DMixup,
                      MixMethod::DCutMix, MixMethod::SaliencyDCutMix})
    CHECK(parse_mix_method(mix_method_name(m)) == m);
  CHECK_THROWS_WITH_AS(parse_mix_method("manifold-mixup"), doctest::Contains("expected none, cutout"), Error);

  const TestBatch t = constant_batch(4, 1, 4, 4, 3);
  Generator gen(0);
  CHECK_THROWS_WITH_AS(mix_batch(t.images, t.labels, t.indices, 2, options(MixMethod::DCutMix), gen),
                       doctest::Contains("outside [0, 2)"), Error);
  CHECK_THROWS_WITH_AS(mix_batch(t.images, t.labels, t.indices, 3, options(MixMethod::DCutMix, 1), gen),
                       doctest::Contains("k >= 2"), Error);
  CHECK_THROWS_AS(mix_batch(t.images, t.labels, t.indices, 3, options(MixMethod::Mixup, 2, 0.0), gen), Error);
  CHECK_THROWS_AS(mix_batch(t.images, t.labels, t.indices, 3, options(MixMethod::DCutMix, 3, 1.0, 1.5), gen), Error);
  CHECK_THROWS_AS(mix_batch(t.images.reshape({4, 16}), t.labels, t.indices, 3, options(MixMethod::DCutMix), gen), Error);
  CHECK_THROWS_AS(mix_batch(t.images, t.labels.reshape({2, 2}), t.indices, 3, options(MixMethod::DCutMix), gen), Error);
  CHECK_THROWS_AS(mix_batch(t.images.to(DType::f64), t.labels, t.indices, 3, options(MixMethod::DCutMix), gen), Error);
  MixOptions bad_mean = options(MixMethod::SaliencyDCutMix);
  bad_mean.mean = {0.5f, 0.5f};
  bad_mean.std = {0.5f, 0.5f};
  CHECK_THROWS_AS(mix_batch(t.images, t.labels, t.indices, 3, bad_mean, gen), Error);
  const TestBatch two_channels = constant_batch(4, 2, 4, 4, 3);
  CHECK_THROWS_WITH_AS(mix_batch(two_channels.images, two_channels.labels, two_channels.indices, 3,
                                 options(MixMethod::SaliencyDCutMix), gen),
                       doctest::Contains("1 or 3 channels"), Error);
  // Without dataset indices the components name batch positions.
  const MixedBatch m = mix_batch(t.images, t.labels, Tensor(), 3, options(MixMethod::DCutMix), gen);
  for (int64_t b = 0; b < 4; ++b) CHECK(m.components[b][0].index == b);
}
