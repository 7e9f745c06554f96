// Elementwise kernels on a CUDA device: unary and scalar maps, fills, conversions and
// broadcasting binary/ternary maps. The twins of kernels/cpu/elementwise.cpp.
//
// Algorithm.
//  - Flat maps (same-shape operands, unary ops, fills, conversions): a grid-stride loop
//    in which each thread moves 16 bytes per operand at a time (float4 / double2 / ...)
//    when every pointer is aligned for it, then a scalar tail. Wide loads keep more
//    bytes in flight per thread, which is what a memory-bound kernel needs to get near
//    the DRAM bandwidth.
//  - Broadcasts: the output is contiguous; each input is read through per-dimension
//    strides (0 on broadcast dims). The host first drops size-1 dims and merges adjacent
//    dims that are contiguous for every operand, so (N,C,H,W) op (1,C,1,1) becomes a
//    3-d walk over (N, C, H*W) and a same-shape pair becomes a flat map. Each thread maps
//    its output index to input offsets with one div/mod per remaining dim, in 32-bit
//    arithmetic whenever every index fits (64-bit division costs several times more).
// Every output element is written by exactly one thread, so results are deterministic.
// The math is the CPU kernel's expression by expression (same comparisons for clamp and
// relu, the same sign formula); only the transcendental functions (exp, log, tanh, pow)
// come from the CUDA math library, within 2-4 ulp of the CPU's.
//
// Cost: one read per operand element and one write per output element; memory bound.
#include "kernels/cuda/elementwise.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

// ---- device math, by element type -----------------------------------------------------

__device__ __forceinline__ float dev_exp(float v) { return expf(v); }
__device__ __forceinline__ double dev_exp(double v) { return exp(v); }
__device__ __forceinline__ float dev_log(float v) { return logf(v); }
__device__ __forceinline__ double dev_log(double v) { return log(v); }
__device__ __forceinline__ float dev_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double dev_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float dev_abs(float v) { return fabsf(v); }
__device__ __forceinline__ double dev_abs(double v) { return fabs(v); }
__device__ __forceinline__ float dev_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double dev_tanh(double v) { return tanh(v); }
__device__ __forceinline__ float dev_pow(float v, float e) { return powf(v, e); }
__device__ __forceinline__ double dev_pow(double v, double e) { return pow(v, e); }

// ---- the per-element functions ----------------------------------------------------------

template <class T> struct AddFn { __device__ T operator()(T x, T y) const { return x + y; } };
template <class T> struct SubFn { __device__ T operator()(T x, T y) const { return x - y; } };
template <class T> struct MulFn { __device__ T operator()(T x, T y) const { return x * y; } };
template <class T> struct DivFn { __device__ T operator()(T x, T y) const { return x / y; } };

template <class T> struct NegFn { __device__ T operator()(T v) const { return -v; } };
template <class T> struct ExpFn { __device__ T operator()(T v) const { return dev_exp(v); } };
template <class T> struct LogFn { __device__ T operator()(T v) const { return dev_log(v); } };
template <class T> struct SqrtFn { __device__ T operator()(T v) const { return dev_sqrt(v); } };
template <class T> struct AbsFn { __device__ T operator()(T v) const { return dev_abs(v); } };
template <class T> struct SignFn { __device__ T operator()(T v) const { return T((v > T(0)) - (v < T(0))); } };
template <class T> struct ReluFn { __device__ T operator()(T v) const { return v > T(0) ? v : T(0); } };
template <class T> struct SigmoidFn { __device__ T operator()(T v) const { return T(1) / (T(1) + dev_exp(-v)); } };
template <class T> struct TanhFn { __device__ T operator()(T v) const { return dev_tanh(v); } };

