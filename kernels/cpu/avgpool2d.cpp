// Average pooling (fixed windows and adaptive bins) and the adjoints of both.
// Fixed windows follow PyTorch: a window starting at oh*stride - pad is first clipped to
// the padded border [-pad, H + pad) (that size is the count_include_pad divisor), then to
// the input [0, H) (that size is the divisor otherwise). Adaptive bins cover
// [floor(i*H/out), ceil((i+1)*H/out)).
// Algorithm: direct loops over windows, planes in parallel; the backward spreads each
// output gradient over its window within one plane, so each plane is written by one
// thread and results do not depend on the thread count.
// Cost: kernel_h*kernel_w reads (forward) or read-modify-writes (backward) per output.
#include <algorithm>

#include "kernels/cpu/pool2d.h"

namespace dmix::kernels::cpu {
namespace {

// One window of a fixed-window pool: in-input rows/cols [h0, h1) x [w0, w1) and its divisor.
struct Window {
  int64_t h0, h1, w0, w1;
  int64_t divisor;
};

Window avg_window(const Pool2dGeometry& g, bool count_include_pad, int64_t oh, int64_t ow) {
  int64_t h0 = oh * g.stride_h - g.pad_h, w0 = ow * g.stride_w - g.pad_w;
  int64_t h1 = std::min(h0 + g.kernel_h, g.H + g.pad_h), w1 = std::min(w0 + g.kernel_w, g.W + g.pad_w);
  const int64_t padded_size = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, g.H);
  w1 = std::min(w1, g.W);
  const int64_t divisor = count_include_pad ? padded_size : (h1 - h0) * (w1 - w0);
  return {h0, h1, w0, w1, std::max<int64_t>(divisor, 1)};
}

int64_t bin_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
int64_t bin_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

}  // namespace

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const T* x, T* y) {
  const int64_t in_size = g.H * g.W, out_size = g.out_h * g.out_w;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* xp = x + p * in_size;
    T* yp = y + p * out_size;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const Window win = avg_window(g, count_include_pad, oh, ow);
        T total = 0;
        for (int64_t ih = win.h0; ih < win.h1; ++ih)
          for (int64_t iw = win.w0; iw < win.w1; ++iw) total += xp[ih * g.W + iw];
        yp[oh * g.out_w + ow] = total / T(win.divisor);
      }
    }
  }
}

template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const T* gy, T* gx) {
  const int64_t in_size = g.H * g.W, out_size = g.out_h * g.out_w;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    T* gxp = gx + p * in_size;
    std::fill(gxp, gxp + in_size, T(0));
    const T* gyp = gy + p * out_size;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const Window win = avg_window(g, count_include_pad, oh, ow);
        const T share = gyp[oh * g.out_w + ow] / T(win.divisor);
        for (int64_t ih = win.h0; ih < win.h1; ++ih)
          for (int64_t iw = win.w0; iw < win.w1; ++iw) gxp[ih * g.W + iw] += share;
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
