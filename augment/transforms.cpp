// Per-sample transforms: geometry (pad-crop, RandomResizedCrop, resize + centre crop) with
// the horizontal flip folded into the output index, then colour stages in place on [0, 1]
// floats. Every loop is serial over one image: a loader runs many images on many threads,
// and a serial image keeps the result independent of how the threads are scheduled.
//
// Cost per image of C x outH x outW pixels: pad-crop, flip, jitter, lighting and
// normalisation are O(C outH outW) each; a bilinear resize is two separable passes,
// O(C rows outW taps_x + C outH outW taps_y), taps = 2 * max(1, in/out) + 1.
#include "augment/transforms.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

#include "engine/error.h"
#include "kernels/philox.h"

namespace dmix::augment {

namespace pk = kernels;

// ---- SampleRng ----

SampleRng::SampleRng(uint64_t seed, uint64_t epoch, uint64_t sample_index) {
  const uint64_t key = seed ^ kSampleRngDomain;
  key0_ = static_cast<uint32_t>(key);
  key1_ = static_cast<uint32_t>(key >> 32);
  epoch_ = static_cast<uint32_t>(epoch);
  index_lo_ = static_cast<uint32_t>(sample_index);
  index_hi_ = static_cast<uint32_t>(sample_index >> 32);
}

void SampleRng::refill() {
  const pk::PhiloxWords ctr{{block_, epoch_, index_lo_, index_hi_}};
  const pk::PhiloxWords out = pk::philox4x32_10(ctr, key0_, key1_);
  for (int i = 0; i < 4; ++i) words_[i] = out.w[i];
  ++block_;
  used_ = 0;
}

uint32_t SampleRng::next_u32() {
  if (used_ == 4) refill();
  return words_[used_++];
}

double SampleRng::uniform() {
  const uint32_t hi = next_u32();
  const uint32_t lo = next_u32();
  return pk::uniform_co_f64(hi, lo);
}

double SampleRng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

int64_t SampleRng::randint(int64_t lo, int64_t hi) {
  check(lo < hi, "SampleRng::randint", "needs lo < hi, got [", lo, ", ", hi, ")");
  const uint32_t w0 = next_u32();
  const uint32_t w1 = next_u32();
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  return lo + static_cast<int64_t>(pk::bounded_u64(pk::join_words(w0, w1), range));
}

bool SampleRng::bernoulli(double p) { return uniform() < p; }

double SampleRng::normal() {
  const uint32_t a = next_u32(), b = next_u32(), c = next_u32(), d = next_u32();
  return pk::box_muller(pk::uniform_oc_f64(a, b), pk::uniform_co_f64(c, d)).z0;
}

// ---- resampling ----

namespace {

// Python's round(): halves go to the even neighbour (torchvision computes crop sizes
// and offsets with it). nearbyint does the same in the default rounding mode.
int64_t round_half_even(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

// For each of n outputs along one axis: the first source tap and its normalised
// triangle-filter weights (a fixed stride of `taps` per output, zero-padded).
struct AxisWeights {
  std::vector<int64_t> first;
  std::vector<int64_t> count;  // taps actually inside the bounds, <= taps
  std::vector<float> weight;   // n * taps
  int64_t taps = 0;
};

// Outputs out_offset .. out_offset + n - 1 of a virtual output of out_len samples
// spanning source coordinates [box0, box0 + box_len); taps stay inside [lo, hi).
// PIL's ImagingResample, bilinear filter: support 1 widened by the down-scaling factor.
AxisWeights axis_weights(double box0, double box_len, int64_t out_len, int64_t out_offset, int64_t n, int64_t lo,
                         int64_t hi, bool reverse) {
  const double scale = box_len / static_cast<double>(out_len);
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_scale;
  AxisWeights aw;
  aw.taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  aw.first.resize(n);
  aw.count.resize(n);
  aw.weight.assign(static_cast<size_t>(n * aw.taps), 0.0f);
  std::vector<double> w(static_cast<size_t>(aw.taps));
  for (int64_t i = 0; i < n; ++i) {
    const double center = box0 + (static_cast<double>(out_offset + i) + 0.5) * scale;
    int64_t xmin = static_cast<int64_t>(std::floor(center - support + 0.5));
    int64_t xmax = static_cast<int64_t>(std::floor(center + support + 0.5));
    xmin = std::max(xmin, lo);
    xmax = std::min(xmax, hi);
    const int64_t count = std::min(std::max<int64_t>(xmax - xmin, 0), aw.taps);
    double total = 0.0;
    for (int64_t k = 0; k < count; ++k) {
      const double t = std::abs((static_cast<double>(xmin + k) - center + 0.5) / filter_scale);
      w[k] = t < 1.0 ? 1.0 - t : 0.0;
      total += w[k];
    }
    const int64_t slot = reverse ? n - 1 - i : i;
    aw.first[slot] = xmin;
    aw.count[slot] = count;
    float* dst = &aw.weight[static_cast<size_t>(slot * aw.taps)];
    for (int64_t k = 0; k < count; ++k) dst[k] = static_cast<float>(total > 0.0 ? w[k] / total : 0.0);
  }
  return aw;
}

// Separable resample of a u8 image: rows first (only the rows the vertical filter will
// read), then columns; the 1/255 of ToTensor is folded into the column pass.
void resample_u8(const uint8_t* src, int64_t C, int64_t H, int64_t W, const AxisWeights& wy, const AxisWeights& wx,
                 float* dst, int64_t outH, int64_t outW) {
  int64_t row0 = H, row1 = 0;
  for (int64_t oy = 0; oy < outH; ++oy) {
    row0 = std::min(row0, wy.first[oy]);
    row1 = std::max(row1, wy.first[oy] + wy.count[oy]);
  }
  row0 = std::max<int64_t>(row0, 0);
  row1 = std::min(row1, H);
  const int64_t rows = std::max<int64_t>(row1 - row0, 0);
  thread_local std::vector<float> tmp, row;
  tmp.resize(static_cast<size_t>(C * rows * outW));
  row.resize(static_cast<size_t>(W));
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* in = src + (c * H + row0 + r) * W;
      for (int64_t x = 0; x < W; ++x) row[x] = static_cast<float>(in[x]);
      float* out = tmp.data() + (c * rows + r) * outW;
      for (int64_t ox = 0; ox < outW; ++ox) {
        const float* px = row.data() + wx.first[ox];
        const float* w = &wx.weight[static_cast<size_t>(ox * wx.taps)];
        const int64_t count = wx.count[ox];
        float acc = 0.0f;
        for (int64_t k = 0; k < count; ++k) acc += w[k] * px[k];
        out[ox] = acc;
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t oy = 0; oy < outH; ++oy) {
      float* out = dst + (c * outH + oy) * outW;
      for (int64_t ox = 0; ox < outW; ++ox) out[ox] = 0.0f;
      const float* w = &wy.weight[static_cast<size_t>(oy * wy.taps)];
      for (int64_t k = 0; k < wy.count[oy]; ++k) {
        const int64_t r = wy.first[oy] + k - row0;
        const float* in = tmp.data() + (c * rows + r) * outW;
        const float wk = w[k];
        for (int64_t ox = 0; ox < outW; ++ox) out[ox] += wk * in[ox];
      }
      for (int64_t ox = 0; ox < outW; ++ox) out[ox] /= 255.0f;
    }
  }
}

std::string canonical_name(const std::string& name) {
  std::string s;
  for (char ch : name) {
    if (ch == '-' || ch == '_' || ch == ' ') continue;
    s.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  }
  return s;
}

enum class Family { fashion_mnist, cifar, imagenet };

Family family_of(const char* op, const std::string& name) {
  const std::string s = canonical_name(name);
  if (s == "fashionmnist") return Family::fashion_mnist;
  if (s == "cifar10" || s == "cifar100") return Family::cifar;
  if (s.rfind("imagenet", 0) == 0 || s == "folder") return Family::imagenet;
  fail(op, "no transform preset for dataset '", name,
       "' (known: fashion-mnist, cifar10, cifar100, folder, imagenet and imagenet-*)");
}

void set_normalize(Pipeline& p, Family f) {
  switch (f) {
    case Family::fashion_mnist:
      p.mean = {0.2860f};
      p.std = {0.3530f};
      break;
    case Family::cifar:
      p.mean = {125.3f / 255.0f, 123.0f / 255.0f, 113.9f / 255.0f};
      p.std = {63.0f / 255.0f, 62.1f / 255.0f, 66.7f / 255.0f};
      break;
    case Family::imagenet:
      p.mean = {0.485f, 0.456f, 0.406f};
      p.std = {0.229f, 0.224f, 0.225f};
      break;
  }
}

int64_t preset_size(const char* op, Family f, int64_t image_size) {
  if (f != Family::imagenet) {
    check(image_size <= 0, op, "image_size applies to ImageNet-like datasets only, got ", image_size);
    return 0;
  }
  return image_size <= 0 ? 224 : image_size;
}

template <class T>
std::string list_str(const std::vector<T>& v) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

}  // namespace

// ---- pipeline ----

std::pair<int64_t, int64_t> resized_hw(int64_t H, int64_t W, int64_t resize) {
  if (W <= H) return {static_cast<int64_t>(static_cast<double>(resize) * H / W), resize};
  return {resize, static_cast<int64_t>(static_cast<double>(resize) * W / H)};
}

std::pair<int64_t, int64_t> TransformPipeline::output_hw(int64_t H, int64_t W) const {
  if (random_resized_crop.enabled) return {random_resized_crop.size, random_resized_crop.size};
  if (resize_center_crop.enabled) return {resize_center_crop.crop, resize_center_crop.crop};
  return {H, W};
}

void TransformPipeline::validate(int64_t C, int64_t H, int64_t W) const {
  const char* op = "transforms";
  check(C > 0 && H > 0 && W > 0, op, "image of shape (", C, ", ", H, ", ", W, ") is empty");
  check(pad_crop >= 0, op, "pad_crop must be >= 0, got ", pad_crop);
  const int geometry = (pad_crop > 0) + random_resized_crop.enabled + resize_center_crop.enabled;
  check(geometry <= 1, op, "at most one of pad_crop, random_resized_crop and resize_center_crop may be set");
  if (random_resized_crop.enabled) {
    const auto& r = random_resized_crop;
    check(r.size > 0, op, "random_resized_crop size must be > 0, got ", r.size);
    check(r.scale_lo > 0 && r.scale_lo <= r.scale_hi && std::isfinite(r.scale_hi), op,
          "random_resized_crop needs 0 < scale_lo <= scale_hi, got (", r.scale_lo, ", ", r.scale_hi, ")");
    check(r.ratio_lo > 0 && r.ratio_lo <= r.ratio_hi && std::isfinite(r.ratio_hi), op,
          "random_resized_crop needs 0 < ratio_lo <= ratio_hi, got (", r.ratio_lo, ", ", r.ratio_hi, ")");
  }
  if (resize_center_crop.enabled) {
    const auto& r = resize_center_crop;
    check(r.resize > 0 && r.crop > 0, op, "resize_center_crop needs resize > 0 and crop > 0, got ", r.resize, ", ",
          r.crop);
    const auto [rh, rw] = resized_hw(H, W, r.resize);
    check(r.crop <= rh && r.crop <= rw, op, "centre crop ", r.crop, " is larger than the ", rh, "x", rw,
          " image that resize ", r.resize, " makes of ", H, "x", W);
  }
  if (color_jitter.enabled) {
    const auto& j = color_jitter;
    check(C == 1 || C == 3, op, "color_jitter needs 1 or 3 channels, got ", C);
    check(j.brightness >= 0 && j.contrast >= 0 && j.saturation >= 0 && std::isfinite(j.brightness) &&
              std::isfinite(j.contrast) && std::isfinite(j.saturation),
          op, "color_jitter factors must be finite and >= 0, got (", j.brightness, ", ", j.contrast, ", ",
          j.saturation, ")");
  }
  if (lighting.enabled) {
    check(C == 3, op, "lighting needs 3 (RGB) channels, got ", C);
    check(lighting.alphastd >= 0 && std::isfinite(lighting.alphastd), op, "lighting alphastd must be >= 0, got ",
          lighting.alphastd);
  }
  check(mean.size() == std.size(), op, "normalize mean has ", mean.size(), " values but std has ", std.size());
  if (!mean.empty()) {
    check(static_cast<int64_t>(mean.size()) == C, op, "normalize has ", mean.size(), " channel constants for a ", C,
          "-channel image");
    for (float s : std)
      if (!(s > 0 && std::isfinite(s))) fail(op, "normalize std must be finite and > 0, got ", list_str(std));
  }
}

std::string TransformPipeline::str() const {
  std::ostringstream os;
  const char* sep = "";
  auto part = [&]() -> std::ostringstream& {
    os << sep;
    sep = " ";
    return os;
  };
  if (pad_crop > 0) part() << "pad_crop(" << pad_crop << ")";
  if (random_resized_crop.enabled) {
    const auto& r = random_resized_crop;
    part() << "random_resized_crop(" << r.size << ", scale=(" << r.scale_lo << ", " << r.scale_hi << "), ratio=("
           << r.ratio_lo << ", " << r.ratio_hi << "))";
  }
  if (resize_center_crop.enabled)
    part() << "resize(" << resize_center_crop.resize << ") center_crop(" << resize_center_crop.crop << ")";
  if (hflip) part() << "hflip";
  if (color_jitter.enabled)
    part() << "color_jitter(" << color_jitter.brightness << ", " << color_jitter.contrast << ", "
           << color_jitter.saturation << ")";
  if (lighting.enabled) part() << "lighting(" << lighting.alphastd << ")";
  if (!mean.empty()) part() << "normalize(mean=" << list_str(mean) << ", std=" << list_str(std) << ")";
  if (*sep == '\0') os << "identity";
  return os.str();
}

Pipeline train_pipeline(const std::string& dataset_name, int64_t image_size) {
  const char* op = "train_pipeline";
  const Family f = family_of(op, dataset_name);
  const int64_t size = preset_size(op, f, image_size);
  Pipeline p;
  if (f == Family::imagenet) {
    p.random_resized_crop.enabled = true;
    p.random_resized_crop.size = size;
    p.color_jitter.enabled = true;
    p.lighting.enabled = true;
  } else {
    p.pad_crop = 4;
  }
  p.hflip = true;
  set_normalize(p, f);
  return p;
}

Pipeline eval_pipeline(const std::string& dataset_name, int64_t image_size) {
  const char* op = "eval_pipeline";
  const Family f = family_of(op, dataset_name);
  const int64_t size = preset_size(op, f, image_size);
  Pipeline p;
  if (f == Family::imagenet) {
    p.resize_center_crop.enabled = true;
    p.resize_center_crop.crop = size;
    p.resize_center_crop.resize = round_half_even(static_cast<double>(size) * 256.0 / 224.0);
  }
  set_normalize(p, f);
  return p;
}

// ---- stages ----

void pad_crop_u8(const uint8_t* src, int64_t C, int64_t H, int64_t W, int64_t pad, int64_t top, int64_t left,
                 bool flip, float* dst, int64_t outH, int64_t outW) {
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t y = 0; y < outH; ++y) {
      float* out = dst + (c * outH + y) * outW;
      const int64_t sy = top + y - pad;
      if (sy < 0 || sy >= H) {
        for (int64_t x = 0; x < outW; ++x) out[x] = 0.0f;
        continue;
      }
      const uint8_t* in = src + (c * H + sy) * W;
      for (int64_t x = 0; x < outW; ++x) {
        const int64_t sx = left + (flip ? outW - 1 - x : x) - pad;
        out[x] = (sx >= 0 && sx < W) ? static_cast<float>(in[sx]) / 255.0f : 0.0f;
      }
    }
  }
}

