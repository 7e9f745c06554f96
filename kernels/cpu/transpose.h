// Matrix transpose on the CPU: out (C x R) = in (R x C)^T, row-major. T = float, double.
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

template <class T> void transpose(const T* in, int64_t R, int64_t C, T* out);

}  // namespace dmix::kernels::cpu