template <class T> struct SquareFn { __device__ T operator()(T v) const { return v * v; } };
template <class T> struct PowFn {
  T e;
  __device__ T operator()(T v) const { return dev_pow(v, e); }
};
// std::min(std::max(v, lo), hi) spelled out, so NaN propagates exactly as on the CPU.
template <class T> struct ClampFn {
  T lo, hi;
  __device__ T operator()(T v) const {
    const T m = v < lo ? lo : v;
    return hi < m ? hi : m;
  }
};
template <class T> struct AffineFn {
  T scale, shift;
  __device__ T operator()(T v) const { return v * scale + shift; }
};
template <class T> struct RangeMaskFn {
  T lo, hi;
  __device__ T operator()(T v) const { return (v >= lo && v <= hi) ? T(1) : T(0); }
};
template <class T> struct GreaterFn { __device__ uint8_t operator()(T x, T y) const { return x > y; } };
template <class T> struct ReluBackwardFn { __device__ T operator()(T g, T x) const { return x > T(0) ? g : T(0); } };
// y + alpha * x, with (x, y) as the two inputs and y as the output.
template <class T> struct AxpyFn {
  T alpha;
  __device__ T operator()(T x, T y) const { return y + alpha * x; }
};
template <class From, class To> struct ConvertFn {
  __device__ To operator()(From v) const { return static_cast<To>(v); }
};

// ---- flat maps ----------------------------------------------------------------------------

// V elements of T moved as one load or store (V * sizeof(T) <= 16 bytes).
template <class T, int V> struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

template <class... Ts> constexpr int vector_width() { return static_cast<int>(16 / std::max({sizeof(Ts)...})); }

inline bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Grid-stride over whole vectors, then the < V leftover elements.
template <int V, class In, class Out, class F>
__global__ void map1_kernel(int64_t n, F f, const In* x, Out* y) {
  const int64_t packs = n / V;
  const auto* xv = reinterpret_cast<const Vec<In, V>*>(x);
  auto* yv = reinterpret_cast<Vec<Out, V>*>(y);
  for (int64_t p : GridStride(packs)) {
    const Vec<In, V> a = xv[p];
    Vec<Out, V> r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = f(a.v[j]);
    yv[p] = r;
  }
  for (int64_t i : GridStride(n - packs * V)) {
    const int64_t k = packs * V + i;
    y[k] = f(x[k]);
  }
}

// y may be one of the inputs: each element is read and then written by the same thread.
template <int V, class In, class Out, class F>
__global__ void map2_kernel(int64_t n, F f, const In* x0, const In* x1, Out* y) {
  const int64_t packs = n / V;
  const auto* av = reinterpret_cast<const Vec<In, V>*>(x0);
  const auto* bv = reinterpret_cast<const Vec<In, V>*>(x1);
  auto* yv = reinterpret_cast<Vec<Out, V>*>(y);
  for (int64_t p : GridStride(packs)) {
    const Vec<In, V> a = av[p], b = bv[p];
    Vec<Out, V> r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = f(a.v[j], b.v[j]);
    yv[p] = r;
  }
  for (int64_t i : GridStride(n - packs * V)) {
    const int64_t k = packs * V + i;
    y[k] = f(x0[k], x1[k]);
  }
}

template <int V, class T>
__global__ void fill_kernel(int64_t n, T value, T* y) {
  const int64_t packs = n / V;
  auto* yv = reinterpret_cast<Vec<T, V>*>(y);
  Vec<T, V> r;
#pragma unroll
  for (int j = 0; j < V; ++j) r.v[j] = value;
  for (int64_t p : GridStride(packs)) yv[p] = r;
  for (int64_t i : GridStride(n - packs * V)) y[packs * V + i] = value;
}

// Blocks for n elements moved V at a time (at least one block for the tail).
inline unsigned blocks_for_packs(int64_t n, int v) { return blocks_for(std::max<int64_t>(n / v, 1)); }

void check_count(const char* op, int64_t n) { check(n >= 0, op, "negative element count ", n); }

