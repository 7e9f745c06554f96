// Elementwise kernels: unary maps, scalar maps and broadcasting binary/ternary maps.
//
// Broadcasting: each operand is read through per-dimension strides (0 on broadcast
// dims). Dims are first coalesced (adjacent dims that are contiguous for every operand
// merge into one), so the common same-shape case becomes one flat loop the compiler
// vectorises, and (N,C,H,W) op (1,C,1,1) becomes N*C rows of H*W with a scalar operand.
// Rows run in parallel under OpenMP; each output element is written once, so results do
// not depend on the thread count.
// Cost: one read per operand element and one write per output element; memory bound.
#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>

namespace dmix::kernels::cpu {
namespace {

// The broadcast iteration space after coalescing: `rows` outer positions, each an inner
// run of `inner` elements; operand k starts row r at offset(k, r) and steps inner_stride[k].
template <int K>
struct Iteration {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t strides[K][kMaxDims];

  Iteration(int nd, const int64_t* out_shape, const int64_t* const* operand_strides) {
    // Drop size-1 dims, then merge dim d into d+1 when every operand is contiguous across them.
    for (int d = 0; d < nd; ++d) {
      if (out_shape[d] == 1) continue;
      bool merge = ndim > 0;
      for (int k = 0; k < K && merge; ++k)
        merge = strides[k][ndim - 1] == operand_strides[k][d] * out_shape[d];
      if (merge) {
        shape[ndim - 1] *= out_shape[d];
        for (int k = 0; k < K; ++k) strides[k][ndim - 1] = operand_strides[k][d];
      } else {
        shape[ndim] = out_shape[d];
        for (int k = 0; k < K; ++k) strides[k][ndim] = operand_strides[k][d];
        ++ndim;
      }
    }
    if (ndim == 0) {  // a single element
      shape[0] = 1;
      for (int k = 0; k < K; ++k) strides[k][0] = 0;
      ndim = 1;
    }
  }
  int64_t inner() const { return shape[ndim - 1]; }
  int64_t rows() const {
    int64_t r = 1;
    for (int d = 0; d + 1 < ndim; ++d) r *= shape[d];
    return r;
  }
  int64_t offset(int k, int64_t row) const {
    int64_t off = 0;
    for (int d = ndim - 2; d >= 0; --d) {
      off += (row % shape[d]) * strides[k][d];
      row /= shape[d];
    }
    return off;
  }
};

void contiguous_strides(int ndim, const int64_t* shape, int64_t* out) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    out[d] = s;
    s *= shape[d];
  }
}

// Runs f(out_row, a_row, b_row, inner, sa, sb) over every row of a binary broadcast.
template <class TA, class TB, class TO, class F>
void for_each_row2(int ndim, const int64_t* out_shape, const TA* a, const int64_t* a_strides, const TB* b,
                   const int64_t* b_strides, TO* out, F f) {
  int64_t o_strides[kMaxDims];
  contiguous_strides(ndim, out_shape, o_strides);
  const int64_t* all[3] = {o_strides, a_strides, b_strides};
  Iteration<3> it(ndim, out_shape, all);
  const int64_t rows = it.rows(), inner = it.inner();
  const int64_t sa = it.strides[1][it.ndim - 1], sb = it.strides[2][it.ndim - 1];
#pragma omp parallel for schedule(static) if (rows * inner > 32768)
  for (int64_t r = 0; r < rows; ++r)
    f(out + it.offset(0, r), a + it.offset(1, r), b + it.offset(2, r), inner, sa, sb);
}

template <class T, class Op>
void binary_rows(int ndim, const int64_t* shape, const T* a, const int64_t* as, const T* b, const int64_t* bs,
                 T* out, Op op) {
  for_each_row2(ndim, shape, a, as, b, bs, out, [op](T* o, const T* x, const T* y, int64_t n, int64_t sx, int64_t sy) {
    if (sx == 1 && sy == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = op(x[i], y[i]);
    } else if (sx == 1 && sy == 0) {
      const T yv = y[0];
      for (int64_t i = 0; i < n; ++i) o[i] = op(x[i], yv);
    } else if (sx == 0 && sy == 1) {
      const T xv = x[0];
      for (int64_t i = 0; i < n; ++i) o[i] = op(xv, y[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i] = op(x[i * sx], y[i * sy]);
    }
  });
}

template <class T, class Op>
void map(const T* x, T* y, int64_t n, Op op) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] = op(x[i]);
}

}  // namespace

template <class T>
void binary(BinaryOp op, int ndim, const int64_t* shape, const T* a, const int64_t* as, const T* b,
            const int64_t* bs, T* out) {
  switch (op) {
    case BinaryOp::Add: return binary_rows(ndim, shape, a, as, b, bs, out, [](T x, T y) { return x + y; });
    case BinaryOp::Sub: return binary_rows(ndim, shape, a, as, b, bs, out, [](T x, T y) { return x - y; });
    case BinaryOp::Mul: return binary_rows(ndim, shape, a, as, b, bs, out, [](T x, T y) { return x * y; });
    case BinaryOp::Div: return binary_rows(ndim, shape, a, as, b, bs, out, [](T x, T y) { return x / y; });
  }
}

template <class T>
void unary(UnaryOp op, const T* x, T* y, int64_t n) {
  switch (op) {
    case UnaryOp::Neg: return map(x, y, n, [](T v) { return -v; });
    case UnaryOp::Exp: return map(x, y, n, [](T v) { return std::exp(v); });
    case UnaryOp::Log: return map(x, y, n, [](T v) { return std::log(v); });
    case UnaryOp::Sqrt: return map(x, y, n, [](T v) { return std::sqrt(v); });
    case UnaryOp::Abs: return map(x, y, n, [](T v) { return std::abs(v); });
    case UnaryOp::Sign: return map(x, y, n, [](T v) { return T((v > T(0)) - (v < T(0))); });
    case UnaryOp::Relu: return map(x, y, n, [](T v) { return v > T(0) ? v : T(0); });
    case UnaryOp::Sigmoid: return map(x, y, n, [](T v) { return T(1) / (T(1) + std::exp(-v)); });
    case UnaryOp::Tanh: return map(x, y, n, [](T v) { return std::tanh(v); });
  }
}

