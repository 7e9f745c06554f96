// Matrix transpose on a CUDA device: the twin of kernels/cpu/transpose.h, plus the
// device. out (C x R) = in (R x C)^T, row-major, device pointers; queued on the
// device's stream. T = float, double.
#pragma once
#include <cstdint>

namespace dmix::kernels::cuda {

template <class T> void transpose(const T* in, int64_t R, int64_t C, T* out, int device);

}  // namespace dmix::kernels::cuda
