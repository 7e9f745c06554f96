// What the handwritten convolution kernels share (conv2d_implicit_gemm.cu,
// conv2d_direct.cu): the geometry in 32-bit integers, checked to fit, division by a
// run-time constant without the hardware divide, which index arithmetic needs in every
// inner loop (an integer division costs ~20 instructions; this costs 3), and the
// one-compare bounds test of a padded coordinate.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"
#include "kernels/error.h"

namespace dmix::kernels::cuda::conv {

// n / d for 0 <= n < 2^31 and 1 <= d < 2^31, as a multiply-high, an add and a shift
// (the round-up method of Granlund and Montgomery): with 2^shift >= d and
// magic = floor(2^32 (2^shift - d) / d) + 1, n / d = (umulhi(n, magic) + n) >> shift.
// umulhi(n, magic) <= n, so the sum stays below 2^32.
struct FastDiv {
  uint32_t divisor = 1, magic = 1, shift = 0;
  FastDiv() = default;
  explicit FastDiv(int64_t d) : divisor(static_cast<uint32_t>(d)) {
    while ((uint64_t{1} << shift) < divisor) ++shift;
    magic = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - divisor)) / divisor + 1);
  }
#ifdef __CUDACC__
  __device__ __forceinline__ int div(int n) const {
    return static_cast<int>((__umulhi(static_cast<uint32_t>(n), magic) + static_cast<uint32_t>(n)) >> shift);
  }
#endif
};

#ifdef __CUDACC__
// 0 <= i < n, as one unsigned compare (a negative i wraps to a huge value).
__device__ __forceinline__ bool inside(int i, int n) { return static_cast<unsigned>(i) < static_cast<unsigned>(n); }
#endif

// Conv2dGeometry in ints, with the derived sizes the kernels use.
struct Geometry {
  int N, C, H, W, K, R, S, P, Q;
  int sh, sw, ph, pw, dh, dw;
  int groups, Cg, Kg;
  int HW, PQ, RS;
};

// Every index of the handwritten kernels is a 32-bit int: the input, the output and the
// weight must each hold fewer than 2^31 elements (8 GiB of f32), checked here.
inline Geometry device_geometry(const Conv2dGeometry& g, const char* op) {
  constexpr int64_t kLimit = int64_t{1} << 31;
  const int64_t P = g.out_h(), Q = g.out_w();
  const int64_t x_numel = g.N * g.C * g.H * g.W, y_numel = g.N * g.K * P * Q;
  const int64_t w_numel = g.K * (g.C / g.groups) * g.R * g.S;
  check(x_numel < kLimit && y_numel < kLimit && w_numel < kLimit, op, "tensors of ", kLimit,
        " elements or more are not supported by the handwritten kernels (input ", x_numel, ", output ", y_numel,
        ", weight ", w_numel, " elements)");
  const int64_t reach = std::max({g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dilation_h * g.R, g.dilation_w * g.S});
  check(reach < (int64_t{1} << 30), op, "stride, padding and dilated kernel size must be below 2^30");
  check(g.groups >= 1 && g.C % g.groups == 0 && g.K % g.groups == 0 && P >= 1 && Q >= 1, op,
        "invalid geometry (groups ", g.groups, ", C ", g.C, ", K ", g.K, ", output ", P, "x", Q, ")");
  Geometry d;
  d.N = static_cast<int>(g.N), d.C = static_cast<int>(g.C), d.H = static_cast<int>(g.H), d.W = static_cast<int>(g.W);
  d.K = static_cast<int>(g.K), d.R = static_cast<int>(g.R), d.S = static_cast<int>(g.S);
  d.P = static_cast<int>(P), d.Q = static_cast<int>(Q);
  d.sh = static_cast<int>(g.stride_h), d.sw = static_cast<int>(g.stride_w);
  d.ph = static_cast<int>(g.pad_h), d.pw = static_cast<int>(g.pad_w);
  d.dh = static_cast<int>(g.dilation_h), d.dw = static_cast<int>(g.dilation_w);
  d.groups = static_cast<int>(g.groups), d.Cg = d.C / d.groups, d.Kg = d.K / d.groups;
  d.HW = d.H * d.W, d.PQ = d.P * d.Q, d.RS = d.R * d.S;
  return d;
}

// What every handwritten entry point starts with: the device exists, then the geometry.
inline Geometry checked_geometry(const Conv2dGeometry& g, int device, const char* op) {
  check_device(device, op);
  return device_geometry(g, op);
}

}  // namespace dmix::kernels::cuda::conv