template <class T>
void pow_scalar(const T* x, T e, T* y, int64_t n) {
  if (e == T(2)) return map(x, y, n, [](T v) { return v * v; });
  map(x, y, n, [e](T v) { return std::pow(v, e); });
}

template <class T>
void clamp(const T* x, T lo, T hi, T* y, int64_t n) {
  map(x, y, n, [lo, hi](T v) { return std::min(std::max(v, lo), hi); });
}

template <class T>
void affine_scalar(const T* x, T scale, T shift, T* y, int64_t n) {
  map(x, y, n, [scale, shift](T v) { return v * scale + shift; });
}

template <class T>
void fill(T* y, T value, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

template <class T>
void range_mask(const T* x, T lo, T hi, T* mask, int64_t n) {
  map(x, mask, n, [lo, hi](T v) { return (v >= lo && v <= hi) ? T(1) : T(0); });
}

template <class T>
void relu_backward(const T* g, const T* x, T* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] > T(0) ? g[i] : T(0);
}

template <class T>
void axpy(T alpha, const T* x, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <class T>
void greater(int ndim, const int64_t* shape, const T* a, const int64_t* as, const T* b, const int64_t* bs,
             uint8_t* out) {
  for_each_row2(ndim, shape, a, as, b, bs, out,
                [](uint8_t* o, const T* x, const T* y, int64_t n, int64_t sx, int64_t sy) {
                  for (int64_t i = 0; i < n; ++i) o[i] = x[i * sx] > y[i * sy];
                });
}

template <class T>
void where(int ndim, const int64_t* shape, const uint8_t* c, const int64_t* cs, const T* a, const int64_t* as,
           const T* b, const int64_t* bs, T* out) {
  int64_t o_strides[kMaxDims];
  contiguous_strides(ndim, shape, o_strides);
  const int64_t* all[4] = {o_strides, cs, as, bs};
  Iteration<4> it(ndim, shape, all);
  const int64_t rows = it.rows(), inner = it.inner();
  const int64_t sc = it.strides[1][it.ndim - 1], sa = it.strides[2][it.ndim - 1], sb = it.strides[3][it.ndim - 1];
#pragma omp parallel for schedule(static) if (rows * inner > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    T* o = out + it.offset(0, r);
    const uint8_t* cr = c + it.offset(1, r);
    const T* ar = a + it.offset(2, r);
    const T* br = b + it.offset(3, r);
    for (int64_t i = 0; i < inner; ++i) o[i] = cr[i * sc] ? ar[i * sa] : br[i * sb];
  }
}

template <class T>
void broadcast_to(int ndim, const int64_t* shape, const T* a, const int64_t* as, T* out) {
  binary_rows(ndim, shape, a, as, a, as, out, [](T x, T) { return x; });
}

template <class From, class To>
void convert(const From* x, To* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<To>(x[i]);
}

// The macro arguments are types, which cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define DMIX_INSTANTIATE(T)                                                                                  \
  template void binary<T>(BinaryOp, int, const int64_t*, const T*, const int64_t*, const T*, const int64_t*, T*); \
  template void unary<T>(UnaryOp, const T*, T*, int64_t);                                                    \
  template void pow_scalar<T>(const T*, T, T*, int64_t);                                                     \
  template void clamp<T>(const T*, T, T, T*, int64_t);                                                       \
  template void affine_scalar<T>(const T*, T, T, T*, int64_t);                                               \
  template void axpy<T>(T, const T*, T*, int64_t);                                                           \
  template void range_mask<T>(const T*, T, T, T*, int64_t);                                                  \
  template void relu_backward<T>(const T*, const T*, T*, int64_t);                                           \
  template void broadcast_to<T>(int, const int64_t*, const T*, const int64_t*, T*);                          \
  template void greater<T>(int, const int64_t*, const T*, const int64_t*, const T*, const int64_t*, uint8_t*);   \
  template void where<T>(int, const int64_t*, const uint8_t*, const int64_t*, const T*, const int64_t*, const T*, \
                         const int64_t*, T*);
DMIX_INSTANTIATE(float)
DMIX_INSTANTIATE(double)
#undef DMIX_INSTANTIATE

template void fill<float>(float*, float, int64_t);
template void fill<double>(double*, double, int64_t);
template void fill<int64_t>(int64_t*, int64_t, int64_t);
template void fill<uint8_t>(uint8_t*, uint8_t, int64_t);
template void where<int64_t>(int, const int64_t*, const uint8_t*, const int64_t*, const int64_t*, const int64_t*,
                             const int64_t*, const int64_t*, int64_t*);

#define DMIX_CONVERT(A, B) template void convert<A, B>(const A*, B*, int64_t);
#define DMIX_CONVERT_FROM(A) DMIX_CONVERT(A, float) DMIX_CONVERT(A, double) DMIX_CONVERT(A, int64_t) DMIX_CONVERT(A, uint8_t)
DMIX_CONVERT_FROM(float)
DMIX_CONVERT_FROM(double)
DMIX_CONVERT_FROM(int64_t)
DMIX_CONVERT_FROM(uint8_t)
#undef DMIX_CONVERT_FROM
#undef DMIX_CONVERT
// NOLINTEND(bugprone-macro-parentheses)

}  // namespace dmix::kernels::cpu
