// Per-sample transforms: exact geometry on small synthetic images, the colour stages
// against hand-computed values, presets, validation errors, and determinism per seed.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <tuple>
#include <vector>

#include "augment/transforms.h"
#include "engine/error.h"

using namespace dmix;
using namespace dmix::augment;

namespace {

std::vector<uint8_t> ramp_image(int64_t C, int64_t H, int64_t W, int step = 1) {
  std::vector<uint8_t> img(static_cast<size_t>(C * H * W));
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>((i * step + 3) % 256);
  return img;
}

// Naive reference for the pad-crop-flip stage: pixel (y, x) of the output reads the padded
// image at (top + y, left + x'), x' mirrored when flipped.
std::vector<float> naive_pad_crop(const std::vector<uint8_t>& src, int64_t C, int64_t H, int64_t W, int64_t pad,
                                  int64_t top, int64_t left, bool flip) {
  std::vector<float> out(static_cast<size_t>(C * H * W));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const int64_t cx = flip ? W - 1 - x : x;
        const int64_t py = top + y, px = left + cx;  // in the padded image
        const int64_t sy = py - pad, sx = px - pad;
        const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
        out[(c * H + y) * W + x] = inside ? src[(c * H + sy) * W + sx] / 255.0f : 0.0f;
      }
  return out;
}

std::vector<float> run(const Pipeline& p, const std::vector<uint8_t>& src, int64_t C, int64_t H, int64_t W,
                       uint64_t seed, uint64_t epoch, uint64_t index) {
  const auto [oh, ow] = p.output_hw(H, W);
  std::vector<float> out(static_cast<size_t>(C * oh * ow));
  SampleRng rng(seed, epoch, index);
  apply(p, src.data(), C, H, W, out.data(), oh, ow, rng);
  return out;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("transforms: pad_crop_u8 matches the naive padded crop for every offset and flip") {
  const int64_t C = 2, H = 3, W = 5, pad = 2;
  const auto src = ramp_image(C, H, W, 11);
  std::vector<float> out(static_cast<size_t>(C * H * W));
  for (int64_t top = 0; top <= 2 * pad; ++top)
    for (int64_t left = 0; left <= 2 * pad; ++left)
      for (bool flip : {false, true}) {
        pad_crop_u8(src.data(), C, H, W, pad, top, left, flip, out.data(), H, W);
        CHECK(bitwise_equal(out, naive_pad_crop(src, C, H, W, pad, top, left, flip)));
      }
  // The centred crop without flip is the image itself.
  pad_crop_u8(src.data(), C, H, W, pad, pad, pad, false, out.data(), H, W);
  for (size_t i = 0; i < src.size(); ++i) CHECK(out[i] == src[i] / 255.0f);
}

TEST_CASE("transforms: a random pad-crop + flip is always one of the exact candidates, and all of them occur") {
  const int64_t C = 1, H = 4, W = 6, pad = 1;
  const auto src = ramp_image(C, H, W, 13);
  Pipeline p;
  p.pad_crop = pad;
  p.hflip = true;
  std::set<std::tuple<int64_t, int64_t, bool>> seen;
  for (uint64_t i = 0; i < 400; ++i) {
    const auto out = run(p, src, C, H, W, 7, 0, i);
    int matches = 0;
    for (int64_t top = 0; top <= 2 * pad; ++top)
      for (int64_t left = 0; left <= 2 * pad; ++left)
        for (bool flip : {false, true})
          if (bitwise_equal(out, naive_pad_crop(src, C, H, W, pad, top, left, flip))) {
            ++matches;
            seen.insert(std::make_tuple(top, left, flip));
          }
    REQUIRE(matches == 1);  // the ramp has no symmetry, so exactly one candidate fits
  }
  CHECK(seen.size() == 18);  // 3 x 3 offsets x 2 flips
}

TEST_CASE("transforms: hflip alone gives the image or its mirror, about half each") {
  const int64_t C = 3, H = 2, W = 5;
  const auto src = ramp_image(C, H, W, 17);
  Pipeline p;
  p.hflip = true;
  int flipped = 0;
  const int n = 1000;
  for (int i = 0; i < n; ++i) {
    const auto out = run(p, src, C, H, W, 1, 2, i);
    bool same = true, mirror = true;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const float v = out[(c * H + y) * W + x];
          same = same && v == src[(c * H + y) * W + x] / 255.0f;
          mirror = mirror && v == src[(c * H + y) * W + (W - 1 - x)] / 255.0f;
        }
    REQUIRE(same != mirror);
    flipped += mirror;
  }
  CHECK(flipped > n * 0.4);
  CHECK(flipped < n * 0.6);
}