template <class In, class Out, class F>
void map1(const char* op, const In* x, Out* y, int64_t n, F f, int device) {
  check_count(op, n);
  if (n == 0) return;
  check_device(device, op);
  check(x != nullptr && y != nullptr, op, "null pointer for ", n, " elements");
  constexpr int V = vector_width<In, Out>();
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (aligned(x, sizeof(In) * V) && aligned(y, sizeof(Out) * V)) {
    map1_kernel<V><<<blocks_for_packs(n, V), kThreads, 0, st>>>(n, f, x, y);
  } else {
    map1_kernel<1><<<blocks_for(n), kThreads, 0, st>>>(n, f, x, y);
  }
  check_launch(op);
}

template <class In, class Out, class F>
void map2(const char* op, const In* x0, const In* x1, Out* y, int64_t n, F f, int device) {
  check_count(op, n);
  if (n == 0) return;
  check_device(device, op);
  check(x0 != nullptr && x1 != nullptr && y != nullptr, op, "null pointer for ", n, " elements");
  constexpr int V = vector_width<In, Out>();
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (aligned(x0, sizeof(In) * V) && aligned(x1, sizeof(In) * V) && aligned(y, sizeof(Out) * V)) {
    map2_kernel<V><<<blocks_for_packs(n, V), kThreads, 0, st>>>(n, f, x0, x1, y);
  } else {
    map2_kernel<1><<<blocks_for(n), kThreads, 0, st>>>(n, f, x0, x1, y);
  }
  check_launch(op);
}

// ---- broadcasts -------------------------------------------------------------------------

// The broadcast iteration space of K inputs after coalescing: ndim dims of `shape`;
// input k is read at sum_d coord[d] * strides[k][d]. The output is contiguous.
template <int K, class Index>
struct Layout {
  int ndim;
  Index shape[kMaxDims];
  Index strides[K][kMaxDims];
};

// Host side: drops size-1 dims and merges dim d into the previous kept dim when every
// input continues contiguously across them (the contiguous output always does).
template <int K>
struct Coalesced {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t strides[K][kMaxDims];
  int64_t numel = 1;

  Coalesced(const char* op, int nd, const int64_t* out_shape, const int64_t* const* input_strides) {
    check(nd >= 0 && nd <= kMaxDims, op, "supports at most ", kMaxDims, " dims, got ", nd);
    for (int d = 0; d < nd; ++d) {
      check(out_shape[d] >= 0, op, "negative size ", out_shape[d], " in dim ", d);
      numel *= out_shape[d];
      if (out_shape[d] == 1) continue;
      bool merge = ndim > 0;
      for (int k = 0; k < K && merge; ++k) merge = strides[k][ndim - 1] == input_strides[k][d] * out_shape[d];
      if (merge) {
        shape[ndim - 1] *= out_shape[d];
        for (int k = 0; k < K; ++k) strides[k][ndim - 1] = input_strides[k][d];
      } else {
        shape[ndim] = out_shape[d];
        for (int k = 0; k < K; ++k) strides[k][ndim] = input_strides[k][d];
        ++ndim;
      }
    }
    if (ndim == 0) {  // a single element
      shape[0] = 1;
      for (int k = 0; k < K; ++k) strides[k][0] = 0;
      ndim = 1;
    }
  }
  // True when every output index and every input offset fits in 31 bits.
  bool fits_int32() const {
    constexpr int64_t limit = std::numeric_limits<int32_t>::max();
    if (numel > limit) return false;
    for (int k = 0; k < K; ++k) {
      int64_t last = 0;  // the largest offset input k is read at
      for (int d = 0; d < ndim; ++d) last += (shape[d] - 1) * strides[k][d];
      if (last > limit) return false;
    }
    return true;
  }
  // Same-shape contiguous inputs: the iteration is one flat dim read at stride 1.
  bool flat() const {
    if (ndim != 1) return false;
    for (int k = 0; k < K; ++k)
      if (strides[k][0] != 1) return false;
    return true;
  }
  template <class Index>
  Layout<K, Index> layout() const {
    Layout<K, Index> l{};
    l.ndim = ndim;
    for (int d = 0; d < ndim; ++d) {
      l.shape[d] = static_cast<Index>(shape[d]);
      for (int k = 0; k < K; ++k) l.strides[k][d] = static_cast<Index>(strides[k][d]);
    }
    return l;
  }
};

