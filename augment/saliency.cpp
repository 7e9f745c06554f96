// Spectral-residual and fine-grained static saliency (see saliency.h for the algorithms).
#include "augment/saliency.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace dmix::augment {
namespace {

constexpr int64_t kSpectralSize = 64;  // the working resolution of the spectral residual

// Index into [0, n) mirrored at the borders without repeating the edge (BORDER_REFLECT_101).
int64_t reflect101(int64_t i, int64_t n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

void check_image(const char* op, const float* image, int64_t C, int64_t H, int64_t W) {
  check(image != nullptr, op, "image is null");
  check(C == 1 || C == 3, op, "expects 1 or 3 channels, got ", C);
  check(H > 0 && W > 0, op, "expects a non-empty image, got ", H, " x ", W);
}

// Grey level in [0, 1] of each pixel: the single channel, or 0.299 R + 0.587 G + 0.114 B.
std::vector<float> grey_plane(const float* image, int64_t C, int64_t H, int64_t W) {
  const int64_t HW = H * W;
  std::vector<float> grey(static_cast<size_t>(HW));
  for (int64_t i = 0; i < HW; ++i) {
    float g = C == 1 ? image[i] : 0.299f * image[i] + 0.587f * image[HW + i] + 0.114f * image[2 * HW + i];
    grey[static_cast<size_t>(i)] = std::clamp(g, 0.0f, 1.0f);
  }
  return grey;
}

// Separable correlation of a rows x cols plane with an odd 1-D kernel along both axes.
void separable_filter(std::vector<double>& plane, int64_t rows, int64_t cols, const std::vector<double>& kernel) {
  const int64_t r = static_cast<int64_t>(kernel.size()) / 2;
  std::vector<double> tmp(plane.size());
  for (int64_t y = 0; y < rows; ++y)
    for (int64_t x = 0; x < cols; ++x) {
      double s = 0.0;
      for (int64_t t = -r; t <= r; ++t) s += kernel[static_cast<size_t>(t + r)] * plane[y * cols + reflect101(x + t, cols)];
      tmp[static_cast<size_t>(y * cols + x)] = s;
    }
  for (int64_t y = 0; y < rows; ++y)
    for (int64_t x = 0; x < cols; ++x) {
      double s = 0.0;
      for (int64_t t = -r; t <= r; ++t) s += kernel[static_cast<size_t>(t + r)] * tmp[reflect101(y + t, rows) * cols + x];
      plane[static_cast<size_t>(y * cols + x)] = s;
    }
}

std::vector<double> gaussian_kernel(int64_t size, double sigma) {
  std::vector<double> k(static_cast<size_t>(size));
  const int64_t r = size / 2;
  double total = 0.0;
  for (int64_t t = -r; t <= r; ++t) total += k[static_cast<size_t>(t + r)] = std::exp(-0.5 * t * t / (sigma * sigma));
  for (double& v : k) v /= total;
  return k;
}

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// One 3x3 [1 2 1]/4 Gaussian blur of a u8 plane, rounded back to u8.
std::vector<uint8_t> blur3x3_u8(const std::vector<uint8_t>& src, int64_t H, int64_t W) {
  static const int w[3] = {1, 2, 1};
  std::vector<int> rows(src.size());
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      int s = 0;
      for (int t = -1; t <= 1; ++t) s += w[t + 1] * src[static_cast<size_t>(y * W + reflect101(x + t, W))];
      rows[static_cast<size_t>(y * W + x)] = s;
    }
  std::vector<uint8_t> out(src.size());
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      int s = 0;
      for (int t = -1; t <= 1; ++t) s += w[t + 1] * rows[static_cast<size_t>(reflect101(y + t, H) * W + x)];
      out[static_cast<size_t>(y * W + x)] = static_cast<uint8_t>((s + 8) / 16);
    }
  return out;
}

}  // namespace

SaliencyDetector parse_saliency_detector(const std::string& name) {
  if (name == "spectral-residual" || name == "spectral_residual" || name == "sr")
    return SaliencyDetector::SpectralResidual;
  if (name == "fine-grained" || name == "fine_grained" || name == "fg") return SaliencyDetector::FineGrained;
  fail("saliency", "unknown detector '", name, "' (expected spectral-residual or fine-grained)");
}

