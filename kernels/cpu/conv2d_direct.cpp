// 2-D convolution by direct loops, for convolutions with one input channel per group
// (depthwise, or a single-channel input), and its two adjoints.
//
// Such convolutions would give im2col GEMMs with an inner size of only R*S, so they run
// as loops over the taps instead. Input planes are first copied into a zero border, so
// that every tap reads inside the copy and the loops need no bounds checks; output rows
// are computed in blocks of kBlock columns held in registers across all R*S taps.
//   forward          each framed input plane correlated with its K/groups kernels
//   backward_input   stride 1: the full correlation of gy with the flipped kernel;
//                    otherwise each output's taps scattered into a framed gx
//   backward_weight  per output channel, the sum over images and positions of gy times
//                    the input under each tap
// Threads split (image, channel) pairs, or output channels for the weight gradient, so
// every output element is written by one thread in a fixed order.
//
// Cost: 2*N*K*R*S*P*Q flops per pass, one read of each input plane per output channel.
#include <algorithm>
#include <vector>

#include "kernels/cpu/conv2d_algorithms.h"

namespace dmix::kernels::cpu {
namespace {

constexpr int64_t kBlock = 16;

// A plane of rows x cols placed at (top, left) inside a zero frame of padded_rows x padded_cols.
template <class T>
void frame_plane(const T* plane, int64_t rows, int64_t cols, int64_t top, int64_t left, int64_t padded_rows,
                 int64_t padded_cols, T* framed) {
  std::fill(framed, framed + padded_rows * padded_cols, T(0));
  for (int64_t i = 0; i < rows; ++i)
    std::copy(plane + i * cols, plane + (i + 1) * cols, framed + (i + top) * padded_cols + left);
}

struct Taps {
  int64_t R, S, stride_h, stride_w, dilation_h, dilation_w;
};

// out[i][j] += sum_{r,s} w[r*S+s] * in[(i*stride_h + r*dilation_h)*ld + j*stride_w + s*dilation_w]
// for i < rows, j < cols (out is rows x cols, contiguous). KR, KS > 0 fix R and S at
// compile time, so the tap loops unroll (the common 3x3 and 5x5 kernels).
template <int KR, int KS, class T>
void correlate_add(const T* in, int64_t ld, const T* w, const Taps& t, int64_t rows, int64_t cols, T* out) {
  const int64_t R = KR > 0 ? KR : t.R, S = KS > 0 ? KS : t.S;
  for (int64_t i = 0; i < rows; ++i) {
    const T* base = in + i * t.stride_h * ld;
    T* o = out + i * cols;
    for (int64_t j0 = 0; j0 < cols; j0 += kBlock) {
      const int64_t width = std::min(kBlock, cols - j0);
      T acc[kBlock];
      if (width == kBlock && t.stride_w == 1) {
        for (int64_t j = 0; j < kBlock; ++j) acc[j] = o[j0 + j];
        for (int64_t r = 0; r < R; ++r)
          for (int64_t s = 0; s < S; ++s) {
            const T wv = w[r * S + s];
            const T* p = base + r * t.dilation_h * ld + s * t.dilation_w + j0;
#pragma omp simd
            for (int64_t j = 0; j < kBlock; ++j) acc[j] += wv * p[j];
          }
      } else {
        for (int64_t j = 0; j < width; ++j) acc[j] = o[j0 + j];
        for (int64_t r = 0; r < R; ++r)
          for (int64_t s = 0; s < S; ++s) {
            const T wv = w[r * S + s];
            const T* p = base + r * t.dilation_h * ld + s * t.dilation_w + j0 * t.stride_w;
            for (int64_t j = 0; j < width; ++j) acc[j] += wv * p[j * t.stride_w];
          }
      }
      std::copy(acc, acc + width, o + j0);
    }
  }
}

template <class T>
void correlate_add(const T* in, int64_t ld, const T* w, const Taps& t, int64_t rows, int64_t cols, T* out) {
  if (t.R == 3 && t.S == 3) {
    correlate_add<3, 3>(in, ld, w, t, rows, cols, out);
  } else if (t.R == 5 && t.S == 5) {
    correlate_add<5, 5>(in, ld, w, t, rows, cols, out);
  } else {
    correlate_add<0, 0>(in, ld, w, t, rows, cols, out);
  }
}

Taps taps_of(const Conv2dGeometry& g) { return {g.R, g.S, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w}; }

template <class T>
void forward_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const Conv2dLayout L(g);
  const int64_t rows = g.H + 2 * g.pad_h, cols = g.W + 2 * g.pad_w;
#pragma omp parallel
  {
    T* framed = thread_buffer<T>(rows * cols);
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t c = 0; c < g.C; ++c) {
        frame_plane(x + (n * g.C + c) * L.HW, g.H, g.W, g.pad_h, g.pad_w, rows, cols, framed);
        for (int64_t k = c * L.Kg; k < (c + 1) * L.Kg; ++k) {
          T* yp = y + (n * g.K + k) * L.PQ;
          std::fill(yp, yp + L.PQ, bias ? bias[k] : T(0));
          correlate_add(framed, cols, w + k * g.R * g.S, taps_of(g), L.P, L.Q, yp);
        }
      }
    }
  }
}

