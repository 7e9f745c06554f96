// Static saliency maps for one image, the two detectors Saliency-DCutMix can place its
// patches with (reference-setups.md §6.2). Plain functions on one image at a time, no
// Tensor, so a loader worker or the mixer can call them per sample.
//
// Input: an image of C = 1 or 3 channels (RGB), H x W, float values on the [0, 1] scale
// (the *unnormalised* image; values outside are clamped). Output: an H x W map, row-major,
// values in [0, 1], larger = more salient.
//
//   spectral residual (Hou & Zhang 2007, as OpenCV's StaticSaliencySpectralResidual):
//     grey = 0.299 R + 0.587 G + 0.114 B on the 0-255 scale; bilinear resize to 64 x 64;
//     F = FFT2(grey) (handwritten radix-2); L = log(|F| + 1); R = L - box3x3(L);
//     s = |IFFT2(exp(R) e^{i arg F})|; s = gauss5x5(s, sigma 8); s = s^2; s /= max(s);
//     bilinear resize back to H x W. Cost: two 64 x 64 FFTs, O(64^2 log 64), plus O(HW).
//   fine grained (Montabone & Soto 2010, as OpenCV's StaticSaliencyFineGrained):
//     grey as u8, two 3x3 Gaussian blurs ([1 2 1]/4, rounded to u8), an integral image,
//     then for each neighbourhood n in {12, 24, 48, 28, 56, 112} the centre-surround
//     differences on = max(centre - surround mean, 0), off = max(surround mean - centre, 0)
//     (surround = the 2n x 2n box around the pixel, clamped to the image, minus the
//     centre), each truncated to an integer as the reference stores u8; the map is
//     sum over scales of (on + off), divided by its maximum. Cost: O(6 HW) with the
//     integral image.
//     One deliberate difference from OpenCV: it normalises the on sum and the off sum
//     each by its own maximum before adding them. For a single bright object on a flat
//     background the off map then peaks where the clamped border boxes see the object
//     most (an image corner) at the same height as the object's on peak, and argmax lands
//     in the corner. Normalising the sum jointly keeps the stronger response on top.
//     The map is also left in float instead of being quantised to 0-255, so a plateau of
//     equal u8 values does not move the argmax to its top-left corner.
//
// Borders of the small filters reflect without repeating the edge pixel (OpenCV's
// BORDER_REFLECT_101). Bilinear resizing maps pixel centres ((x + 0.5) * in / out - 0.5)
// and clamps at the borders, without an antialiasing filter (OpenCV's INTER_LINEAR).
// A flat image has no salient pixel: both detectors return an all-zero map.
#pragma once
#include <complex>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dmix::augment {

enum class SaliencyDetector { SpectralResidual, FineGrained };

// "spectral-residual" (or "spectral_residual", "sr") and "fine-grained" (or
// "fine_grained", "fg"); anything else is a dmix::Error listing the choices.
SaliencyDetector parse_saliency_detector(const std::string& name);
const char* saliency_detector_name(SaliencyDetector detector);

std::vector<float> spectral_residual_saliency(const float* image, int64_t C, int64_t H, int64_t W);
std::vector<float> fine_grained_saliency(const float* image, int64_t C, int64_t H, int64_t W);
std::vector<float> saliency_map(SaliencyDetector detector, const float* image, int64_t C, int64_t H, int64_t W);

// (row, col) of the largest value of an H x W map; the first one in row-major order on
// ties (numpy's argmax + unravel_index, as SaliencyMix uses).
std::pair<int64_t, int64_t> argmax_pixel(const std::vector<float>& map, int64_t H, int64_t W);

// ---- building blocks (public for tests) ----

// In-place radix-2 FFT of n = 2^m complex values: X_k = sum_j x_j e^{-+2 pi i jk / n}
// (minus sign forward, plus inverse). The inverse is not scaled by 1/n.
void fft(std::complex<double>* data, int64_t n, bool inverse);
// 2-D FFT of a rows x cols row-major array (both powers of two): rows, then columns.
void fft2d(std::complex<double>* data, int64_t rows, int64_t cols, bool inverse);
// Bilinear resize of one H x W plane to outH x outW (the convention above).
void resize_bilinear(const float* src, int64_t H, int64_t W, float* dst, int64_t outH, int64_t outW);

}  // namespace dmix::augment