// For each output index i, computes every input's offset and calls apply(i, offsets).
template <int K, class Index, class Apply>
__global__ void broadcast_kernel(Index n, Layout<K, Index> layout, Apply apply) {
  for (int64_t i : GridStride(n)) {
    Index rem = static_cast<Index>(i);
    Index offset[K];
#pragma unroll
    for (int k = 0; k < K; ++k) offset[k] = 0;
#pragma unroll
    for (int d = kMaxDims - 1; d >= 1; --d) {
      if (d < layout.ndim) {
        const Index coord = rem % layout.shape[d];
        rem /= layout.shape[d];
#pragma unroll
        for (int k = 0; k < K; ++k) offset[k] += coord * layout.strides[k][d];
      }
    }
#pragma unroll
    for (int k = 0; k < K; ++k) offset[k] += rem * layout.strides[k][0];
    apply(static_cast<Index>(i), offset);
  }
}

template <class TA, class TB, class TO, class F>
struct Apply2 {
  const TA* a;
  const TB* b;
  TO* out;
  F f;
  template <class Index>
  __device__ void operator()(Index i, const Index* offset) const {
    out[i] = f(a[offset[0]], b[offset[1]]);
  }
};

template <class T>
struct ApplyWhere {
  const uint8_t* cond;
  const T* a;
  const T* b;
  T* out;
  template <class Index>
  __device__ void operator()(Index i, const Index* offset) const {
    out[i] = cond[offset[0]] ? a[offset[1]] : b[offset[2]];
  }
};

template <class T>
struct ApplyCopy {
  const T* a;
  T* out;
  template <class Index>
  __device__ void operator()(Index i, const Index* offset) const {
    out[i] = a[offset[0]];
  }
};

template <int K, class Apply>
void launch_broadcast(const char* op, const Coalesced<K>& it, Apply apply, int device) {
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (it.fits_int32()) {
    broadcast_kernel<K, uint32_t><<<blocks_for(it.numel), kThreads, 0, st>>>(
        static_cast<uint32_t>(it.numel), it.template layout<uint32_t>(), apply);
  } else {
    broadcast_kernel<K, int64_t><<<blocks_for(it.numel), kThreads, 0, st>>>(it.numel, it.template layout<int64_t>(),
                                                                            apply);
  }
  check_launch(op);
}

template <class T, class F>
void binary_map(const char* op, int ndim, const int64_t* shape, const T* a, const int64_t* as, const T* b,
                const int64_t* bs, T* out, F f, int device) {
  const int64_t* strides[2] = {as, bs};
  const Coalesced<2> it(op, ndim, shape, strides);
  if (it.numel == 0) return;
  if (it.flat()) return map2(op, a, b, out, it.numel, f, device);
  check_device(device, op);
  check(a != nullptr && b != nullptr && out != nullptr, op, "null pointer for ", it.numel, " elements");
  launch_broadcast(op, it, Apply2<T, T, T, F>{a, b, out, f}, device);
}

}  // namespace

// ---- the public kernels --------------------------------------------------------------------

template <class T>
void binary(BinaryOp op, int ndim, const int64_t* shape, const T* a, const int64_t* as, const T* b,
            const int64_t* bs, T* out, int device) {
  switch (op) {
    case BinaryOp::Add: return binary_map("cuda::binary add", ndim, shape, a, as, b, bs, out, AddFn<T>{}, device);
    case BinaryOp::Sub: return binary_map("cuda::binary sub", ndim, shape, a, as, b, bs, out, SubFn<T>{}, device);
    case BinaryOp::Mul: return binary_map("cuda::binary mul", ndim, shape, a, as, b, bs, out, MulFn<T>{}, device);
    case BinaryOp::Div: return binary_map("cuda::binary div", ndim, shape, a, as, b, bs, out, DivFn<T>{}, device);
  }
  fail("cuda::binary", "unknown op ", static_cast<int>(op));
}