void resized_crop_u8(const uint8_t* src, int64_t C, int64_t H, int64_t W, CropBox box, bool flip, float* dst,
                     int64_t outH, int64_t outW) {
  check(box.height > 0 && box.width > 0 && box.top >= 0 && box.left >= 0 && box.top + box.height <= H &&
            box.left + box.width <= W,
        "resized_crop", "box (top ", box.top, ", left ", box.left, ", ", box.height, "x", box.width,
        ") is not inside the ", H, "x", W, " image");
  const AxisWeights wy = axis_weights(static_cast<double>(box.top), static_cast<double>(box.height), outH, 0, outH,
                                      box.top, box.top + box.height, false);
  const AxisWeights wx = axis_weights(static_cast<double>(box.left), static_cast<double>(box.width), outW, 0, outW,
                                      box.left, box.left + box.width, flip);
  resample_u8(src, C, H, W, wy, wx, dst, outH, outW);
}

void resize_center_crop_u8(const uint8_t* src, int64_t C, int64_t H, int64_t W, int64_t resize, int64_t crop,
                           bool flip, float* dst) {
  const auto [rh, rw] = resized_hw(H, W, resize);
  check(crop > 0 && crop <= rh && crop <= rw, "resize_center_crop", "crop ", crop, " does not fit the ", rh, "x",
        rw, " resized image");
  const int64_t top = round_half_even(static_cast<double>(rh - crop) / 2.0);
  const int64_t left = round_half_even(static_cast<double>(rw - crop) / 2.0);
  const AxisWeights wy = axis_weights(0.0, static_cast<double>(H), rh, top, crop, 0, H, false);
  const AxisWeights wx = axis_weights(0.0, static_cast<double>(W), rw, left, crop, 0, W, flip);
  resample_u8(src, C, H, W, wy, wx, dst, crop, crop);
}

