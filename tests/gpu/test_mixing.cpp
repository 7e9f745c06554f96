// Batch mixing on cuda:0 against the same mixing on the CPU (augment/mixing.h): for the
// same Generator seed, every method (Cutout, Mixup, CutMix, DMixup, DCutMix,
// Saliency-DCutMix, and unmixed batches), K = 2, 3, 5, several alphas, mix probability 1
// and 0.5 (so some batches are gated off), odd image sizes, one or three channels. The
// draws and the geometry are made on the host for both devices, so what may differ is only
// the pixel work of the kernels in kernels/cuda/mixing.h; the kernels are also checked
// directly against a naive host loop, with overlapping and empty boxes.
//
// What must match, and how closely:
//   - mixed flag, generator stream count, components (index, label, weight) and targets:
//     identical (all made by the same host code);
//   - pasted and copied pixels (Cutout, CutMix, DCutMix, Saliency-DCutMix, unmixed):
//     identical, they are copies;
//   - blended pixels (Mixup, DMixup): both devices compute w_0 x_0 and then
//     fma(w_k, x_k, .) with explicit single roundings (std::fma on the host, __fmul_rn /
//     __fmaf_rn on the device), so they are expected bit-identical and the count of
//     identical elements is reported. The check allows one float ulp of the CPU value
//     plus FLT_MIN, the one thing that may legitimately differ: a host that flushes
//     denormals to zero (dmix train enables FTZ/DAZ) rounds a tiny product to 0 where the
//     GPU keeps it, which moves a sum by at most an ulp. A wrong source image or weight
//     is off by O(1).
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "augment/mixing.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "kernels/cuda/mixing.h"
#include "tests/gpu/gpu_test_util.h"

using namespace dmix;
using namespace dmix::augment;
using dmix::gpu_test::DeviceBuffer;
using dmix::gpu_test::has_gpu;

