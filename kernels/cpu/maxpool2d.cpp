// Max pooling: each output is the largest input in its window (cells in the padding never
// count), and the flat index of that input within its plane is kept, so the backward is
// a scatter of output gradients to those indices and its adjoint a gather from them.
// Algorithm: a direct loop over windows, planes in parallel (each plane is written by
// one thread, so results do not depend on the thread count).
// Cost: forward reads kernel_h*kernel_w inputs per output; scatter and gather touch each
// output once and one input per output.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/pool2d.h"

namespace dmix::kernels::cpu {
namespace {

template <class T>
struct WindowMax {
  T value;
  int64_t index;
};

// Rows [h0, h1) x columns [w0, w1) of a plane of width W; ties go to the first maximum,
// and a NaN ends the search (PyTorch propagates NaN the same way).
template <class T>
WindowMax<T> window_max(const T* plane, int64_t W, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
  WindowMax<T> m{-std::numeric_limits<T>::infinity(), h0 * W + w0};
  for (int64_t ih = h0; ih < h1; ++ih) {
    for (int64_t iw = w0; iw < w1; ++iw) {
      const T v = plane[ih * W + iw];
      if (std::isnan(v)) return {v, ih * W + iw};
      if (v > m.value) m = {v, ih * W + iw};
    }
  }
  return m;
}

}  // namespace

template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* indices) {
  const int64_t in_size = g.H * g.W, out_size = g.out_h * g.out_w;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* xp = x + p * in_size;
    T* yp = y + p * out_size;
    int64_t* ip = indices + p * out_size;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const int64_t h0 = std::max<int64_t>(oh * g.stride_h - g.pad_h, 0);
      const int64_t h1 = std::min(oh * g.stride_h - g.pad_h + g.kernel_h, g.H);
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const int64_t w0 = std::max<int64_t>(ow * g.stride_w - g.pad_w, 0);
        const int64_t w1 = std::min(ow * g.stride_w - g.pad_w + g.kernel_w, g.W);
        const WindowMax<T> m = window_max(xp, g.W, h0, h1, w0, w1);
        yp[oh * g.out_w + ow] = m.value;
        ip[oh * g.out_w + ow] = m.index;
      }
    }
  }
}

template <class T>
void max_pool2d_scatter(int64_t planes, int64_t in_size, int64_t out_size, const T* gy, const int64_t* indices,
                        T* gx) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    T* gxp = gx + p * in_size;
    std::fill(gxp, gxp + in_size, T(0));
    const T* gyp = gy + p * out_size;
    const int64_t* ip = indices + p * out_size;
    for (int64_t o = 0; o < out_size; ++o) gxp[ip[o]] += gyp[o];
  }
}

template <class T>
void max_pool2d_gather(int64_t planes, int64_t in_size, int64_t out_size, const T* x, const int64_t* indices, T* y) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * in_size;
    T* yp = y + p * out_size;
    const int64_t* ip = indices + p * out_size;
    for (int64_t o = 0; o < out_size; ++o) yp[o] = xp[ip[o]];
  }
}

template void max_pool2d_forward<float>(const Pool2dGeometry&, const float*, float*, int64_t*);
template void max_pool2d_forward<double>(const Pool2dGeometry&, const double*, double*, int64_t*);
template void max_pool2d_scatter<float>(int64_t, int64_t, int64_t, const float*, const int64_t*, float*);
template void max_pool2d_scatter<double>(int64_t, int64_t, int64_t, const double*, const int64_t*, double*);
template void max_pool2d_gather<float>(int64_t, int64_t, int64_t, const float*, const int64_t*, float*);
template void max_pool2d_gather<double>(int64_t, int64_t, int64_t, const double*, const int64_t*, double*);

}  // namespace dmix::kernels::cpu
