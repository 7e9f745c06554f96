// The CPU convolution algorithms behind kernels/cpu/conv2d.h, and what they share.
// conv2d.cpp picks one per call: direct loops when each group has one input channel
// (depthwise, single-channel inputs), im2col + GEMM otherwise.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cpu/conv2d.h"

namespace dmix::kernels::cpu {

// Sizes derived once per call.
struct Conv2dLayout {
  int64_t P, Q, PQ, HW, Cg, Kg, CgRS;
  bool image_is_col;  // 1x1, stride 1, no padding: the image is its own im2col matrix

  explicit Conv2dLayout(const Conv2dGeometry& g)
      : P(g.out_h()),
        Q(g.out_w()),
        PQ(P * Q),
        HW(g.H * g.W),
        Cg(g.C / g.groups),
        Kg(g.K / g.groups),
        CgRS(Cg * g.R * g.S),
        image_is_col(g.R == 1 && g.S == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0 &&
                     g.H == P && g.W == Q) {}
};

// A per-thread buffer that lives as long as the thread (OpenMP keeps its pool), so
// repeated convolutions do not pay for allocation and page faults every call.
template <class T>
T* thread_buffer(int64_t n, int slot = 0) {
  static thread_local std::vector<T> buffers[2];
  std::vector<T>& buffer = buffers[slot];
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

template <class T> void conv2d_forward_im2col(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y);
template <class T> void conv2d_backward_input_im2col(const Conv2dGeometry& g, const T* gy, const T* w, T* gx);
template <class T> void conv2d_backward_weight_im2col(const Conv2dGeometry& g, const T* gy, const T* x, T* gw);

template <class T> void conv2d_forward_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y);
template <class T> void conv2d_backward_input_direct(const Conv2dGeometry& g, const T* gy, const T* w, T* gx);
template <class T> void conv2d_backward_weight_direct(const Conv2dGeometry& g, const T* gy, const T* x, T* gw);

}  // namespace dmix::kernels::cpu