template <class T>
void unary(UnaryOp op, const T* x, T* y, int64_t n, int device) {
  switch (op) {
    case UnaryOp::Neg: return map1("cuda::unary neg", x, y, n, NegFn<T>{}, device);
    case UnaryOp::Exp: return map1("cuda::unary exp", x, y, n, ExpFn<T>{}, device);
    case UnaryOp::Log: return map1("cuda::unary log", x, y, n, LogFn<T>{}, device);
    case UnaryOp::Sqrt: return map1("cuda::unary sqrt", x, y, n, SqrtFn<T>{}, device);
    case UnaryOp::Abs: return map1("cuda::unary abs", x, y, n, AbsFn<T>{}, device);
    case UnaryOp::Sign: return map1("cuda::unary sign", x, y, n, SignFn<T>{}, device);
    case UnaryOp::Relu: return map1("cuda::unary relu", x, y, n, ReluFn<T>{}, device);
    case UnaryOp::Sigmoid: return map1("cuda::unary sigmoid", x, y, n, SigmoidFn<T>{}, device);
    case UnaryOp::Tanh: return map1("cuda::unary tanh", x, y, n, TanhFn<T>{}, device);
  }
  fail("cuda::unary", "unknown op ", static_cast<int>(op));
}

template <class T>
void pow_scalar(const T* x, T e, T* y, int64_t n, int device) {
  // The CPU kernel squares exactly for e == 2 (pow's commonest use); so must the twin.
  if (e == T(2)) return map1("cuda::pow_scalar", x, y, n, SquareFn<T>{}, device);
  map1("cuda::pow_scalar", x, y, n, PowFn<T>{e}, device);
}

template <class T>
void clamp(const T* x, T lo, T hi, T* y, int64_t n, int device) {
  map1("cuda::clamp", x, y, n, ClampFn<T>{lo, hi}, device);
}

template <class T>
void affine_scalar(const T* x, T scale, T shift, T* y, int64_t n, int device) {
  map1("cuda::affine_scalar", x, y, n, AffineFn<T>{scale, shift}, device);
}

template <class T>
void fill(T* y, T value, int64_t n, int device) {
  const char* op = "cuda::fill";
  check_count(op, n);
  if (n == 0) return;
  check_device(device, op);
  check(y != nullptr, op, "null pointer for ", n, " elements");
  constexpr int V = vector_width<T>();
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (aligned(y, sizeof(T) * V)) {
    fill_kernel<V><<<blocks_for_packs(n, V), kThreads, 0, st>>>(n, value, y);
  } else {
    fill_kernel<1><<<blocks_for(n), kThreads, 0, st>>>(n, value, y);
  }
  check_launch(op);
}

template <class T>
void range_mask(const T* x, T lo, T hi, T* mask, int64_t n, int device) {
  map1("cuda::range_mask", x, mask, n, RangeMaskFn<T>{lo, hi}, device);
}

template <class T>
void relu_backward(const T* g, const T* x, T* out, int64_t n, int device) {
  map2("cuda::relu_backward", g, x, out, n, ReluBackwardFn<T>{}, device);
}

template <class T>
void axpy(T alpha, const T* x, T* y, int64_t n, int device) {
  map2("cuda::axpy", x, static_cast<const T*>(y), y, n, AxpyFn<T>{alpha}, device);
}

template <class T>
void greater(int ndim, const int64_t* shape, const T* a, const int64_t* as, const T* b, const int64_t* bs,
             uint8_t* out, int device) {
  const char* op = "cuda::greater";
  const int64_t* strides[2] = {as, bs};
  const Coalesced<2> it(op, ndim, shape, strides);
  if (it.numel == 0) return;
  check_device(device, op);
  check(a != nullptr && b != nullptr && out != nullptr, op, "null pointer for ", it.numel, " elements");
  launch_broadcast(op, it, Apply2<T, T, uint8_t, GreaterFn<T>>{a, b, out, GreaterFn<T>{}}, device);
}