namespace {

const Device kGpu = Device::cuda(0);

struct Batch {
  Tensor images, labels, indices;
  int64_t classes;
};

// Normal-distributed pixels (a normalised batch), labels with repeats, dataset indices
// unlike the batch positions.
Batch random_batch(int64_t B, int64_t C, int64_t H, int64_t W, int64_t classes, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> pixels(static_cast<size_t>(B * C * H * W));
  for (float& v : pixels) v = normal(gen);
  std::vector<int64_t> labels(static_cast<size_t>(B)), indices(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    labels[static_cast<size_t>(b)] = (b * 7 + seed) % classes;
    indices[static_cast<size_t>(b)] = 500 + 3 * b;
  }
  return {Tensor::from_vector(pixels, {B, C, H, W}), Tensor::from_vector(labels, {B}),
          Tensor::from_vector(indices, {B}), classes};
}

MixOptions options(MixMethod method, int64_t k, double alpha, double prob) {
  MixOptions o;
  o.method = method;
  o.k = k;
  o.alpha = alpha;
  o.prob = prob;
  return o;
}

// Bit patterns, not values: 0 and -0 differ, and a NaN matches the same NaN.
bool same_bits(float a, float b) {
  uint32_t a_bits = 0, b_bits = 0;
  std::memcpy(&a_bits, &a, sizeof(a_bits));
  std::memcpy(&b_bits, &b, sizeof(b_bits));
  return a_bits == b_bits;
}

// Running totals for one method over all its cases.
struct Tally {
  int64_t batches = 0, mixed = 0, elements = 0, identical = 0, failures = 0;
  double max_abs = 0.0, max_ulps = 0.0;
  std::string text() const {
    std::ostringstream os;
    os << batches << " batches (" << mixed << " mixed), " << elements << " pixels, " << identical
       << " bit-identical, max abs diff " << max_abs << ", max diff in ulps " << max_ulps;
    if (failures > 0) os << ", " << failures << " out of tolerance";
    return os.str();
  }
};

bool is_blend(MixMethod m) { return m == MixMethod::Mixup || m == MixMethod::DMixup; }

// Pixels: exact for copies and pastes, one ulp + FLT_MIN for blends (see the top).
void compare_pixels(const std::vector<float>& cpu, const std::vector<float>& gpu, bool blend, Tally& tally) {
  REQUIRE(cpu.size() == gpu.size());
  tally.elements += static_cast<int64_t>(cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (same_bits(cpu[i], gpu[i])) {
      ++tally.identical;
      continue;
    }
    const double ref = cpu[i], got = gpu[i], err = std::abs(ref - got);
    const double ulp = std::max(std::abs(ref) * FLT_EPSILON, double(FLT_MIN));
    const double allowed = blend ? std::abs(ref) * FLT_EPSILON + FLT_MIN : 0.0;
    if (!(err <= allowed)) ++tally.failures;  // NaN fails too
    tally.max_abs = std::max(tally.max_abs, err);
    tally.max_ulps = std::max(tally.max_ulps, err / ulp);
  }
}

// Mixes `reps` batches in a row with Generator(seed) on the CPU batch and on its copy on
// cuda:0 (labels and indices as given: CPU or GPU tensors) and compares everything.
void compare_devices(const Batch& t, const Tensor& labels, const Tensor& indices, const MixOptions& o, uint64_t seed,
                     int reps, Tally& tally) {
  const Tensor gpu_images = t.images.to(kGpu);
  const std::vector<float> original = t.images.to_vector<float>();
  Generator on_cpu(seed), on_gpu(seed);
  for (int rep = 0; rep < reps; ++rep) {
    CAPTURE(rep);
    const MixedBatch c = mix_batch(t.images, t.labels, indices.defined() ? t.indices : Tensor(), t.classes, o, on_cpu);
    const MixedBatch g = mix_batch(gpu_images, labels, indices, t.classes, o, on_gpu);
    ++tally.batches;
    tally.mixed += c.mixed;
    REQUIRE(g.images.device() == kGpu);
    REQUIRE(g.targets.device() == kGpu);
    REQUIRE(g.images.shape() == c.images.shape());
    REQUIRE(g.targets.shape() == c.targets.shape());
    CHECK(g.mixed == c.mixed);
    CHECK(on_gpu.stream() == on_cpu.stream());

    REQUIRE(g.components.size() == c.components.size());
    int64_t component_mismatches = 0;
    for (size_t b = 0; b < c.components.size(); ++b) {
      REQUIRE(g.components[b].size() == c.components[b].size());
      for (size_t k = 0; k < c.components[b].size(); ++k) {
        const MixComponent &x = c.components[b][k], &y = g.components[b][k];
        component_mismatches += !(x.index == y.index && x.label == y.label && x.weight == y.weight);
      }
    }
    CHECK(component_mismatches == 0);
    CHECK(g.targets.to_vector<float>() == c.targets.to_vector<float>());

    compare_pixels(c.images.to_vector<float>(), g.images.to_vector<float>(), c.mixed && is_blend(o.method), tally);
    CHECK(gpu_images.to_vector<float>() == original);  // the input batch is left alone
  }
}

struct Size {
  int64_t B, C, H, W;
};

}  // namespace

TEST_CASE("cuda mixing: CPU and CUDA mixing give identical results for the same RNG stream" *
          doctest::skip(!has_gpu())) {
  // Odd sizes, one and three channels, planes smaller and larger than a thread block.
  const std::vector<Size> sizes = {{7, 3, 13, 11}, {5, 1, 9, 17}, {6, 3, 37, 29}};
  const MixMethod methods[] = {MixMethod::None,   MixMethod::Cutout,  MixMethod::Mixup,          MixMethod::CutMix,
                               MixMethod::DMixup, MixMethod::DCutMix, MixMethod::SaliencyDCutMix};
  for (MixMethod method : methods) {
    const std::string name = mix_method_name(method);
    CAPTURE(name);
    const bool k_images =
        method == MixMethod::DMixup || method == MixMethod::DCutMix || method == MixMethod::SaliencyDCutMix;
    Tally tally;
    for (size_t si = 0; si < sizes.size(); ++si) {
      const Size& s = sizes[si];
      CAPTURE(s.B);
      CAPTURE(s.C);
      CAPTURE(s.H);
      CAPTURE(s.W);
      const Batch t = random_batch(s.B, s.C, s.H, s.W, 4, static_cast<uint32_t>(17 + si));
      for (int64_t K : {2, 3, 5}) {
        if (!k_images && K != 2) continue;
        for (double alpha : {0.2, 1.0, 3.0})
          for (double prob : {1.0, 0.5}) {
            CAPTURE(K);
            CAPTURE(alpha);
            CAPTURE(prob);
            MixOptions o = options(method, K, alpha, prob);
            // Cutout squares from 3 pixels to larger than the image.
            o.cutout_length = alpha == 3.0 ? 2 * s.H + 1 : 3 + int64_t(4 * alpha);
            o.label_smoothing = alpha == 1.0 ? 0.1 : 0.0;
            if (method == MixMethod::SaliencyDCutMix) {
              o.detector = alpha == 1.0 ? SaliencyDetector::FineGrained : SaliencyDetector::SpectralResidual;
              if (prob == 1.0) {
                o.mean.assign(static_cast<size_t>(s.C), 0.45f);
                o.std.assign(static_cast<size_t>(s.C), 0.22f);
              }
            }
            const uint64_t seed = 1000 * si + 100 * uint64_t(K) + uint64_t(10 * alpha) + uint64_t(prob * 2);
            compare_devices(t, t.labels, t.indices, o, seed, 4, tally);
          }
      }
    }
    MESSAGE(name << ": " << tally.text());
    CHECK(tally.failures == 0);
    if (method != MixMethod::None) CHECK(tally.mixed > 0);
    if (!is_blend(method)) CHECK(tally.identical == tally.elements);
  }
}