TEST_CASE("transforms: normalize gives (v / 255 - mean) / std per channel") {
  const int64_t C = 3, H = 2, W = 3;
  const auto src = ramp_image(C, H, W, 29);
  Pipeline p = eval_pipeline("cifar10");
  const auto out = run(p, src, C, H, W, 0, 0, 0);
  const double mean[3] = {125.3 / 255, 123.0 / 255, 113.9 / 255};
  const double stdv[3] = {63.0 / 255, 62.1 / 255, 66.7 / 255};
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < H * W; ++i) {
      const double expect = (src[c * H * W + i] / 255.0 - mean[c]) / stdv[c];
      CHECK(out[c * H * W + i] == doctest::Approx(expect).epsilon(1e-5));
    }

  Pipeline f = eval_pipeline("Fashion-MNIST");
  const std::vector<uint8_t> grey{0, 73, 255};
  const auto fo = run(f, grey, 1, 1, 3, 0, 0, 0);
  CHECK(fo[0] == doctest::Approx((0.0 - 0.2860) / 0.3530).epsilon(1e-6));
  CHECK(fo[1] == doctest::Approx((73 / 255.0 - 0.2860) / 0.3530).epsilon(1e-6));
  CHECK(fo[2] == doctest::Approx((1.0 - 0.2860) / 0.3530).epsilon(1e-6));
}

TEST_CASE("transforms: the same (seed, epoch, index) gives the same bytes; any change gives others") {
  const int64_t C = 3, H = 40, W = 52;
  const auto src = ramp_image(C, H, W, 37);
  Pipeline p = train_pipeline("imagenet", 24);
  const auto a = run(p, src, C, H, W, 5, 3, 11);
  CHECK(bitwise_equal(a, run(p, src, C, H, W, 5, 3, 11)));
  CHECK_FALSE(bitwise_equal(a, run(p, src, C, H, W, 6, 3, 11)));
  CHECK_FALSE(bitwise_equal(a, run(p, src, C, H, W, 5, 4, 11)));
  CHECK_FALSE(bitwise_equal(a, run(p, src, C, H, W, 5, 3, 12)));
  for (float v : a) REQUIRE(std::isfinite(v));
}

TEST_CASE("transforms: SampleRng draws are in range and have the right moments") {
  SampleRng rng(123, 4, 99);
  double sum = 0, sum2 = 0, usum = 0;
  const int n = 20000;
  std::vector<int> counts(7, 0);
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    usum += u;
    const int64_t k = rng.randint(-3, 4);
    REQUIRE(k >= -3);
    REQUIRE(k < 4);
    ++counts[k + 3];
    const double z = rng.normal();
    sum += z;
    sum2 += z * z;
  }
  CHECK(usum / n == doctest::Approx(0.5).epsilon(0.02));
  CHECK(sum / n == doctest::Approx(0.0).epsilon(0.03));  // |mean| < 0.03, sd of the mean is 0.007
  CHECK(sum2 / n == doctest::Approx(1.0).epsilon(0.05));
  for (int c : counts) CHECK(c > n / 7.0 * 0.9);
  CHECK_THROWS_AS(rng.randint(2, 2), dmix::Error);
}

TEST_CASE("transforms: color jitter with zero factors is the identity, bit for bit") {
  const int64_t C = 3, H = 5, W = 7;
  const auto src = ramp_image(C, H, W, 41);
  Pipeline plain;
  plain.pad_crop = 2;
  plain.hflip = true;
  Pipeline jitter = plain;
  jitter.color_jitter.enabled = true;
  jitter.color_jitter.brightness = jitter.color_jitter.contrast = jitter.color_jitter.saturation = 0.0;
  for (uint64_t i = 0; i < 20; ++i) {
    // The jitter draws come after the geometry draws, so the crops agree.
    CHECK(bitwise_equal(run(plain, src, C, H, W, 9, 0, i), run(jitter, src, C, H, W, 9, 0, i)));
  }
}

