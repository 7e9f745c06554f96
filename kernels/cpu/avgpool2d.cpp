// Average pooling (fixed windows and adaptive bins) and the adjoints of both.
// Fixed windows follow PyTorch: a window starting at oh*stride - pad is first clipped to
// the padded border [-pad, H + pad) (that size is the count_include_pad divisor), then to
// the input [0, H) (that size is the divisor otherwise). Adaptive bins cover
// [floor(i*H/out), ceil((i+1)*H/out)).
// Algorithm: direct loops over windows, planes in parallel; the backward spreads each
// output gradient over its window within one plane, so each plane is written by one
// thread and results do not depend on the thread count.
// A 2-wide, stride-2 window row (the shortcut pools of PyramidNet and ResNet-D) runs as a
// vectorised loop over its complete windows, with the same additions in the same order.
// Cost: kernel_h*kernel_w reads (forward) or read-modify-writes (backward) per output.
#include <algorithm>
#include <vector>

#include "kernels/cpu/pool2d.h"

namespace dmix::kernels::cpu {
namespace {

int64_t bin_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
int64_t bin_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

// The windows of a fixed-window pool factor into row and column ranges: window (oh, ow)
// covers rows rows[oh] and columns cols[ow], and its divisor is the product of their
// sizes. Computed once per call instead of once per output.
struct Range {
  int64_t begin, end, padded;  // in-input [begin, end); size within the padded border
};

std::vector<Range> window_ranges(int64_t out, int64_t stride, int64_t pad, int64_t kernel, int64_t in) {
  std::vector<Range> r(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const int64_t b = o * stride - pad, e = std::min(b + kernel, in + pad);
    r[o] = {std::max<int64_t>(b, 0), std::min(e, in), e - b};
  }
  return r;
}

struct Windows {
  std::vector<Range> rows, cols;
  bool count_include_pad;
  // Columns [0, full_cols) have complete 2-wide windows at stride 2 (the PyramidNet and
  // ResNet-D shortcut pool), summed by a loop the compiler vectorises.
  int64_t full_cols = 0;

  Windows(const Pool2dGeometry& g, bool include_pad)
      : rows(window_ranges(g.out_h, g.stride_h, g.pad_h, g.kernel_h, g.H)),
        cols(window_ranges(g.out_w, g.stride_w, g.pad_w, g.kernel_w, g.W)),
        count_include_pad(include_pad) {
    if (g.kernel_w == 2 && g.stride_w == 2 && g.pad_w == 0) full_cols = std::min(g.out_w, g.W / 2);
  }
  int64_t divisor(int64_t oh, int64_t ow) const {
    const Range &r = rows[oh], &c = cols[ow];
    const int64_t d = count_include_pad ? r.padded * c.padded : (r.end - r.begin) * (c.end - c.begin);
    return std::max<int64_t>(d, 1);
  }
};

}  // namespace

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const T* x, T* y) {
  const int64_t in_size = g.H * g.W, out_size = g.out_h * g.out_w;
  const Windows win(g, count_include_pad);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* xp = x + p * in_size;
    T* yp = y + p * out_size;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const Range r = win.rows[oh];
      int64_t ow = 0;
      if (win.full_cols > 0 && r.end - r.begin == 2) {
        // Same additions in the same order as the general loop below, so the same bits.
        const T* x0 = xp + r.begin * g.W;
        const T* x1 = x0 + g.W;
        const T d = T(win.divisor(oh, 0));
        T* yr = yp + oh * g.out_w;
#pragma omp simd
        for (int64_t j = 0; j < win.full_cols; ++j)
          yr[j] = (((x0[2 * j] + x0[2 * j + 1]) + x1[2 * j]) + x1[2 * j + 1]) / d;
        ow = win.full_cols;
      }
      for (; ow < g.out_w; ++ow) {
        const Range c = win.cols[ow];
        T total = 0;
        for (int64_t ih = r.begin; ih < r.end; ++ih)
          for (int64_t iw = c.begin; iw < c.end; ++iw) total += xp[ih * g.W + iw];
        yp[oh * g.out_w + ow] = total / T(win.divisor(oh, ow));
      }
    }
  }
}

