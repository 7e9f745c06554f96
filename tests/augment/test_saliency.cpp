// Saliency detectors: the FFT against a naive DFT, bilinear resizing on hand-computed
// cases, and both detectors finding a bright blob on a flat background.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <string>
#include <vector>

#include "augment/saliency.h"
#include "engine/error.h"

using namespace dmix;
using namespace dmix::augment;

namespace {

using cd = std::complex<double>;

std::vector<cd> naive_dft(const std::vector<cd>& x, bool inverse) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<cd> out(x.size());
  const double sign = inverse ? 1.0 : -1.0;
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < n; ++j) out[k] += x[j] * std::polar(1.0, sign * 2.0 * M_PI * double(j * k % n) / n);
  return out;
}

std::vector<cd> test_signal(int64_t n) {
  std::vector<cd> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[i] = {std::sin(0.7 * i + 0.3) + 0.1 * i, std::cos(1.3 * i) - 0.05 * i * i};
  return x;
}

// A flat background with one bright disc of radius r centred at (cy, cx), in every channel.
std::vector<float> blob_image(int64_t C, int64_t H, int64_t W, int64_t cy, int64_t cx, double r, float background,
                              float blob) {
  std::vector<float> img(static_cast<size_t>(C * H * W), background);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        if ((y - cy) * (y - cy) + (x - cx) * (x - cx) <= r * r) img[(c * H + y) * W + x] = blob;
  return img;
}

}  // namespace

TEST_CASE("fft matches a naive DFT, forward and inverse, for every power-of-two length up to 64") {
  for (int64_t n : {1, 2, 4, 8, 16, 64}) {
    for (bool inverse : {false, true}) {
      const std::vector<cd> x = test_signal(n);
      std::vector<cd> y = x;
      fft(y.data(), n, inverse);
      const std::vector<cd> ref = naive_dft(x, inverse);
      for (int64_t k = 0; k < n; ++k) CHECK(std::abs(y[k] - ref[k]) < 1e-9 * (1 + std::abs(ref[k])));
    }
  }
  CHECK_THROWS_AS(fft(test_signal(12).data(), 12, false), Error);
}

TEST_CASE("fft2d is the 2-D DFT and the inverse undoes it up to rows * cols") {
  const int64_t R = 4, Cc = 8;
  const std::vector<cd> x = test_signal(R * Cc);
  std::vector<cd> y = x;
  fft2d(y.data(), R, Cc, false);
  for (int64_t u = 0; u < R; ++u)
    for (int64_t v = 0; v < Cc; ++v) {
      cd ref = 0;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < Cc; ++c)
          ref += x[r * Cc + c] * std::polar(1.0, -2.0 * M_PI * (double(u * r) / R + double(v * c) / Cc));
      CHECK(std::abs(y[u * Cc + v] - ref) < 1e-9 * (1 + std::abs(ref)));
    }
  fft2d(y.data(), R, Cc, true);
  for (int64_t i = 0; i < R * Cc; ++i) CHECK(std::abs(y[i] / double(R * Cc) - x[i]) < 1e-12);
  CHECK_THROWS_AS(fft2d(y.data(), 4, 6, false), Error);
}

TEST_CASE("resize_bilinear: identity, halving averages pixel pairs, constants stay constant") {
  std::vector<float> src(4 * 6);
  for (size_t i = 0; i < src.size(); ++i) src[i] = float(i * i % 7) + 0.5f;
  std::vector<float> same(src.size());
  resize_bilinear(src.data(), 4, 6, same.data(), 4, 6);
  for (size_t i = 0; i < src.size(); ++i) CHECK(same[i] == doctest::Approx(src[i]));

  // Halving: output pixel i sits at input position 2i + 0.5, halfway between 2i and 2i + 1.
  std::vector<float> half(2 * 3);
  resize_bilinear(src.data(), 4, 6, half.data(), 2, 3);
  for (int64_t y = 0; y < 2; ++y)
    for (int64_t x = 0; x < 3; ++x) {
      const float mean = 0.25f * (src[(2 * y) * 6 + 2 * x] + src[(2 * y) * 6 + 2 * x + 1] +
                                  src[(2 * y + 1) * 6 + 2 * x] + src[(2 * y + 1) * 6 + 2 * x + 1]);
      CHECK(half[y * 3 + x] == doctest::Approx(mean));
    }

  std::vector<float> flat(3 * 5, 0.25f), big(64 * 64);
  resize_bilinear(flat.data(), 3, 5, big.data(), 64, 64);
  for (float v : big) CHECK(v == doctest::Approx(0.25f));
}

TEST_CASE("both detectors put the peak on a single bright blob, in colour and in grey") {
  struct Case {
    int64_t C, H, W, cy, cx;
    double r;
  };
  // Off-centre blobs on non-square images, so swapped rows and columns cannot pass.
  for (const Case& t : {Case{3, 32, 48, 22, 9, 3.0}, Case{1, 28, 28, 6, 19, 2.5}, Case{3, 96, 80, 30, 61, 6.0},
                        Case{1, 32, 32, 27, 4, 2.0}}) {
    const std::vector<float> img = blob_image(t.C, t.H, t.W, t.cy, t.cx, t.r, 0.3f, 0.95f);
    for (SaliencyDetector d : {SaliencyDetector::SpectralResidual, SaliencyDetector::FineGrained}) {
      const std::string detector = saliency_detector_name(d);
      CAPTURE(detector);
      CAPTURE(t.H);
      const std::vector<float> map = saliency_map(d, img.data(), t.C, t.H, t.W);
      REQUIRE(map.size() == size_t(t.H * t.W));
      float lo = 1e9f, hi = -1e9f;
      for (float v : map) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      CHECK(lo >= 0.0f);
      CHECK(hi <= 1.0f);
      CHECK(hi > 0.0f);
      // Named variables, not a structured binding: CAPTURE's lambda cannot capture one in C++17.
      const std::pair<int64_t, int64_t> peak = argmax_pixel(map, t.H, t.W);
      const int64_t py = peak.first, px = peak.second;
      CAPTURE(py);
      CAPTURE(px);
      const double dist = std::hypot(double(py - t.cy), double(px - t.cx));
      CHECK(dist <= t.r + 1.0);
    }
  }
}