const char* saliency_detector_name(SaliencyDetector detector) {
  return detector == SaliencyDetector::SpectralResidual ? "spectral-residual" : "fine-grained";
}

namespace {

// e^{-2 pi i j / n} for j < n / 2, each straight from polar form (no error builds up).
std::vector<std::complex<double>> twiddles(int64_t n) {
  std::vector<std::complex<double>> w(static_cast<size_t>(std::max<int64_t>(n / 2, 1)));
  for (int64_t j = 0; j < n / 2; ++j) w[static_cast<size_t>(j)] = std::polar(1.0, -2.0 * M_PI * static_cast<double>(j) / static_cast<double>(n));
  return w;
}

// Radix-2 FFT of length n with the twiddles of length table_n (n divides table_n).
void fft_with(std::complex<double>* data, int64_t n, const std::vector<std::complex<double>>& table, int64_t table_n,
              bool inverse) {
  // Bit-reversal permutation, then log2(n) butterfly stages of doubling length.
  for (int64_t i = 1, j = 0; i < n; ++i) {
    int64_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(data[i], data[j]);
  }
  for (int64_t len = 2; len <= n; len <<= 1) {
    const int64_t half = len / 2, stride = table_n / len;
    for (int64_t k = 0; k < half; ++k) {
      const std::complex<double> w = inverse ? std::conj(table[static_cast<size_t>(k * stride)]) : table[static_cast<size_t>(k * stride)];
      for (int64_t start = 0; start < n; start += len) {
        // The complex product written out: std::complex's operator* checks for
        // infinities and NaNs (C99 Annex G) and costs several times more.
        const std::complex<double> a = data[start + k], x = data[start + k + half];
        const std::complex<double> b(x.real() * w.real() - x.imag() * w.imag(), x.real() * w.imag() + x.imag() * w.real());
        data[start + k] = a + b;
        data[start + k + half] = a - b;
      }
    }
  }
}

}  // namespace

void fft(std::complex<double>* data, int64_t n, bool inverse) {
  check(is_power_of_two(n), "fft", "length must be a power of two, got ", n);
  fft_with(data, n, twiddles(n), n, inverse);
}

void fft2d(std::complex<double>* data, int64_t rows, int64_t cols, bool inverse) {
  check(is_power_of_two(rows) && is_power_of_two(cols), "fft2d", "sizes must be powers of two, got ", rows, " x ",
        cols);
  const int64_t table_n = std::max(rows, cols);
  const std::vector<std::complex<double>> table = twiddles(table_n);
  for (int64_t y = 0; y < rows; ++y) fft_with(data + y * cols, cols, table, table_n, inverse);
  std::vector<std::complex<double>> column(static_cast<size_t>(rows));
  for (int64_t x = 0; x < cols; ++x) {
    for (int64_t y = 0; y < rows; ++y) column[static_cast<size_t>(y)] = data[y * cols + x];
    fft_with(column.data(), rows, table, table_n, inverse);
    for (int64_t y = 0; y < rows; ++y) data[y * cols + x] = column[static_cast<size_t>(y)];
  }
}

void resize_bilinear(const float* src, int64_t H, int64_t W, float* dst, int64_t outH, int64_t outW) {
  check(H > 0 && W > 0 && outH > 0 && outW > 0, "resize_bilinear", "sizes must be positive, got ", H, " x ", W,
        " -> ", outH, " x ", outW);
  // Source position of each output row/column: left index and weight of the right neighbour.
  auto taps = [](int64_t in, int64_t out) {
    std::vector<std::pair<int64_t, float>> t(static_cast<size_t>(out));
    const double scale = static_cast<double>(in) / static_cast<double>(out);
    for (int64_t i = 0; i < out; ++i) {
      const double f = (static_cast<double>(i) + 0.5) * scale - 0.5;
      int64_t i0 = static_cast<int64_t>(std::floor(f));
      double frac = f - static_cast<double>(i0);
      if (i0 < 0) {
        i0 = 0;
        frac = 0.0;
      }
      if (i0 >= in - 1) {
        i0 = in - 1;
        frac = 0.0;
      }
      t[static_cast<size_t>(i)] = {i0, static_cast<float>(frac)};
    }
    return t;
  };
  const auto ty = taps(H, outH), tx = taps(W, outW);
  for (int64_t y = 0; y < outH; ++y) {
    const auto [y0, fy] = ty[static_cast<size_t>(y)];
    const int64_t y1 = std::min(y0 + 1, H - 1);
    for (int64_t x = 0; x < outW; ++x) {
      const auto [x0, fx] = tx[static_cast<size_t>(x)];
      const int64_t x1 = std::min(x0 + 1, W - 1);
      const float top = src[y0 * W + x0] + fx * (src[y0 * W + x1] - src[y0 * W + x0]);
      const float bottom = src[y1 * W + x0] + fx * (src[y1 * W + x1] - src[y1 * W + x0]);
      dst[y * outW + x] = top + fy * (bottom - top);
    }
  }
}