TEST_CASE("cuda mixing: a large batch (96 x 3 x 64 x 64), K = 5, alpha = 0.2" * doctest::skip(!has_gpu())) {
  // Many blocks per plane on the GPU, and over the CPU's threshold for its threaded loops.
  const Batch t = random_batch(96, 3, 64, 64, 10, 5);
  for (MixMethod method : {MixMethod::DCutMix, MixMethod::DMixup, MixMethod::SaliencyDCutMix, MixMethod::CutMix,
                           MixMethod::Mixup, MixMethod::Cutout}) {
    const std::string name = mix_method_name(method);
    CAPTURE(name);
    Tally tally;
    MixOptions o = options(method, 5, 0.2, 1.0);
    o.cutout_length = 24;
    compare_devices(t, t.labels, t.indices, o, 77, 2, tally);
    MESSAGE(name << " (96 x 3 x 64 x 64): " << tally.text());
    CHECK(tally.failures == 0);
  }
}

TEST_CASE("cuda mixing: labels and indices on the GPU, or no indices" * doctest::skip(!has_gpu())) {
  const Batch t = random_batch(9, 3, 15, 13, 5, 3);
  for (MixMethod method : {MixMethod::DCutMix, MixMethod::Mixup, MixMethod::SaliencyDCutMix}) {
    const std::string name = mix_method_name(method);
    CAPTURE(name);
    Tally tally;
    compare_devices(t, t.labels.to(kGpu), t.indices.to(kGpu), options(method, 3, 1.0, 1.0), 8, 2, tally);
    compare_devices(t, t.labels.to(kGpu), Tensor(), options(method, 3, 1.0, 1.0), 9, 2, tally);
    MESSAGE(name << " (labels on the GPU): " << tally.text());
    CHECK(tally.failures == 0);
  }
  // Bad labels are still caught when they live on the GPU.
  Tensor bad = Tensor::from_vector(std::vector<int64_t>(9, 7), {9}).to(kGpu);
  Generator gen(1);
  CHECK_THROWS_WITH_AS(mix_batch(t.images.to(kGpu), bad, Tensor(), 5, options(MixMethod::DCutMix, 3, 1.0, 1.0), gen),
                       doctest::Contains("outside [0, 5)"), Error);
}