// Stride 1 with padding within the kernel's reach: gx is the full correlation of gy with
// the flipped kernel, gx[i][j] = sum_{r,s} w[R-1-r][S-1-s] * framed_gy[i + r*dh][j + s*dw].
bool backward_input_as_correlation(const Conv2dGeometry& g) {
  return g.stride_h == 1 && g.stride_w == 1 && g.pad_h <= (g.R - 1) * g.dilation_h &&
         g.pad_w <= (g.S - 1) * g.dilation_w;
}

template <class T>
void backward_input_direct(const Conv2dGeometry& g, const T* gy, const T* w, T* gx) {
  const Conv2dLayout L(g);
  const int64_t RS = g.R * g.S;
  if (backward_input_as_correlation(g)) {
    const int64_t top = (g.R - 1) * g.dilation_h - g.pad_h, left = (g.S - 1) * g.dilation_w - g.pad_w;
    const int64_t rows = L.P + 2 * top, cols = L.Q + 2 * left;
    const Taps flipped_taps{g.R, g.S, 1, 1, g.dilation_h, g.dilation_w};
#pragma omp parallel
    {
      T* framed = thread_buffer<T>(rows * cols);
      std::vector<T> flipped(static_cast<size_t>(RS));
#pragma omp for collapse(2) schedule(static)
      for (int64_t n = 0; n < g.N; ++n) {
        for (int64_t c = 0; c < g.C; ++c) {
          T* gxp = gx + (n * g.C + c) * L.HW;
          std::fill(gxp, gxp + L.HW, T(0));
          for (int64_t k = c * L.Kg; k < (c + 1) * L.Kg; ++k) {
            std::reverse_copy(w + k * RS, w + (k + 1) * RS, flipped.begin());
            frame_plane(gy + (n * g.K + k) * L.PQ, L.P, L.Q, top, left, rows, cols, framed);
            correlate_add(framed, cols, flipped.data(), flipped_taps, g.H, g.W, gxp);
          }
        }
      }
    }
    return;
  }
  // Otherwise scatter each output's taps into a framed gx and keep its interior.
  const int64_t rows = g.H + 2 * g.pad_h, cols = g.W + 2 * g.pad_w;
#pragma omp parallel
  {
    T* framed = thread_buffer<T>(rows * cols);
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t c = 0; c < g.C; ++c) {
        std::fill(framed, framed + rows * cols, T(0));
        for (int64_t k = c * L.Kg; k < (c + 1) * L.Kg; ++k) {
          const T* wk = w + k * RS;
          const T* gyp = gy + (n * g.K + k) * L.PQ;
          for (int64_t oh = 0; oh < L.P; ++oh) {
            const T* __restrict in = gyp + oh * L.Q;
            for (int64_t r = 0; r < g.R; ++r) {
              T* row = framed + (oh * g.stride_h + r * g.dilation_h) * cols;
              for (int64_t s = 0; s < g.S; ++s) {
                const T wv = wk[r * g.S + s];
                T* __restrict out = row + s * g.dilation_w;
                for (int64_t ow = 0; ow < L.Q; ++ow) out[ow * g.stride_w] += wv * in[ow];
              }
            }
          }
        }
        T* gxp = gx + (n * g.C + c) * L.HW;
        for (int64_t ih = 0; ih < g.H; ++ih) {
          const T* src = framed + (ih + g.pad_h) * cols + g.pad_w;
          std::copy(src, src + g.W, gxp + ih * g.W);
        }
      }
    }
  }
}