template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const T* gy, T* gx) {
  const int64_t in_size = g.H * g.W, out_size = g.out_h * g.out_w;
  const Windows win(g, count_include_pad);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    T* gxp = gx + p * in_size;
    std::fill(gxp, gxp + in_size, T(0));
    const T* gyp = gy + p * out_size;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const Range r = win.rows[oh];
      int64_t ow = 0;
      if (win.full_cols > 0 && r.end - r.begin == 2) {
        T* g0 = gxp + r.begin * g.W;
        T* g1 = g0 + g.W;
        const T d = T(win.divisor(oh, 0));
        const T* gr = gyp + oh * g.out_w;
        // Overlapping windows (stride < kernel rows) accumulate; 2x2 at stride 2 never
        // overlaps in columns, so each column pair is added to once per output row.
#pragma omp simd
        for (int64_t j = 0; j < win.full_cols; ++j) {
          const T share = gr[j] / d;
          g0[2 * j] += share;
          g0[2 * j + 1] += share;
          g1[2 * j] += share;
          g1[2 * j + 1] += share;
        }
        ow = win.full_cols;
      }
      for (; ow < g.out_w; ++ow) {
        const Range c = win.cols[ow];
        const T share = gyp[oh * g.out_w + ow] / T(win.divisor(oh, ow));
        for (int64_t ih = r.begin; ih < r.end; ++ih)
          for (int64_t iw = c.begin; iw < c.end; ++iw) gxp[ih * g.W + iw] += share;
      }
    }
  }
}

template <class T>
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t out_h, int64_t out_w, const T* x,
                                 T* y) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * H * W;
    T* yp = y + p * out_h * out_w;
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const int64_t h0 = bin_start(oh, H, out_h), h1 = bin_end(oh, H, out_h);
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const int64_t w0 = bin_start(ow, W, out_w), w1 = bin_end(ow, W, out_w);
        T total = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) total += xp[ih * W + iw];
        yp[oh * out_w + ow] = total / T((h1 - h0) * (w1 - w0));
      }
    }
  }
}

template <class T>
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t out_h, int64_t out_w, const T* gy,
                                  T* gx) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    T* gxp = gx + p * H * W;
    std::fill(gxp, gxp + H * W, T(0));
    const T* gyp = gy + p * out_h * out_w;
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const int64_t h0 = bin_start(oh, H, out_h), h1 = bin_end(oh, H, out_h);
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const int64_t w0 = bin_start(ow, W, out_w), w1 = bin_end(ow, W, out_w);
        const T share = gyp[oh * out_w + ow] / T((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) gxp[ih * W + iw] += share;
      }
    }
  }
}

template void avg_pool2d_forward<float>(const Pool2dGeometry&, bool, const float*, float*);
template void avg_pool2d_backward<float>(const Pool2dGeometry&, bool, const float*, float*);
template void adaptive_avg_pool2d_forward<float>(int64_t, int64_t, int64_t, int64_t, int64_t, const float*, float*);
template void adaptive_avg_pool2d_backward<float>(int64_t, int64_t, int64_t, int64_t, int64_t, const float*,
                                                float*);
template void avg_pool2d_forward<double>(const Pool2dGeometry&, bool, const double*, double*);
template void avg_pool2d_backward<double>(const Pool2dGeometry&, bool, const double*, double*);
template void adaptive_avg_pool2d_forward<double>(int64_t, int64_t, int64_t, int64_t, int64_t, const double*, double*);
template void adaptive_avg_pool2d_backward<double>(int64_t, int64_t, int64_t, int64_t, int64_t, const double*,
                                                double*);

}  // namespace dmix::kernels::cpu