TEST_CASE("transforms: brightness, contrast and saturation move towards their targets") {
  const int64_t HW = 4;
  // channel-major RGB, 4 pixels
  const std::vector<float> rgb{0.1f, 0.5f, 0.9f, 0.3f, 0.2f, 0.4f, 0.6f, 0.8f, 0.0f, 1.0f, 0.5f, 0.25f};
  std::vector<float> grey(HW);
  double grey_mean = 0;
  for (int64_t i = 0; i < HW; ++i) {
    grey[i] = 0.299f * rgb[i] + 0.587f * rgb[HW + i] + 0.114f * rgb[2 * HW + i];
    grey_mean += grey[i] / HW;
  }

  auto img = rgb;
  adjust_brightness(img.data(), 3, HW, 0.25f);  // lerp towards 0: x * 0.75
  for (size_t i = 0; i < img.size(); ++i) CHECK(img[i] == doctest::Approx(rgb[i] * 0.75));

  img = rgb;
  adjust_contrast(img.data(), 3, HW, 1.0f);  // all the way to the mean grey level
  for (float v : img) CHECK(v == doctest::Approx(grey_mean));
  img = rgb;
  adjust_contrast(img.data(), 3, HW, -0.5f);  // away from it
  for (size_t i = 0; i < img.size(); ++i) CHECK(img[i] == doctest::Approx(rgb[i] - 0.5 * (grey_mean - rgb[i])));

  img = rgb;
  adjust_saturation(img.data(), 3, HW, 1.0f);  // the grey image in every channel
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < HW; ++i) CHECK(img[c * HW + i] == doctest::Approx(grey[i]));
  img = rgb;
  adjust_saturation(img.data(), 3, HW, 0.3f);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < HW; ++i)
      CHECK(img[c * HW + i] == doctest::Approx(rgb[c * HW + i] + 0.3 * (grey[i] - rgb[c * HW + i])));

  // One channel: contrast uses the plain mean, saturation leaves it alone.
  std::vector<float> mono{0.2f, 0.4f, 0.9f};
  adjust_saturation(mono.data(), 1, 3, 0.7f);
  CHECK(mono == std::vector<float>{0.2f, 0.4f, 0.9f});
  adjust_contrast(mono.data(), 1, 3, 1.0f);
  for (float v : mono) CHECK(v == doctest::Approx(0.5));
}

TEST_CASE("transforms: lighting adds sum_j eigvec[c][j] * a_j * eigval_j to channel c") {
  const int64_t HW = 6;
  std::vector<float> img(3 * HW);
  for (size_t i = 0; i < img.size(); ++i) img[i] = 0.05f * static_cast<float>(i);
  const auto before = img;
  const LightingParams p;  // ImageNet eigen-decomposition
  const double alpha[3] = {1.0, -2.0, 3.0};
  add_lighting(img.data(), 3, HW, p, alpha);
  const double expect[3] = {
      -0.5675 * 1.0 * 0.2175 + 0.7192 * -2.0 * 0.0188 + 0.4009 * 3.0 * 0.0045,
      -0.5808 * 1.0 * 0.2175 + -0.0045 * -2.0 * 0.0188 + -0.8140 * 3.0 * 0.0045,
      -0.5836 * 1.0 * 0.2175 + -0.6948 * -2.0 * 0.0188 + 0.4203 * 3.0 * 0.0045,
  };
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < HW; ++i)
      CHECK(img[c * HW + i] - before[c * HW + i] == doctest::Approx(expect[c]).epsilon(1e-5));
  CHECK_THROWS_AS(add_lighting(img.data(), 1, HW, p, alpha), dmix::Error);

  // Inside a pipeline, lighting shifts each channel by one constant.
  const int64_t H = 3, W = 4;
  const auto src = ramp_image(3, H, W, 19);
  Pipeline lit;
  lit.lighting.enabled = true;
  const auto out = run(lit, src, 3, H, W, 2, 0, 0);
  for (int64_t c = 0; c < 3; ++c) {
    const float shift = out[c * H * W] - src[c * H * W] / 255.0f;
    CHECK(shift != 0.0f);
    for (int64_t i = 0; i < H * W; ++i)
      CHECK(out[c * H * W + i] - src[c * H * W + i] / 255.0f == doctest::Approx(shift).epsilon(1e-4));
  }
}

