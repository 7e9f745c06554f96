// Elementwise kernels with broadcasting, on contiguous row-major buffers.
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

enum class BinaryOp { Add, Sub, Mul, Div };
enum class UnaryOp { Neg, Exp, Log, Sqrt, Abs, Sign, Relu, Sigmoid, Tanh };

// Broadcasting operands are described by strides per output dim: an operand's stride in
// elements, 0 where it has size 1 and is broadcast. ndim <= kMaxDims.
constexpr int kMaxDims = 8;

// out[i] = a[i] op b[i] over `out_shape` (ndim dims); a_strides/b_strides per output dim.
template <class T>
void binary(BinaryOp op, int ndim, const int64_t* out_shape, const T* a, const int64_t* a_strides, const T* b,
            const int64_t* b_strides, T* out);
template <class T> void unary(UnaryOp op, const T* x, T* y, int64_t n);
template <class T> void pow_scalar(const T* x, T exponent, T* y, int64_t n);
template <class T> void clamp(const T* x, T lo, T hi, T* y, int64_t n);
template <class T> void affine_scalar(const T* x, T scale, T shift, T* y, int64_t n);  // y = x*scale + shift
template <class T> void fill(T* y, T value, int64_t n);
template <class T> void range_mask(const T* x, T lo, T hi, T* mask, int64_t n);   // 1 where lo <= x <= hi, else 0
template <class T> void relu_backward(const T* g, const T* x, T* out, int64_t n);  // g where x > 0, else 0
template <class T> void axpy(T alpha, const T* x, T* y, int64_t n);  // y += alpha * x
// out = a > b (broadcast), as 0/1 bytes.
template <class T>
void greater(int ndim, const int64_t* out_shape, const T* a, const int64_t* a_strides, const T* b,
             const int64_t* b_strides, uint8_t* out);
// out = cond ? a : b, all three broadcast.
template <class T>
void where(int ndim, const int64_t* out_shape, const uint8_t* cond, const int64_t* c_strides, const T* a,
           const int64_t* a_strides, const T* b, const int64_t* b_strides, T* out);
// out = a broadcast to out_shape (a read through a_strides).
template <class T>
void broadcast_to(int ndim, const int64_t* out_shape, const T* a, const int64_t* a_strides, T* out);
// Type conversion of n elements (any pair among float, double, int64_t, uint8_t).
template <class From, class To> void convert(const From* x, To* y, int64_t n);

}  // namespace dmix::kernels::cpu
