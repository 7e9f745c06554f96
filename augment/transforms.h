// Per-sample image transforms for training and evaluation: plain functions on one image
// at a time (u8 CHW in, f32 CHW out), no Tensor, no autograd, so a loader worker can run
// them on its own thread.
//
// A TransformPipeline describes what to do; apply() runs it on one sample. Its stages
// always run in this order, each one optional:
//   1. geometry, at most one of
//        pad_crop             zero-pad `pad_crop` pixels on every side, random crop back to H x W
//        random_resized_crop  torchvision's RandomResizedCrop (random box, bilinear resize to size x size)
//        resize_center_crop   shorter side to `resize` (bilinear), centre crop `crop` x `crop`
//   2. hflip                  mirror left-right with probability 1/2
//   3. u8 -> [0, 1] floats    (value / 255, as ToTensor)
//   4. color_jitter           brightness, contrast, saturation in a random order each call
//   5. lighting               AlexNet-style PCA lighting noise
//   6. normalize              (x - mean[c]) / std[c]
//
// Randomness comes from a SampleRng keyed by (seed, epoch, sample index): a Philox stream
// of its own per sample, so an augmented sample never depends on which thread made it or
// on what other samples were drawn before it.
//
// Bilinear resizing follows PIL (which torchvision uses for these transforms): a triangle
// filter whose support widens with the down-scaling factor, so shrinking an image
// averages all the pixels it covers instead of aliasing.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dmix::augment {

// ---- randomness ----

// A small counter-based generator for one sample's augmentation draws: Philox 4x32-10 with
// key (seed ^ kSampleRngDomain) and counter (block, epoch, index lo, index hi). The key
// is set apart from the loader's shuffle key and from the engine's Generator streams, so a
// run that uses one seed for everything never reuses a random word for two purposes.
class SampleRng {
 public:
  static constexpr uint64_t kSampleRngDomain = 0x6A09E667F3BCC908ull;  // frac(sqrt(2)) bits

  SampleRng(uint64_t seed, uint64_t epoch, uint64_t sample_index);

  uint32_t next_u32();
  double uniform();                           // [0, 1), 53 bits
  double uniform(double lo, double hi);       // lo + (hi - lo) * uniform()
  int64_t randint(int64_t lo, int64_t hi);    // [lo, hi); requires lo < hi
  bool bernoulli(double p);                   // true with probability p
  double normal();                            // standard normal (Box-Muller, one of the pair)

 private:
  void refill();
  uint32_t key0_, key1_;
  uint32_t epoch_, index_lo_, index_hi_;
  uint32_t block_ = 0;
  uint32_t words_[4] = {0, 0, 0, 0};
  int used_ = 4;  // words of words_ already handed out
};

// ---- pipeline description ----

struct RandomResizedCropParams {
  bool enabled = false;
  int64_t size = 224;                     // output is size x size
  double scale_lo = 0.08, scale_hi = 1.0; // fraction of the image area the box covers
  double ratio_lo = 3.0 / 4.0, ratio_hi = 4.0 / 3.0;  // box width / height (log-uniform)
};

struct ResizeCenterCropParams {
  bool enabled = false;
  int64_t resize = 256;  // shorter side after resizing; the longer keeps the aspect ratio
  int64_t crop = 224;    // centre crop, crop x crop
};

// Each factor f draws a ~ U(-f, f) and sets img = img + a * (target - img):
// brightness target 0, contrast target the mean grey level, saturation target the grey
// image (0.299 R + 0.587 G + 0.114 B; a 1-channel image is its own grey image).
struct ColorJitterParams {
  bool enabled = false;
  double brightness = 0.4, contrast = 0.4, saturation = 0.4;
};

// Adds sum_j eigvec[c][j] * a_j * eigval[j] to channel c, a_j ~ N(0, alphastd^2).
// The defaults are the ImageNet RGB principal components (AlexNet, fb.resnet.torch).
struct LightingParams {
  bool enabled = false;
  double alphastd = 0.1;
  std::array<double, 3> eigval{0.2175, 0.0188, 0.0045};
  std::array<std::array<double, 3>, 3> eigvec{{{-0.5675, 0.7192, 0.4009},
                                               {-0.5808, -0.0045, -0.8140},
                                               {-0.5836, -0.6948, 0.4203}}};
};