template <class T>
void where(int ndim, const int64_t* shape, const uint8_t* c, const int64_t* cs, const T* a, const int64_t* as,
           const T* b, const int64_t* bs, T* out, int device) {
  const char* op = "cuda::where";
  const int64_t* strides[3] = {cs, as, bs};
  const Coalesced<3> it(op, ndim, shape, strides);
  if (it.numel == 0) return;
  check_device(device, op);
  check(c != nullptr && a != nullptr && b != nullptr && out != nullptr, op, "null pointer for ", it.numel,
        " elements");
  launch_broadcast(op, it, ApplyWhere<T>{c, a, b, out}, device);
}

template <class T>
void broadcast_to(int ndim, const int64_t* shape, const T* a, const int64_t* as, T* out, int device) {
  const char* op = "cuda::broadcast_to";
  const int64_t* strides[1] = {as};
  const Coalesced<1> it(op, ndim, shape, strides);
  if (it.numel == 0) return;
  if (it.flat()) return map1(op, a, out, it.numel, ConvertFn<T, T>{}, device);
  check_device(device, op);
  check(a != nullptr && out != nullptr, op, "null pointer for ", it.numel, " elements");
  launch_broadcast(op, it, ApplyCopy<T>{a, out}, device);
}

template <class From, class To>
void convert(const From* x, To* y, int64_t n, int device) {
  map1("cuda::convert", x, y, n, ConvertFn<From, To>{}, device);
}

// ---- instantiations ---------------------------------------------------------------------------

#define DMIX_INSTANTIATE(T)                                                                                  \
  template void binary<T>(BinaryOp, int, const int64_t*, const T*, const int64_t*, const T*, const int64_t*, T*, \
                          int);                                                                              \
  template void unary<T>(UnaryOp, const T*, T*, int64_t, int);                                               \
  template void pow_scalar<T>(const T*, T, T*, int64_t, int);                                                \
  template void clamp<T>(const T*, T, T, T*, int64_t, int);                                                  \
  template void affine_scalar<T>(const T*, T, T, T*, int64_t, int);                                          \
  template void axpy<T>(T, const T*, T*, int64_t, int);                                                      \
  template void range_mask<T>(const T*, T, T, T*, int64_t, int);                                             \
  template void relu_backward<T>(const T*, const T*, T*, int64_t, int);                                      \
  template void broadcast_to<T>(int, const int64_t*, const T*, const int64_t*, T*, int);                     \
  template void greater<T>(int, const int64_t*, const T*, const int64_t*, const T*, const int64_t*, uint8_t*, \
                           int);
DMIX_INSTANTIATE(float)
DMIX_INSTANTIATE(double)
#undef DMIX_INSTANTIATE

template void fill<float>(float*, float, int64_t, int);
template void fill<double>(double*, double, int64_t, int);
template void fill<int64_t>(int64_t*, int64_t, int64_t, int);
template void fill<uint8_t>(uint8_t*, uint8_t, int64_t, int);

#define DMIX_INSTANTIATE_WHERE(T)                                                                             \
  template void where<T>(int, const int64_t*, const uint8_t*, const int64_t*, const T*, const int64_t*, const T*, \
                         const int64_t*, T*, int);
DMIX_INSTANTIATE_WHERE(float)
DMIX_INSTANTIATE_WHERE(double)
DMIX_INSTANTIATE_WHERE(int64_t)
#undef DMIX_INSTANTIATE_WHERE

#define DMIX_CONVERT(A, B) template void convert<A, B>(const A*, B*, int64_t, int);
#define DMIX_CONVERT_FROM(A) DMIX_CONVERT(A, float) DMIX_CONVERT(A, double) DMIX_CONVERT(A, int64_t) DMIX_CONVERT(A, uint8_t)
DMIX_CONVERT_FROM(float)
DMIX_CONVERT_FROM(double)
DMIX_CONVERT_FROM(int64_t)
DMIX_CONVERT_FROM(uint8_t)
#undef DMIX_CONVERT_FROM
#undef DMIX_CONVERT

}  // namespace dmix::kernels::cuda