TEST_CASE("fine_grained_saliency equals a direct centre-surround computation without the integral image") {
  const int64_t H = 13, W = 17;
  std::vector<float> img(3 * H * W);
  for (size_t i = 0; i < img.size(); ++i) img[i] = float((i * 37 + 11) % 101) / 100.0f;
  // Grey u8, then two [1 2 1]/4 blurs with mirrored borders, rounded to u8 each time.
  std::vector<int> g(H * W);
  for (int64_t i = 0; i < H * W; ++i)
    g[i] = int(std::lround(std::clamp(0.299f * img[i] + 0.587f * img[H * W + i] + 0.114f * img[2 * H * W + i], 0.0f, 1.0f) * 255.0f));
  auto mirror = [](int64_t i, int64_t n) { return i < 0 ? -i : (i >= n ? 2 * n - 2 - i : i); };
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<int> next(H * W);
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        int s = 0;
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx)
            s += (2 - std::abs(dy)) * (2 - std::abs(dx)) * g[mirror(y + dy, H) * W + mirror(x + dx, W)];
        next[y * W + x] = (s + 8) / 16;
      }
    g = next;
  }
  std::vector<int> total(H * W, 0);
  for (int64_t n : {12, 24, 48, 28, 56, 112})
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        // Pixels of rows [y - n + 1, y + n] and columns [x - n + 1, x + n] inside the image.
        double sum = 0;
        int64_t count = 0;
        for (int64_t yy = std::max<int64_t>(y - n + 1, 0); yy <= std::min<int64_t>(y + n, H - 1); ++yy)
          for (int64_t xx = std::max<int64_t>(x - n + 1, 0); xx <= std::min<int64_t>(x + n, W - 1); ++xx) {
            sum += g[yy * W + xx];
            ++count;
          }
        const float mean = float((sum - g[y * W + x]) / double(count - 1));
        const float on = float(g[y * W + x]) - mean, off = mean - float(g[y * W + x]);
        total[y * W + x] += (on > 0 ? int(on) : 0) + (off > 0 ? int(off) : 0);
      }
  const int top = *std::max_element(total.begin(), total.end());
  REQUIRE(top > 0);
  const std::vector<float> map = fine_grained_saliency(img.data(), 3, H, W);
  for (int64_t i = 0; i < H * W; ++i) CHECK(map[i] == doctest::Approx(float(total[i]) / float(top)).epsilon(1e-6));
}

TEST_CASE("a dark blob on a bright background is salient too (off-centre response)") {
  const std::vector<float> img = blob_image(1, 40, 40, 12, 28, 3.0, 0.8f, 0.1f);
  for (SaliencyDetector d : {SaliencyDetector::SpectralResidual, SaliencyDetector::FineGrained}) {
    const auto [py, px] = argmax_pixel(saliency_map(d, img.data(), 1, 40, 40), 40, 40);
    CHECK(std::hypot(double(py - 12), double(px - 28)) <= 4.0);
  }
}

TEST_CASE("a flat image has no salient pixel: zero map, argmax (0, 0)") {
  const std::vector<float> img(3 * 16 * 24, 0.6f);
  for (SaliencyDetector d : {SaliencyDetector::SpectralResidual, SaliencyDetector::FineGrained}) {
    const std::vector<float> map = saliency_map(d, img.data(), 3, 16, 24);
    for (float v : map) CHECK(v == 0.0f);
    CHECK(argmax_pixel(map, 16, 24) == std::pair<int64_t, int64_t>{0, 0});
  }
}

TEST_CASE("argmax_pixel: row-major, first maximum on ties; size mismatch is an error") {
  std::vector<float> map(3 * 4, 0.0f);
  map[1 * 4 + 2] = 5.0f;
  map[2 * 4 + 1] = 5.0f;
  CHECK(argmax_pixel(map, 3, 4) == std::pair<int64_t, int64_t>{1, 2});
  CHECK_THROWS_AS(argmax_pixel(map, 4, 4), Error);
}

TEST_CASE("detector names parse; bad names and channel counts are errors") {
  CHECK(parse_saliency_detector("spectral-residual") == SaliencyDetector::SpectralResidual);
  CHECK(parse_saliency_detector("fine_grained") == SaliencyDetector::FineGrained);
  CHECK_THROWS_WITH_AS(parse_saliency_detector("itti"), doctest::Contains("spectral-residual or fine-grained"), Error);
  const std::vector<float> img(2 * 8 * 8, 0.5f);
  CHECK_THROWS_AS(spectral_residual_saliency(img.data(), 2, 8, 8), Error);
  CHECK_THROWS_AS(fine_grained_saliency(img.data(), 2, 8, 8), Error);
}
