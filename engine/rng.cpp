// Generator: argument checks, one fresh Philox stream per call, and dispatch by device
// to the kernels of kernels/cpu/random.h or their CUDA twins in kernels/cuda/random.h,
// which draw the same numbers from the same counters (kernels/cuda/random.h says how
// exactly, per distribution). The counter layout and how each distribution uses its
// words are documented in kernels/cpu/random.h. A call takes exactly one stream on any
// device, so a run that moves to a GPU keeps drawing the same sequence.
// randperm is the exception: Fisher-Yates is sequential, so a device permutation is
// drawn on the host and copied over (n 8-byte integers; permutations are batch- or
// dataset-sized, small next to the work that uses them).
#include "engine/rng.h"

#include <cmath>

#include "engine/error.h"
#include "kernels/cpu/random.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/random.h"

namespace dmix {
namespace {

namespace k = kernels::cpu;
namespace cu = kernels::cuda;

void require_float_dtype(const char* op, DType dtype) {
  check(dtype == DType::f32 || dtype == DType::f64, op, "expects dtype f32 or f64, got ", dtype_name(dtype));
}

void require_valid_shape(const char* op, const Shape& shape) {
  for (int64_t s : shape) check(s >= 0, op, "negative size in shape ", shape_str(shape));
}

template <class F>
void dispatch_float_dtype(DType dtype, F&& f) {
  if (dtype == DType::f32) {
    f(float{});
  } else {
    f(double{});
  }
}

}  // namespace

Tensor Generator::uniform(const Shape& shape, double lo, double hi, DType dtype, Device device) {
  const char* op = "Generator::uniform";
  require_valid_shape(op, shape);
  require_float_dtype(op, dtype);
  check(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, op, "needs finite lo <= hi, got [", lo, ", ", hi, ")");
  Tensor out = Tensor::empty(shape, dtype, device);
  const uint64_t stream = next_stream();
  dispatch_float_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    if constexpr (cu::kBuilt) {
      if (device.is_cuda()) {
        cu::uniform<T>(seed_, stream, lo, hi, out.data<T>(), out.numel(), device.index);
        return;
      }
    }
    k::uniform<T>(seed_, stream, lo, hi, out.data<T>(), out.numel());
  });
  return out;
}

Tensor Generator::normal(const Shape& shape, double mean, double std, DType dtype, Device device) {
  const char* op = "Generator::normal";
  require_valid_shape(op, shape);
  require_float_dtype(op, dtype);
  check(std::isfinite(mean) && std::isfinite(std) && std >= 0.0, op, "needs finite mean and std >= 0, got mean ",
        mean, ", std ", std);
  Tensor out = Tensor::empty(shape, dtype, device);
  const uint64_t stream = next_stream();
  dispatch_float_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    if constexpr (cu::kBuilt) {
      if (device.is_cuda()) {
        cu::normal<T>(seed_, stream, mean, std, out.data<T>(), out.numel(), device.index);
        return;
      }
    }
    k::normal<T>(seed_, stream, mean, std, out.data<T>(), out.numel());
  });
  return out;
}

namespace {

template <class T>
void bernoulli_on(Device device, uint64_t seed, uint64_t stream, double p, const Tensor& out) {
  if constexpr (cu::kBuilt) {
    if (device.is_cuda()) {
      cu::bernoulli<T>(seed, stream, p, out.data<T>(), out.numel(), device.index);
      return;
    }
  }
  k::bernoulli<T>(seed, stream, p, out.data<T>(), out.numel());
}

}  // namespace

Tensor Generator::bernoulli(const Shape& shape, double p, DType dtype, Device device) {
  const char* op = "Generator::bernoulli";
  require_valid_shape(op, shape);
  check(p >= 0.0 && p <= 1.0, op, "p must be in [0, 1], got ", p);
  check(dtype == DType::f32 || dtype == DType::f64 || dtype == DType::i64 || dtype == DType::u8, op,
        "expects dtype f32, f64, i64 or u8, got ", dtype_name(dtype));
  Tensor out = Tensor::empty(shape, dtype, device);
  const uint64_t stream = next_stream();
  switch (dtype) {
    case DType::f32: bernoulli_on<float>(device, seed_, stream, p, out); break;
    case DType::f64: bernoulli_on<double>(device, seed_, stream, p, out); break;
    case DType::i64: bernoulli_on<int64_t>(device, seed_, stream, p, out); break;
    default: bernoulli_on<uint8_t>(device, seed_, stream, p, out); break;
  }
  return out;
}

