// conv2d by direct loops: the forward pass and its two adjoints, handwritten, f32 and f64.
// For convolutions whose groups hold very few channels (depthwise: one input and one
// output channel per group), where an implicit-GEMM tile would be almost all padding.
//
// Algorithm, one thread per output element, each summing its own terms in a fixed order:
//   forward          y[n,k,p,q]  = bias[k] + sum_{c,r,s} x[n, g*Cg+c, p*sh-ph+r*dh, q*sw-pw+s*dw] w[k,c,r,s]
//   backward_input   gx[n,c,h,w] = sum_{k,r,s} gy[n, g*Kg+k, p, q] w[g*Kg+k, c, r, s]
//                    over the taps with p = (h+ph-r*dh)/sh, q = (w+pw-s*dw)/sw whole and in range
//   backward_weight  gw[k,c,r,s] = sum_{n,p,q} gy[n,k,p,q] x[n, g*Cg+c, p*sh-ph+r*dh, q*sw-pw+s*dw]
// backward_weight has few outputs and long sums, so one block of 256 threads owns each
// weight: its threads stride over the N*P*Q terms and combine their partial sums by a
// fixed shuffle / shared-memory tree (deterministic, no atomics).
// Consecutive threads take consecutive output columns (or input columns, or terms), so
// global reads are coalesced along the rows of the planes.
//
// Cost: 2 * N*K*(C/groups)*R*S*P*Q flops per pass, like any convolution; each thread
// reads its (C/groups)*R*S inputs and weights (backward_input: (K/groups)*R*S) through
// the caches. Memory-bound for depthwise convolutions: about one read of x, gy and y each.
#include <cstdint>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/conv2d_common.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

using conv::FastDiv;
using conv::Geometry;
using conv::inside;

constexpr int kWarp = 32;
constexpr int kReduceThreads = 256;

template <class T>
__global__ void forward_direct_kernel(Geometry g, FastDiv div_q, FastDiv div_p, FastDiv div_k, FastDiv div_kg,
                                      const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                                      T* __restrict__ y, int total) {
  for (int64_t i : GridStride(total)) {
    const int idx = static_cast<int>(i);
    const int row = div_q.div(idx), q = idx - row * g.Q;
    const int plane = div_p.div(row), p = row - plane * g.P;
    const int n = div_k.div(plane), k = plane - n * g.K;
    const int group = div_kg.div(k);
    const T* x_img = x + (static_cast<int64_t>(n) * g.C + static_cast<int64_t>(group) * g.Cg) * g.HW;
    const T* w_k = w + static_cast<int64_t>(k) * g.Cg * g.RS;
    const int ih0 = p * g.sh - g.ph, iw0 = q * g.sw - g.pw;
    T acc = T(0);
    for (int c = 0; c < g.Cg; ++c) {
      const T* x_c = x_img + c * g.HW;
      const T* w_c = w_k + c * g.RS;
      for (int r = 0; r < g.R; ++r) {
        const int ih = ih0 + r * g.dh;
        if (!inside(ih, g.H)) continue;
        for (int s = 0; s < g.S; ++s) {
          const int iw = iw0 + s * g.dw;
          if (inside(iw, g.W)) acc += x_c[ih * g.W + iw] * w_c[r * g.S + s];
        }
      }
    }
    y[i] = bias ? acc + bias[k] : acc;
  }
}

template <class T>
__global__ void backward_input_direct_kernel(Geometry g, FastDiv div_w, FastDiv div_h, FastDiv div_c, FastDiv div_cg,
                                             FastDiv div_sh, FastDiv div_sw, const T* __restrict__ gy,
                                             const T* __restrict__ w, T* __restrict__ gx, int total) {
  for (int64_t i : GridStride(total)) {
    const int idx = static_cast<int>(i);
    const int row = div_w.div(idx), iw = idx - row * g.W;
    const int plane = div_h.div(row), ih = row - plane * g.H;
    const int n = div_c.div(plane), c_all = plane - n * g.C;
    const int group = div_cg.div(c_all), c = c_all - group * g.Cg;
    const int hp = ih + g.ph, wp = iw + g.pw;
    T acc = T(0);
    for (int kl = 0; kl < g.Kg; ++kl) {
      const int k = group * g.Kg + kl;
      const T* gy_k = gy + (static_cast<int64_t>(n) * g.K + k) * g.PQ;
      const T* w_kc = w + (static_cast<int64_t>(k) * g.Cg + c) * g.RS;
      for (int r = 0; r < g.R; ++r) {
        const int th = hp - r * g.dh;
        if (th < 0) break;  // th only decreases with r
        const int p = div_sh.div(th);
        if (p * g.sh != th || p >= g.P) continue;
        for (int s = 0; s < g.S; ++s) {
          const int tw = wp - s * g.dw;
          if (tw < 0) break;
          const int q = div_sw.div(tw);
          if (q * g.sw == tw && q < g.Q) acc += gy_k[p * g.Q + q] * w_kc[r * g.S + s];
        }
      }
    }
    gx[i] = acc;
  }
}