TEST_CASE("cuda mixing kernels: mix_paste and mix_blend against a naive host loop" * doctest::skip(!has_gpu())) {
  const int64_t B = 4, C = 2, H = 7, W = 9, CHW = C * H * W;
  const std::vector<float> x = gpu_test::random_floats(static_cast<size_t>(B * CHW), 11);
  DeviceBuffer<float> xd(x.size()), yd(x.size());
  xd.upload(x);

  SUBCASE("paste: the last box containing a pixel wins; -1 pastes zeros; empty boxes do nothing") {
    const int64_t K = 4;
    // Per sample: sources, then 3 boxes {top, left, height, width}: overlapping, not
    // nested, touching the border, empty, and the whole image.
    const std::vector<int64_t> source = {0, 1, -1, 3, /**/ 1, 1, 2, 0, /**/ -1, 3, 0, 1, /**/ 3, 2, 1, 0};
    const std::vector<int64_t> boxes = {1, 1, 4, 5, /**/ 3, 3, 4, 6, /**/ 0, 8, 7, 1,   //
                                        0, 0, 7, 9, /**/ 2, 2, 0, 4, /**/ 6, 0, 1, 9,   //
                                        2, 2, 3, 3, /**/ 5, 7, 0, 0, /**/ 0, 0, 1, 1,   //
                                        0, 0, 0, 0, /**/ 0, 0, 0, 0, /**/ 0, 0, 0, 0};
    kernels::cuda::mix_paste(xd.get(), B, C, H, W, K, source.data(), boxes.data(), yd.get(), 0);
    const std::vector<float> got = yd.download();
    int64_t mismatches = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t r = 0; r < H; ++r)
          for (int64_t q = 0; q < W; ++q) {
            int64_t from = source[static_cast<size_t>(b * K)];
            for (int64_t j = 0; j + 1 < K; ++j) {
              const int64_t* box = &boxes[static_cast<size_t>((b * (K - 1) + j) * 4)];
              if (r >= box[0] && r < box[0] + box[2] && q >= box[1] && q < box[1] + box[3])
                from = source[static_cast<size_t>(b * K + j + 1)];
            }
            const float expected = from < 0 ? 0.0f : x[static_cast<size_t>(((from * C + c) * H + r) * W + q)];
            mismatches += !same_bits(got[static_cast<size_t>(((b * C + c) * H + r) * W + q)], expected);
          }
    MESSAGE("mix_paste: " << mismatches << " of " << got.size() << " pixels differ from the host loop");
    CHECK(mismatches == 0);

    // K = 1: a plain gather of whole images.
    const std::vector<int64_t> gather = {2, 2, -1, 0};
    kernels::cuda::mix_paste(xd.get(), B, C, H, W, 1, gather.data(), nullptr, yd.get(), 0);
    const std::vector<float> gathered = yd.download();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < CHW; ++i) {
        const int64_t from = gather[static_cast<size_t>(b)];
        const float expected = from < 0 ? 0.0f : x[static_cast<size_t>(from * CHW + i)];
        mismatches += !same_bits(gathered[static_cast<size_t>(b * CHW + i)], expected);
      }
    CHECK(mismatches == 0);
  }

  SUBCASE("blend: w_0 x_0, then fma(w_k, x_k, .) in order, bit for bit") {
    for (int64_t K : {1, 2, 3, 5}) {
      CAPTURE(K);
      std::vector<int64_t> source(static_cast<size_t>(B * K));
      std::vector<float> weight(static_cast<size_t>(B * K));
      std::mt19937 gen(static_cast<uint32_t>(K));
      for (size_t i = 0; i < source.size(); ++i) {
        source[i] = static_cast<int64_t>(gen() % B);
        weight[i] = std::uniform_real_distribution<float>(0.0f, 1.0f)(gen);
      }
      kernels::cuda::mix_blend(xd.get(), B, CHW, K, source.data(), weight.data(), yd.get(), 0);
      const std::vector<float> got = yd.download();
      auto w = [&](int64_t b, int64_t k) { return weight[static_cast<size_t>(b * K + k)]; };
      auto pixel = [&](int64_t b, int64_t k, int64_t i) {
        return x[static_cast<size_t>(source[static_cast<size_t>(b * K + k)] * CHW + i)];
      };
      int64_t mismatches = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < CHW; ++i) {
          float acc = w(b, 0) * pixel(b, 0, i);
          for (int64_t k = 1; k < K; ++k) acc = std::fma(w(b, k), pixel(b, k, i), acc);
          mismatches += !same_bits(got[static_cast<size_t>(b * CHW + i)], acc);
        }
      MESSAGE("mix_blend K=" << K << ": " << mismatches << " of " << got.size() << " values differ from the host chain");
      CHECK(mismatches == 0);
    }
  }

  SUBCASE("bad tables are errors, not out-of-bounds reads") {
    const std::vector<int64_t> source = {0, 4, 1, 2};  // 4 is not a sample
    const std::vector<float> weight = {1, 1, 1, 1};
    CHECK_THROWS_AS(kernels::cuda::mix_blend(xd.get(), B, CHW, 1, source.data(), weight.data(), yd.get(), 0), Error);
    const std::vector<int64_t> ok = {0, 1, 2, 3, 0, 1, 2, 3};
    const std::vector<int64_t> outside = {5, 5, 3, 3, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1};  // 5 + 3 > H
    CHECK_THROWS_AS(kernels::cuda::mix_paste(xd.get(), B, C, H, W, 2, ok.data(), outside.data(), yd.get(), 0), Error);
  }
}
