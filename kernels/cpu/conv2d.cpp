// conv2d.h's entry points: each call goes to the algorithm that suits its shape.
#include <algorithm>

#include "kernels/cpu/conv2d_algorithms.h"

namespace dmix::kernels::cpu {
namespace {

// One input channel per group would make the im2col GEMM's inner size only R*S.
bool one_channel_per_group(const Conv2dGeometry& g) { return g.C == g.groups; }

}  // namespace

template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  if (one_channel_per_group(g)) {
    conv2d_forward_direct(g, x, w, bias, y);
  } else {
    conv2d_forward_im2col(g, x, w, bias, y);
  }
}

template <class T>
void conv2d_backward_input(const Conv2dGeometry& g, const T* gy, const T* w, T* gx) {
  if (one_channel_per_group(g)) {
    conv2d_backward_input_direct(g, gy, w, gx);
  } else {
    conv2d_backward_input_im2col(g, gy, w, gx);
  }
}

template <class T>
void conv2d_backward_weight(const Conv2dGeometry& g, const T* gy, const T* x, T* gw) {
  if (g.N == 0) {
    std::fill(gw, gw + g.K * (g.C / g.groups) * g.R * g.S, T(0));
  } else if (one_channel_per_group(g)) {
    conv2d_backward_weight_direct(g, gy, x, gw);
  } else {
    conv2d_backward_weight_im2col(g, gy, x, gw);
  }
}

template void conv2d_forward<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*);
template void conv2d_forward<double>(const Conv2dGeometry&, const double*, const double*, const double*, double*);
template void conv2d_backward_input<float>(const Conv2dGeometry&, const float*, const float*, float*);
template void conv2d_backward_input<double>(const Conv2dGeometry&, const double*, const double*, double*);
template void conv2d_backward_weight<float>(const Conv2dGeometry&, const float*, const float*, float*);
template void conv2d_backward_weight<double>(const Conv2dGeometry&, const double*, const double*, double*);

}  // namespace dmix::kernels::cpu
