// Elementwise kernels with broadcasting on a CUDA device: the twins of
// kernels/cpu/elementwise.h, with the same arguments plus the device the buffers live
// on. Every pointer is a device pointer on `device`; shapes and strides are host
// arrays (read before the call returns). The work is queued on the device's stream and
// the call returns before it is done.
//
// Instantiated for T = float and double (f64 keeps the engine's gradient checks
// possible on a GPU); fill for float, double, int64_t and uint8_t; where also for
// int64_t; convert for every pair among float, double, int64_t and uint8_t.
#pragma once
#include <cstdint>

#include "kernels/cpu/elementwise.h"

namespace dmix::kernels::cuda {

using cpu::BinaryOp;
using cpu::kMaxDims;
using cpu::UnaryOp;

template <class T>
void binary(BinaryOp op, int ndim, const int64_t* out_shape, const T* a, const int64_t* a_strides, const T* b,
            const int64_t* b_strides, T* out, int device);
template <class T> void unary(UnaryOp op, const T* x, T* y, int64_t n, int device);
template <class T> void pow_scalar(const T* x, T exponent, T* y, int64_t n, int device);
template <class T> void clamp(const T* x, T lo, T hi, T* y, int64_t n, int device);
template <class T> void affine_scalar(const T* x, T scale, T shift, T* y, int64_t n, int device);  // x == y allowed
template <class T> void fill(T* y, T value, int64_t n, int device);
template <class T> void range_mask(const T* x, T lo, T hi, T* mask, int64_t n, int device);
template <class T> void relu_backward(const T* g, const T* x, T* out, int64_t n, int device);
template <class T> void axpy(T alpha, const T* x, T* y, int64_t n, int device);
template <class T>
void greater(int ndim, const int64_t* out_shape, const T* a, const int64_t* a_strides, const T* b,
             const int64_t* b_strides, uint8_t* out, int device);
template <class T>
void where(int ndim, const int64_t* out_shape, const uint8_t* cond, const int64_t* c_strides, const T* a,
           const int64_t* a_strides, const T* b, const int64_t* b_strides, T* out, int device);
template <class T>
void broadcast_to(int ndim, const int64_t* out_shape, const T* a, const int64_t* a_strides, T* out, int device);
template <class From, class To> void convert(const From* x, To* y, int64_t n, int device);

}  // namespace dmix::kernels::cuda