// gw[k][r][s] = sum over images and output positions of gy * the input under tap (r, s).
// Each (r, s) sum runs over whole planes in kBlock-wide partial sums (reduced once per
// image), so short rows do not pay a horizontal reduction each.
template <class T>
void backward_weight_direct(const Conv2dGeometry& g, const T* gy, const T* x, T* gw) {
  const Conv2dLayout L(g);
  const int64_t rows = g.H + 2 * g.pad_h, cols = g.W + 2 * g.pad_w, RS = g.R * g.S;
  const int64_t sw = g.stride_w, full = L.Q / kBlock * kBlock;
#pragma omp parallel
  {
    T* framed = thread_buffer<T>(rows * cols);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < g.K; ++k) {
      T* gwk = gw + k * RS;
      std::fill(gwk, gwk + RS, T(0));
      for (int64_t n = 0; n < g.N; ++n) {
        frame_plane(x + (n * g.C + k / L.Kg) * L.HW, g.H, g.W, g.pad_h, g.pad_w, rows, cols, framed);
        const T* gyp = gy + (n * g.K + k) * L.PQ;
        for (int64_t r = 0; r < g.R; ++r) {
          for (int64_t s = 0; s < g.S; ++s) {
            T acc[kBlock] = {};
            T rest = 0;
            for (int64_t oh = 0; oh < L.P; ++oh) {
              const T* go = gyp + oh * L.Q;
              const T* in = framed + (oh * g.stride_h + r * g.dilation_h) * cols + s * g.dilation_w;
              for (int64_t j0 = 0; j0 < full; j0 += kBlock)
                for (int64_t j = 0; j < kBlock; ++j) acc[j] += go[j0 + j] * in[(j0 + j) * sw];
              for (int64_t j = full; j < L.Q; ++j) rest += go[j] * in[j * sw];
            }
            for (int64_t j = 0; j < kBlock; ++j) rest += acc[j];
            gwk[r * g.S + s] += rest;
          }
        }
      }
    }
  }
}

}  // namespace

template <class T>
void conv2d_forward_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  forward_direct(g, x, w, bias, y);
}
template <class T>
void conv2d_backward_input_direct(const Conv2dGeometry& g, const T* gy, const T* w, T* gx) {
  backward_input_direct(g, gy, w, gx);
}
template <class T>
void conv2d_backward_weight_direct(const Conv2dGeometry& g, const T* gy, const T* x, T* gw) {
  backward_weight_direct(g, gy, x, gw);
}

template void conv2d_forward_direct<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*);
template void conv2d_forward_direct<double>(const Conv2dGeometry&, const double*, const double*, const double*,
                                            double*);
template void conv2d_backward_input_direct<float>(const Conv2dGeometry&, const float*, const float*, float*);
template void conv2d_backward_input_direct<double>(const Conv2dGeometry&, const double*, const double*, double*);
template void conv2d_backward_weight_direct<float>(const Conv2dGeometry&, const float*, const float*, float*);
template void conv2d_backward_weight_direct<double>(const Conv2dGeometry&, const double*, const double*, double*);

}  // namespace dmix::kernels::cpu