TEST_CASE("transforms: resize + centre crop has the right size, keeps a constant image constant") {
  const int64_t C = 3, H = 300, W = 400;
  std::vector<uint8_t> flat(static_cast<size_t>(C * H * W), 77);
  CHECK(resized_hw(H, W, 256) == std::pair<int64_t, int64_t>{256, 341});
  CHECK(resized_hw(500, 375, 256) == std::pair<int64_t, int64_t>{341, 256});
  Pipeline p = eval_pipeline("imagenet");
  CHECK(p.output_hw(H, W) == std::pair<int64_t, int64_t>{224, 224});
  p.mean.clear();
  p.std.clear();
  const auto out = run(p, flat, C, H, W, 0, 0, 0);
  REQUIRE(out.size() == static_cast<size_t>(3 * 224 * 224));
  for (float v : out) REQUIRE(v == doctest::Approx(77 / 255.0).epsilon(1e-6));

  // RandomResizedCrop of a constant image is constant as well, whatever box it picks.
  Pipeline r = train_pipeline("imagenet", 32);
  r.color_jitter.enabled = r.lighting.enabled = false;
  r.mean.clear();
  r.std.clear();
  for (uint64_t i = 0; i < 10; ++i) {
    const auto o = run(r, flat, C, H, W, 3, 0, i);
    REQUIRE(o.size() == static_cast<size_t>(3 * 32 * 32));
    for (float v : o) REQUIRE(v == doctest::Approx(77 / 255.0).epsilon(1e-6));
  }
}

TEST_CASE("transforms: bilinear resize is exact on identity, halving and doubling a ramp") {
  const int64_t H = 1, W = 16;
  std::vector<uint8_t> ramp(W);
  for (int64_t x = 0; x < W; ++x) ramp[x] = static_cast<uint8_t>(10 * x);

  std::vector<float> same(W);
  resized_crop_u8(ramp.data(), 1, H, W, {0, 0, H, W}, false, same.data(), H, W);
  for (int64_t x = 0; x < W; ++x) CHECK(same[x] == ramp[x] / 255.0f);

  // Halving: PIL's widened triangle (weights 1/8, 3/8, 3/8, 1/8) averages each pair.
  std::vector<float> half(W / 2);
  resized_crop_u8(ramp.data(), 1, H, W, {0, 0, H, W}, false, half.data(), H, W / 2);
  for (int64_t o = 1; o < W / 2 - 1; ++o) CHECK(half[o] * 255.0f == doctest::Approx(10.0 * (2 * o + 0.5)));

  // Doubling: linear interpolation at the output pixel centres, (o + 0.5) / 2 - 0.5.
  std::vector<float> twice(2 * W);
  resized_crop_u8(ramp.data(), 1, H, W, {0, 0, H, W}, false, twice.data(), H, 2 * W);
  for (int64_t o = 1; o < 2 * W - 1; ++o) CHECK(twice[o] * 255.0f == doctest::Approx(10.0 * ((o + 0.5) / 2 - 0.5)));

  // A crop box reads only inside the box: box [4, 8) resized to 4 wide is the box itself.
  std::vector<float> boxed(4);
  resized_crop_u8(ramp.data(), 1, H, W, {0, 4, 1, 4}, true, boxed.data(), 1, 4);
  for (int64_t x = 0; x < 4; ++x) CHECK(boxed[x] == ramp[4 + 3 - x] / 255.0f);  // flipped

  CHECK_THROWS_AS(resized_crop_u8(ramp.data(), 1, H, W, {0, 14, 1, 4}, false, boxed.data(), 1, 4), dmix::Error);
}

TEST_CASE("transforms: RandomResizedCrop boxes stay inside the image within the scale and ratio bounds") {
  const RandomResizedCropParams p{true, 224};
  for (uint64_t i = 0; i < 500; ++i) {
    SampleRng rng(77, 0, i);
    const CropBox b = random_resized_crop_box(200, 300, p, rng);
    REQUIRE(b.top >= 0);
    REQUIRE(b.left >= 0);
    REQUIRE(b.top + b.height <= 200);
    REQUIRE(b.left + b.width <= 300);
    const double area = static_cast<double>(b.height) * b.width / (200.0 * 300.0);
    CHECK(area >= 0.07);
    const double ratio = static_cast<double>(b.width) / b.height;
    CHECK(ratio >= 0.7);
    CHECK(ratio <= 1.45);
  }
  // A 1 x 100 strip admits no box with ratio <= 4/3 and area >= 8%: the centred fallback.
  SampleRng rng(1, 0, 0);
  const CropBox b = random_resized_crop_box(1, 100, p, rng);
  CHECK(b.height == 1);
  CHECK(b.width == 1);
  CHECK(b.top == 0);
  CHECK(b.left == 49);
}