struct TransformPipeline {
  int64_t pad_crop = 0;  // > 0: zero padding before a random crop to the input size
  bool hflip = false;
  RandomResizedCropParams random_resized_crop;
  ResizeCenterCropParams resize_center_crop;
  ColorJitterParams color_jitter;
  LightingParams lighting;
  std::vector<float> mean, std;  // per channel, on [0, 1] values; both empty: no normalisation

  // Output height and width for an H x W input.
  std::pair<int64_t, int64_t> output_hw(int64_t H, int64_t W) const;
  // Throws dmix::Error when this pipeline cannot run on C x H x W images (two geometry
  // stages, lighting on a non-RGB image, mean/std of the wrong length, a crop larger
  // than the image, ...).
  void validate(int64_t C, int64_t H, int64_t W) const;
  // One line for logs, e.g. "pad_crop(4) hflip normalize(mean=[0.286], std=[0.353])".
  std::string str() const;
};
using Pipeline = TransformPipeline;

// Presets by dataset name ("fashion-mnist", "cifar10", "cifar100", "imagenet", "folder";
// case, '-' and '_' are ignored; any name starting with "imagenet" is ImageNet-like, and
// so is "folder", an image folder of photographs of any size).
//   fashion-mnist, cifar*: train = pad-4 random crop + flip + normalize; eval = normalize
//   imagenet: train = RandomResizedCrop(image_size) + flip + ColorJitter(0.4, 0.4, 0.4)
//             + Lighting(0.1) + normalize; eval = resize(image_size * 256 / 224) +
//             centre crop(image_size) + normalize
// image_size <= 0 means the dataset's usual size (224 for ImageNet); it only applies to
// ImageNet-like datasets, whose images have no fixed size.
Pipeline train_pipeline(const std::string& dataset_name, int64_t image_size = 0);
Pipeline eval_pipeline(const std::string& dataset_name, int64_t image_size = 0);

// Runs the pipeline on one u8 image src (C, H, W) into dst (C, outH, outW), where
// (outH, outW) must equal p.output_hw(H, W). Draws only from rng, always in the same
// order for the same pipeline. Throws dmix::Error when p.validate(C, H, W) would.
void apply(const Pipeline& p, const uint8_t* src, int64_t C, int64_t H, int64_t W, float* dst,
           int64_t outH, int64_t outW, SampleRng& rng);

// ---- the stages on their own (apply() is built from these; tests and mixing use them) ----

struct CropBox {
  int64_t top, left, height, width;
};

// Pixels (y, x) of the (H + 2 pad) x (W + 2 pad) zero-padded image starting at (top, left),
// outH x outW of them, as [0, 1] floats; mirrored left-right when flip.
void pad_crop_u8(const uint8_t* src, int64_t C, int64_t H, int64_t W, int64_t pad, int64_t top, int64_t left,
                 bool flip, float* dst, int64_t outH, int64_t outW);
// The box of src resized to outH x outW (bilinear, PIL-style), as [0, 1] floats (the
// filter reads only pixels inside the box, as cropping first and then resizing would).
void resized_crop_u8(const uint8_t* src, int64_t C, int64_t H, int64_t W, CropBox box, bool flip, float* dst,
                     int64_t outH, int64_t outW);
// src resized so its shorter side is `resize`, then the centred crop x crop window, as
// [0, 1] floats (the filter reads across the window's edges, as resizing first would).
void resize_center_crop_u8(const uint8_t* src, int64_t C, int64_t H, int64_t W, int64_t resize, int64_t crop,
                           bool flip, float* dst);
// The size torchvision's Resize(resize) gives an H x W image: shorter side = resize.
std::pair<int64_t, int64_t> resized_hw(int64_t H, int64_t W, int64_t resize);
// The box RandomResizedCrop picks (10 tries, then a centred fallback), drawing from rng.
CropBox random_resized_crop_box(int64_t H, int64_t W, const RandomResizedCropParams& p, SampleRng& rng);

// img (C, HW) floats in place: img + a * (target - img).
void adjust_brightness(float* img, int64_t C, int64_t HW, float a);
void adjust_contrast(float* img, int64_t C, int64_t HW, float a);
void adjust_saturation(float* img, int64_t C, int64_t HW, float a);
// Adds the lighting offset for the given alphas (a_0, a_1, a_2); C must be 3.
void add_lighting(float* img, int64_t C, int64_t HW, const LightingParams& p, const double alpha[3]);
// (x - mean[c]) / std[c], in place.
void normalize(float* img, int64_t C, int64_t HW, const float* mean, const float* std);

}  // namespace dmix::augment