std::vector<float> spectral_residual_saliency(const float* image, int64_t C, int64_t H, int64_t W) {
  check_image("spectral_residual_saliency", image, C, H, W);
  const int64_t S = kSpectralSize, SS = S * S;
  std::vector<float> grey = grey_plane(image, C, H, W);
  for (float& g : grey) g *= 255.0f;  // the scale OpenCV sees (u8 grey), which log(|F| + 1) depends on
  std::vector<float> small(static_cast<size_t>(SS));
  resize_bilinear(grey.data(), H, W, small.data(), S, S);

  std::vector<std::complex<double>> spectrum(static_cast<size_t>(SS));
  for (int64_t i = 0; i < SS; ++i) spectrum[static_cast<size_t>(i)] = small[static_cast<size_t>(i)];
  fft2d(spectrum.data(), S, S, false);

  std::vector<double> amplitude(static_cast<size_t>(SS)), log_amplitude(static_cast<size_t>(SS));
  for (int64_t i = 0; i < SS; ++i) {
    const std::complex<double> f = spectrum[static_cast<size_t>(i)];
    amplitude[static_cast<size_t>(i)] = std::sqrt(f.real() * f.real() + f.imag() * f.imag());
    log_amplitude[static_cast<size_t>(i)] = std::log(amplitude[static_cast<size_t>(i)] + 1.0);
  }
  std::vector<double> smoothed = log_amplitude;
  separable_filter(smoothed, S, S, {1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0});
  for (int64_t i = 0; i < SS; ++i) {
    // exp(residual) e^{i arg F} = F exp(residual) / |F|, without the trigonometry.
    const size_t j = static_cast<size_t>(i);
    const double residual = std::exp(log_amplitude[j] - smoothed[j]);
    spectrum[j] = amplitude[j] > 0.0 ? spectrum[j] * (residual / amplitude[j]) : std::complex<double>(residual, 0.0);
  }
  fft2d(spectrum.data(), S, S, true);

  std::vector<double> magnitude(static_cast<size_t>(SS));
  for (int64_t i = 0; i < SS; ++i) {
    const std::complex<double> z = spectrum[static_cast<size_t>(i)];
    magnitude[static_cast<size_t>(i)] = std::sqrt(z.real() * z.real() + z.imag() * z.imag());
  }
  separable_filter(magnitude, S, S, gaussian_kernel(5, 8.0));
  double max_value = 0.0;
  for (double& m : magnitude) {
    m *= m;
    max_value = std::max(max_value, m);
  }
  // A flat image leaves only round-off after the DC term is removed by the residual:
  // nothing is salient there, so the map is zero rather than amplified noise.
  const bool flat = *std::max_element(grey.begin(), grey.end()) - *std::min_element(grey.begin(), grey.end()) < 1e-3f;
  for (int64_t i = 0; i < SS; ++i)
    small[static_cast<size_t>(i)] =
        flat || max_value <= 0.0 ? 0.0f : static_cast<float>(magnitude[static_cast<size_t>(i)] / max_value);

  std::vector<float> map(static_cast<size_t>(H * W));
  resize_bilinear(small.data(), S, S, map.data(), H, W);
  return map;
}