TEST_CASE("transforms: presets by dataset name") {
  const Pipeline f = train_pipeline("fashion-mnist");
  CHECK(f.pad_crop == 4);
  CHECK(f.hflip);
  CHECK_FALSE(f.color_jitter.enabled);
  CHECK(f.mean == std::vector<float>{0.2860f});
  CHECK(f.std == std::vector<float>{0.3530f});
  CHECK(f.output_hw(28, 28) == std::pair<int64_t, int64_t>{28, 28});
  const Pipeline fe = eval_pipeline("fashion_mnist");
  CHECK(fe.pad_crop == 0);
  CHECK_FALSE(fe.hflip);

  const Pipeline c = train_pipeline("CIFAR-100");
  CHECK(c.pad_crop == 4);
  CHECK(c.hflip);
  REQUIRE(c.mean.size() == 3);
  CHECK(c.mean[0] == doctest::Approx(125.3 / 255));
  CHECK(c.std[2] == doctest::Approx(66.7 / 255));

  const Pipeline i = train_pipeline("imagenet");
  CHECK(i.random_resized_crop.enabled);
  CHECK(i.random_resized_crop.size == 224);
  CHECK(i.random_resized_crop.scale_lo == 0.08);
  CHECK(i.hflip);
  CHECK(i.color_jitter.enabled);
  CHECK(i.color_jitter.brightness == 0.4);
  CHECK(i.lighting.enabled);
  CHECK(i.lighting.alphastd == 0.1);
  CHECK(i.mean == std::vector<float>{0.485f, 0.456f, 0.406f});
  const Pipeline ie = eval_pipeline("ImageNet-A");
  CHECK(ie.resize_center_crop.enabled);
  CHECK(ie.resize_center_crop.resize == 256);
  CHECK(ie.resize_center_crop.crop == 224);
  CHECK(ie.std == std::vector<float>{0.229f, 0.224f, 0.225f});
  CHECK(eval_pipeline("imagenet", 112).resize_center_crop.resize == 128);

  CHECK_THROWS_WITH_AS(train_pipeline("svhn"), doctest::Contains("no transform preset for dataset 'svhn'"),
                       dmix::Error);
  CHECK_THROWS_AS(train_pipeline("cifar10", 64), dmix::Error);
  CHECK(f.str() == "pad_crop(4) hflip normalize(mean=[0.286], std=[0.353])");
}

TEST_CASE("transforms: validate rejects pipelines that cannot run on the image") {
  Pipeline two;
  two.pad_crop = 4;
  two.random_resized_crop.enabled = true;
  CHECK_THROWS_WITH_AS(two.validate(3, 32, 32), doctest::Contains("at most one"), dmix::Error);

  Pipeline lit;
  lit.lighting.enabled = true;
  CHECK_THROWS_WITH_AS(lit.validate(1, 28, 28), doctest::Contains("3 (RGB) channels"), dmix::Error);

  const Pipeline cifar = train_pipeline("cifar10");
  CHECK_THROWS_WITH_AS(cifar.validate(1, 28, 28), doctest::Contains("3 channel constants for a 1-channel"),
                       dmix::Error);

  Pipeline big = eval_pipeline("imagenet");
  CHECK_NOTHROW(big.validate(3, 100, 100));  // resize makes 256x256, room for 224
  big.resize_center_crop.crop = 300;
  CHECK_THROWS_WITH_AS(big.validate(3, 100, 100), doctest::Contains("larger than"), dmix::Error);

  // apply() checks the output size it is given.
  const auto src = ramp_image(1, 4, 4);
  std::vector<float> out(16);
  SampleRng rng(0, 0, 0);
  CHECK_THROWS_AS(apply(Pipeline{}, src.data(), 1, 4, 4, out.data(), 2, 8, rng), dmix::Error);
}