// Sum over the block in a fixed order; the result is valid in thread 0.
template <class T>
__device__ __forceinline__ T block_sum(T v) {
  __shared__ T warp_sums[kReduceThreads / kWarp];
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % kWarp == 0) warp_sums[threadIdx.x / kWarp] = v;
  __syncthreads();
  T total = T(0);
  if (threadIdx.x == 0)
    for (int i = 0; i < kReduceThreads / kWarp; ++i) total += warp_sums[i];
  return total;
}

template <class T>
__global__ void __launch_bounds__(kReduceThreads)
    backward_weight_direct_kernel(Geometry g, FastDiv div_pq, FastDiv div_q, FastDiv div_crs, FastDiv div_rs,
                                  FastDiv div_s, FastDiv div_kg, const T* __restrict__ gy, const T* __restrict__ x,
                                  T* __restrict__ gw, int count) {
  const int terms = g.N * g.PQ;
  const int crs_count = g.Cg * g.RS;
  for (int wi = blockIdx.x; wi < count; wi += gridDim.x) {  // the same trip count for the whole block
    const int k = div_crs.div(wi), crs = wi - k * crs_count;
    const int c = div_rs.div(crs), rs = crs - c * g.RS;
    const int r = div_s.div(rs), s = rs - r * g.S;
    const int group = div_kg.div(k);
    const int dh = r * g.dh - g.ph, dw = s * g.dw - g.pw;
    const T* x_c = x + (static_cast<int64_t>(group) * g.Cg + c) * g.HW;
    const T* gy_k = gy + static_cast<int64_t>(k) * g.PQ;
    T acc = T(0);
    for (int j = threadIdx.x; j < terms; j += kReduceThreads) {
      const int n = div_pq.div(j), pq = j - n * g.PQ;
      const int p = div_q.div(pq), q = pq - p * g.Q;
      const int ih = p * g.sh + dh, iw = q * g.sw + dw;
      if (inside(ih, g.H) && inside(iw, g.W))
        acc +=
            gy_k[static_cast<int64_t>(n) * g.K * g.PQ + pq] * x_c[static_cast<int64_t>(n) * g.C * g.HW + ih * g.W + iw];
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) gw[wi] = acc;
    __syncthreads();  // warp_sums is reused by the next weight
  }
}

// Runs kernel<<<blocks, threads>>>(args...) on the device's stream.
template <class... Params, class... Args>
void launch(const char* op, int device, unsigned blocks, int threads, void (*kernel)(Params...), const Args&... args) {
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  kernel<<<blocks, threads, 0, st>>>(args...);
  check_launch(op);
}

}  // namespace

template <class T>
void conv2d_forward_direct(const Conv2dGeometry& geometry, const T* x, const T* w, const T* bias, T* y, int device) {
  const char* op = "conv2d_forward_direct";
  const Geometry g = conv::checked_geometry(geometry, device, op);
  const int total = g.N * g.K * g.PQ;
  if (total == 0) return;
  launch(op, device, blocks_for(total), kThreads, forward_direct_kernel<T>, g, FastDiv(g.Q), FastDiv(g.P),
         FastDiv(g.K), FastDiv(g.Kg), x, w, bias, y, total);
}

template <class T>
void conv2d_backward_input_direct(const Conv2dGeometry& geometry, const T* gy, const T* w, T* gx, int device) {
  const char* op = "conv2d_backward_input_direct";
  const Geometry g = conv::checked_geometry(geometry, device, op);
  const int total = g.N * g.C * g.HW;
  if (total == 0) return;
  launch(op, device, blocks_for(total), kThreads, backward_input_direct_kernel<T>, g, FastDiv(g.W), FastDiv(g.H),
         FastDiv(g.C), FastDiv(g.Cg), FastDiv(g.sh), FastDiv(g.sw), gy, w, gx, total);
}

template <class T>
void conv2d_backward_weight_direct(const Conv2dGeometry& geometry, const T* gy, const T* x, T* gw, int device) {
  const char* op = "conv2d_backward_weight_direct";
  const Geometry g = conv::checked_geometry(geometry, device, op);
  const int count = g.K * g.Cg * g.RS;
  if (g.N == 0) {
    memset_zero(gw, static_cast<size_t>(count) * sizeof(T), device);
    return;
  }
  constexpr int kMaxBlocks = 1 << 20;
  const unsigned blocks = static_cast<unsigned>(count < kMaxBlocks ? count : kMaxBlocks);
  launch(op, device, blocks, kReduceThreads, backward_weight_direct_kernel<T>, g, FastDiv(g.PQ), FastDiv(g.Q),
         FastDiv(g.Cg * g.RS), FastDiv(g.RS), FastDiv(g.S), FastDiv(g.Kg), gy, x, gw, count);
}

template void conv2d_forward_direct<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*,
                                           int);
template void conv2d_forward_direct<double>(const Conv2dGeometry&, const double*, const double*, const double*,
                                            double*, int);
template void conv2d_backward_input_direct<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_input_direct<double>(const Conv2dGeometry&, const double*, const double*, double*, int);
template void conv2d_backward_weight_direct<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_weight_direct<double>(const Conv2dGeometry&, const double*, const double*, double*,
                                                    int);

}  // namespace dmix::kernels::cuda