std::vector<float> fine_grained_saliency(const float* image, int64_t C, int64_t H, int64_t W) {
  check_image("fine_grained_saliency", image, C, H, W);
  const int64_t HW = H * W;
  const std::vector<float> grey_f = grey_plane(image, C, H, W);
  std::vector<uint8_t> grey(static_cast<size_t>(HW));
  for (int64_t i = 0; i < HW; ++i) grey[static_cast<size_t>(i)] = static_cast<uint8_t>(std::lround(grey_f[static_cast<size_t>(i)] * 255.0f));
  // Smoothed twice, as Frintrop and Itti do before the centre-surround differences.
  grey = blur3x3_u8(blur3x3_u8(grey, H, W), H, W);

  // integral[(y) * (W + 1) + x] = sum of grey over rows < y, columns < x (exact in double).
  const int64_t IW = W + 1;
  std::vector<double> integral(static_cast<size_t>((H + 1) * IW), 0.0);
  for (int64_t y = 0; y < H; ++y) {
    double row = 0.0;
    for (int64_t x = 0; x < W; ++x) {
      row += grey[static_cast<size_t>(y * W + x)];
      integral[static_cast<size_t>((y + 1) * IW + x + 1)] = integral[static_cast<size_t>(y * IW + x + 1)] + row;
    }
  }

  static const int64_t kNeighbourhoods[] = {12, 24, 48, 28, 56, 112};
  std::vector<int> on_sum(static_cast<size_t>(HW), 0), off_sum(static_cast<size_t>(HW), 0);
  for (int64_t n : kNeighbourhoods) {
    for (int64_t y = 0; y < H; ++y) {
      const int64_t y1 = std::clamp<int64_t>(y - n + 1, 0, H), y2 = std::clamp<int64_t>(y + n + 1, 0, H);
      for (int64_t x = 0; x < W; ++x) {
        const int64_t x1 = std::clamp<int64_t>(x - n + 1, 0, W), x2 = std::clamp<int64_t>(x + n + 1, 0, W);
        const double centre = grey[static_cast<size_t>(y * W + x)];
        const double box = integral[static_cast<size_t>(y2 * IW + x2)] + integral[static_cast<size_t>(y1 * IW + x1)] -
                           integral[static_cast<size_t>(y2 * IW + x1)] - integral[static_cast<size_t>(y1 * IW + x2)];
        const int64_t count = (x2 - x1) * (y2 - y1) - 1;
        const float surround = count > 0 ? static_cast<float>((box - centre) / static_cast<double>(count))
                                         : static_cast<float>(centre);
        const float on = static_cast<float>(centre) - surround, off = surround - static_cast<float>(centre);
        // Each scale's response is stored as u8 (truncated), as the reference does.
        on_sum[static_cast<size_t>(y * W + x)] += on > 0.0f ? static_cast<int>(std::min(on, 255.0f)) : 0;
        off_sum[static_cast<size_t>(y * W + x)] += off > 0.0f ? static_cast<int>(std::min(off, 255.0f)) : 0;
      }
    }
  }
  // On and off are normalised together (see saliency.h for why not each by its own maximum).
  int max_value = 0;
  for (int64_t i = 0; i < HW; ++i) max_value = std::max(max_value, on_sum[static_cast<size_t>(i)] + off_sum[static_cast<size_t>(i)]);
  std::vector<float> map(static_cast<size_t>(HW), 0.0f);
  if (max_value == 0) return map;
  for (int64_t i = 0; i < HW; ++i)
    map[static_cast<size_t>(i)] = static_cast<float>(on_sum[static_cast<size_t>(i)] + off_sum[static_cast<size_t>(i)]) /
                                  static_cast<float>(max_value);
  return map;
}

std::vector<float> saliency_map(SaliencyDetector detector, const float* image, int64_t C, int64_t H, int64_t W) {
  return detector == SaliencyDetector::SpectralResidual ? spectral_residual_saliency(image, C, H, W)
                                                        : fine_grained_saliency(image, C, H, W);
}

std::pair<int64_t, int64_t> argmax_pixel(const std::vector<float>& map, int64_t H, int64_t W) {
  check(H > 0 && W > 0 && static_cast<int64_t>(map.size()) == H * W, "argmax_pixel", "map of ", map.size(),
        " values does not match ", H, " x ", W);
  const int64_t i = std::max_element(map.begin(), map.end()) - map.begin();
  return {i / W, i % W};
}

}  // namespace dmix::augment
