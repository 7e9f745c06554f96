// Tensors and a host program's own memory: wrap a buffer without copying, copy a buffer
// into a tensor on any device, and copy a tensor's values back out. T decides the dtype:
// float (f32), double (f64), int64_t (i64, labels) or uint8_t (u8, raw pixels).
// Tensors are contiguous, row-major: an image batch is (N, C, H, W), element
// (n, c, h, w) at ((n * C + c) * H + h) * W + w.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "engine/error.h"
#include "engine/tensor.h"

namespace dmix {

// A CPU tensor over `data` (no copy): the tensor reads and writes the caller's memory,
// which must stay alive, and hold shape's element count, as long as the tensor is used.
template <class T>
Tensor tensor_view(T* data, const Shape& shape) {
  return Tensor::from_blob(data, shape, dtype_of<T>());
}

// A new tensor on `device` holding a copy of the shape's element count of values at `data`.
template <class T>
Tensor tensor_copy(const T* data, const Shape& shape, Device device = Device::cpu()) {
  Tensor host = Tensor::empty(shape, dtype_of<T>());
  if (host.nbytes() > 0) std::memcpy(host.raw_data(), data, host.nbytes());
  return device.is_cpu() ? host : host.to(device);
}

// Copies the values of t (any device) into `out`, which holds `count` elements; count
// must equal t.numel() and T must match t's dtype.
template <class T>
void copy_out(const Tensor& t, T* out, size_t count) {
  check(t.defined(), "copy_out", "the tensor is undefined");
  check(t.dtype() == dtype_of<T>(), "copy_out", "tensor ", t.str(), " copied into a buffer of ", dtype_of<T>());
  check(static_cast<int64_t>(count) == t.numel(), "copy_out", "tensor ", t.str(), " has ", t.numel(),
        " elements, the buffer ", count);
  const Tensor host = t.detach().to(Device::cpu());
  if (host.nbytes() > 0) std::memcpy(out, host.raw_data(), host.nbytes());
}

}  // namespace dmix
