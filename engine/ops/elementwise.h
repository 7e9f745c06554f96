// Elementwise ops with NumPy broadcasting. Float dtypes (f32, f64); both operands must
// share dtype and device. Each op's backward is written with these same ops.
#pragma once
#include "engine/tensor.h"

namespace dmix {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& a, double s);
Tensor mul_scalar(const Tensor& a, double s);

Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor abs(const Tensor& a);
Tensor sign(const Tensor& a);        // -1, 0, 1; gradient zero
Tensor pow(const Tensor& a, double exponent);
Tensor clamp(const Tensor& a, double lo, double hi);  // gradient passes where lo <= a <= hi
Tensor relu(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor tanh(const Tensor& a);

// Masks: u8 tensors of 0/1, never differentiable.
Tensor greater(const Tensor& a, const Tensor& b);     // a > b, broadcast
Tensor greater_scalar(const Tensor& a, double s);     // a > s
Tensor less_scalar(const Tensor& a, double s);        // a < s
// cond ? a : b with broadcasting of all three; cond is a u8 mask.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& a, const Tensor& mask, double value);
// Mask (u8) to the float dtype of `like`, so masks can multiply gradients.
Tensor mask_to_float(const Tensor& mask, DType dtype);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double s) { return add_scalar(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add_scalar(a, -s); }
inline Tensor operator*(const Tensor& a, double s) { return mul_scalar(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return mul_scalar(a, 1.0 / s); }
inline Tensor operator*(double s, const Tensor& a) { return mul_scalar(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add_scalar(a, s); }
inline Tensor operator-(double s, const Tensor& a) { return add_scalar(neg(a), s); }

// The shape two operands broadcast to; throws naming `op` and both shapes if they don't.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

}  // namespace dmix