Tensor Generator::randperm(int64_t n, Device device) {
  const char* op = "Generator::randperm";
  check(n >= 0, op, "n must be >= 0, got ", n);
  // Fail before taking a stream, as the other draws do when the device is missing.
  check(device.is_cpu() || device.index < cuda_device_count(), op, "asked for ", device.str(), " but ",
        cuda_device_count() == 0 ? "no GPU is available to this build" : "no such GPU is present");
  Tensor out = Tensor::empty({n}, DType::i64);
  k::randperm(seed_, next_stream(), out.data<int64_t>(), n);
  return out.to(device);
}

Tensor Generator::randint(const Shape& shape, int64_t lo, int64_t hi, Device device) {
  const char* op = "Generator::randint";
  require_valid_shape(op, shape);
  check(lo < hi, op, "needs lo < hi, got [", lo, ", ", hi, ")");
  Tensor out = Tensor::empty(shape, DType::i64, device);
  const uint64_t stream = next_stream();
  if constexpr (cu::kBuilt) {
    if (device.is_cuda()) {
      cu::randint(seed_, stream, lo, hi, out.data<int64_t>(), out.numel(), device.index);
      return out;
    }
  }
  k::randint(seed_, stream, lo, hi, out.data<int64_t>(), out.numel());
  return out;
}

Tensor Generator::gamma(const Shape& shape, double alpha, DType dtype, Device device) {
  const char* op = "Generator::gamma";
  require_valid_shape(op, shape);
  require_float_dtype(op, dtype);
  check(std::isfinite(alpha) && alpha > 0.0, op, "alpha must be finite and > 0, got ", alpha);
  Tensor out = Tensor::empty(shape, dtype, device);
  const uint64_t stream = next_stream();
  dispatch_float_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    if constexpr (cu::kBuilt) {
      if (device.is_cuda()) {
        cu::gamma<T>(seed_, stream, alpha, out.data<T>(), out.numel(), device.index);
        return;
      }
    }
    k::gamma<T>(seed_, stream, alpha, out.data<T>(), out.numel());
  });
  return out;
}

Tensor Generator::beta(const Shape& shape, double a, double b, DType dtype, Device device) {
  const char* op = "Generator::beta";
  require_valid_shape(op, shape);
  require_float_dtype(op, dtype);
  check(std::isfinite(a) && std::isfinite(b) && a > 0.0 && b > 0.0, op, "a and b must be finite and > 0, got a ", a,
        ", b ", b);
  Tensor out = Tensor::empty(shape, dtype, device);
  const uint64_t stream = next_stream();
  dispatch_float_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    if constexpr (cu::kBuilt) {
      if (device.is_cuda()) {
        cu::beta<T>(seed_, stream, a, b, out.data<T>(), out.numel(), device.index);
        return;
      }
    }
    k::beta<T>(seed_, stream, a, b, out.data<T>(), out.numel());
  });
  return out;
}

Tensor Generator::dirichlet(int64_t n, const std::vector<double>& alpha, DType dtype, Device device) {
  const char* op = "Generator::dirichlet";
  check(n >= 0, op, "n must be >= 0, got ", n);
  check(!alpha.empty(), op, "needs at least one concentration");
  for (double a : alpha) check(std::isfinite(a) && a > 0.0, op, "every alpha must be finite and > 0, got ", a);
  require_float_dtype(op, dtype);
  const int64_t k_count = static_cast<int64_t>(alpha.size());
  Tensor out = Tensor::empty({n, k_count}, dtype, device);
  const uint64_t stream = next_stream();
  dispatch_float_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    if constexpr (cu::kBuilt) {
      if (device.is_cuda()) {
        cu::dirichlet<T>(seed_, stream, alpha.data(), k_count, out.data<T>(), n, device.index);
        return;
      }
    }
    k::dirichlet<T>(seed_, stream, alpha.data(), k_count, out.data<T>(), n);
  });
  return out;
}

double Generator::uniform_scalar(double lo, double hi) {
  const char* op = "Generator::uniform_scalar";
  check(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, op, "needs finite lo <= hi, got [", lo, ", ", hi, ")");
  double value = 0.0;
  k::uniform<double>(seed_, next_stream(), lo, hi, &value, 1);
  return value;
}

double Generator::beta_scalar(double a, double b) {
  const char* op = "Generator::beta_scalar";
  check(std::isfinite(a) && std::isfinite(b) && a > 0.0 && b > 0.0, op, "a and b must be finite and > 0, got a ", a,
        ", b ", b);
  double value = 0.0;
  k::beta<double>(seed_, next_stream(), a, b, &value, 1);
  return value;
}

Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

}  // namespace dmix