CropBox random_resized_crop_box(int64_t H, int64_t W, const RandomResizedCropParams& p, SampleRng& rng) {
  const double area = static_cast<double>(H) * static_cast<double>(W);
  const double log_lo = std::log(p.ratio_lo), log_hi = std::log(p.ratio_hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(p.scale_lo, p.scale_hi);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int64_t w = round_half_even(std::sqrt(target_area * aspect));
    const int64_t h = round_half_even(std::sqrt(target_area / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      const int64_t top = rng.randint(0, H - h + 1);
      const int64_t left = rng.randint(0, W - w + 1);
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(W) / static_cast<double>(H);
  int64_t w = W, h = H;
  if (in_ratio < p.ratio_lo) {
    h = round_half_even(static_cast<double>(w) / p.ratio_lo);
  } else if (in_ratio > p.ratio_hi) {
    w = round_half_even(static_cast<double>(h) * p.ratio_hi);
  }
  h = std::clamp<int64_t>(h, 1, H);
  w = std::clamp<int64_t>(w, 1, W);
  return {(H - h) / 2, (W - w) / 2, h, w};
}

namespace {

void lerp_to_constant(float* img, int64_t n, float target, float a) {
  for (int64_t i = 0; i < n; ++i) img[i] += a * (target - img[i]);
}

// Grey level of pixel i of an RGB image (ITU-R 601 luma, as PIL's convert("L")).
inline float grey(const float* img, int64_t HW, int64_t i) {
  return 0.299f * img[i] + 0.587f * img[HW + i] + 0.114f * img[2 * HW + i];
}

}  // namespace

void adjust_brightness(float* img, int64_t C, int64_t HW, float a) { lerp_to_constant(img, C * HW, 0.0f, a); }

void adjust_contrast(float* img, int64_t C, int64_t HW, float a) {
  double total = 0.0;
  if (C == 3) {
    for (int64_t i = 0; i < HW; ++i) total += grey(img, HW, i);
  } else {
    for (int64_t i = 0; i < C * HW; ++i) total += img[i];
  }
  const float mean = static_cast<float>(total / static_cast<double>(C == 3 ? HW : C * HW));
  lerp_to_constant(img, C * HW, mean, a);
}

void adjust_saturation(float* img, int64_t C, int64_t HW, float a) {
  if (C != 3) return;  // a grey image is already its own grey version
  for (int64_t i = 0; i < HW; ++i) {
    const float g = grey(img, HW, i);
    for (int64_t c = 0; c < 3; ++c) img[c * HW + i] += a * (g - img[c * HW + i]);
  }
}

void add_lighting(float* img, int64_t C, int64_t HW, const LightingParams& p, const double alpha[3]) {
  check(C == 3, "add_lighting", "needs 3 (RGB) channels, got ", C);
  for (int64_t c = 0; c < 3; ++c) {
    double offset = 0.0;
    for (int j = 0; j < 3; ++j) offset += p.eigvec[c][j] * alpha[j] * p.eigval[j];
    const float o = static_cast<float>(offset);
    float* ch = img + c * HW;
    for (int64_t i = 0; i < HW; ++i) ch[i] += o;
  }
}

void normalize(float* img, int64_t C, int64_t HW, const float* mean, const float* std) {
  for (int64_t c = 0; c < C; ++c) {
    float* ch = img + c * HW;
    const float m = mean[c], s = std[c];
    for (int64_t i = 0; i < HW; ++i) ch[i] = (ch[i] - m) / s;
  }
}

// ---- apply ----

void apply(const Pipeline& p, const uint8_t* src, int64_t C, int64_t H, int64_t W, float* dst, int64_t outH,
           int64_t outW, SampleRng& rng) {
  p.validate(C, H, W);
  const auto [expect_h, expect_w] = p.output_hw(H, W);
  check(outH == expect_h && outW == expect_w, "transforms", "output is ", outH, "x", outW, " but the pipeline makes ",
        expect_h, "x", expect_w, " from a ", H, "x", W, " image");

  // Draw order (fixed, so a sample's augmentation is a pure function of its rng):
  // geometry parameters, flip, jitter order and factors, lighting alphas.
  if (p.random_resized_crop.enabled) {
    const CropBox box = random_resized_crop_box(H, W, p.random_resized_crop, rng);
    const bool flip = p.hflip && rng.bernoulli(0.5);
    resized_crop_u8(src, C, H, W, box, flip, dst, outH, outW);
  } else if (p.resize_center_crop.enabled) {
    const bool flip = p.hflip && rng.bernoulli(0.5);
    resize_center_crop_u8(src, C, H, W, p.resize_center_crop.resize, p.resize_center_crop.crop, flip, dst);
  } else {
    const int64_t pad = p.pad_crop;
    const int64_t top = pad > 0 ? rng.randint(0, 2 * pad + 1) : 0;
    const int64_t left = pad > 0 ? rng.randint(0, 2 * pad + 1) : 0;
    const bool flip = p.hflip && rng.bernoulli(0.5);
    pad_crop_u8(src, C, H, W, pad, top, left, flip, dst, outH, outW);
  }

  const int64_t HW = outH * outW;
  if (p.color_jitter.enabled) {
    int order[3] = {0, 1, 2};
    for (int i = 2; i > 0; --i) std::swap(order[i], order[rng.randint(0, i + 1)]);
    for (int stage : order) {
      switch (stage) {
        case 0: {
          const double f = p.color_jitter.brightness;
          adjust_brightness(dst, C, HW, static_cast<float>(rng.uniform(-f, f)));
          break;
        }
        case 1: {
          const double f = p.color_jitter.contrast;
          adjust_contrast(dst, C, HW, static_cast<float>(rng.uniform(-f, f)));
          break;
        }
        default: {
          const double f = p.color_jitter.saturation;
          adjust_saturation(dst, C, HW, static_cast<float>(rng.uniform(-f, f)));
          break;
        }
      }
    }
  }
  if (p.lighting.enabled && p.lighting.alphastd > 0) {
    double alpha[3];
    for (double& a : alpha) a = rng.normal() * p.lighting.alphastd;
    add_lighting(dst, C, HW, p.lighting, alpha);
  }
  if (!p.mean.empty()) normalize(dst, C, HW, p.mean.data(), p.std.data());
}

}  // namespace dmix::augment
