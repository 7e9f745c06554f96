// Shared by the GPU suites: whether a GPU is here, device buffers that free
// themselves, random fills, and a comparison that reports the largest errors.
//
// Every GPU test case is declared with `* doctest::skip(!has_gpu())`, so on a machine
// without a GPU it is reported as skipped — never as passed. (A build without CUDA does
// not build this suite.)
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cuda/runtime.h"

namespace dmix::gpu_test {

// doctest evaluates skip decorators during static initialisation; device_count()
// needs no other static object of dmix and never throws, so this is safe to call then.
inline bool has_gpu() {
  static const bool present = kernels::cuda::device_count() > 0;
  return present;
}

// `count` elements of T on `device`, released when the buffer goes out of scope.
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count, int device = 0)
      : data_(static_cast<T*>(kernels::cuda::allocate(count * sizeof(T), device))), count_(count), device_(device) {}
  ~DeviceBuffer() {
    try {
      kernels::cuda::release(data_, device_);
    } catch (...) {
      // A failing release is reported by the runtime tests; a destructor must not throw.
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return data_; }
  size_t count() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() == count_);
    kernels::cuda::copy_host_to_device(data_, host.data(), bytes(), device_);
  }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    kernels::cuda::copy_device_to_host(host.data(), data_, bytes(), device_);
    return host;
  }

 private:
  T* data_;
  size_t count_;
  int device_;
};

// Uniform in [lo, hi), reproducible for a seed.
inline std::vector<float> random_floats(size_t count, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(count);
  for (float& x : v) x = dist(gen);
  return v;
}

inline std::vector<unsigned char> random_bytes(size_t count, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<unsigned char> v(count);
  for (unsigned char& x : v) x = static_cast<unsigned char>(gen() >> 24);
  return v;
}

// How far a float result is from a double reference.
//   max_abs: largest |got - ref|;
//   max_rel: largest |got - ref| / |ref| over elements whose |ref| is at least 1e-3 of
//            the largest |ref| (elsewhere cancellation makes the ratio meaningless);
//   worst_fraction: largest |got - ref| / allowed — above 1 means out of tolerance;
//   failures: elements out of tolerance, NaN or infinite results included.
struct ErrorSummary {
  double max_abs = 0.0;
  double max_rel = 0.0;
  double worst_fraction = 0.0;
  int64_t worst_index = -1;
  int64_t failures = 0;
  std::string text() const {
    std::ostringstream os;
    os << "max abs err " << max_abs << ", max rel err " << max_rel << ", worst err / tolerance " << worst_fraction;
    if (failures > 0) os << ", " << failures << " element(s) out of tolerance (worst at index " << worst_index << ")";
    return os.str();
  }
};

inline ErrorSummary compare(const std::vector<float>& got, const std::vector<double>& ref,
                            const std::vector<double>& allowed) {
  REQUIRE(got.size() == ref.size());
  REQUIRE(allowed.size() == ref.size());
  double largest_ref = 0.0;
  for (double r : ref) largest_ref = std::max(largest_ref, std::abs(r));
  const double rel_floor = 1e-3 * largest_ref;
  ErrorSummary s;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(static_cast<double>(got[i]) - ref[i]);
    if (!std::isfinite(err)) {
      ++s.failures;
      if (s.worst_fraction != INFINITY) s.worst_index = static_cast<int64_t>(i);
      s.worst_fraction = s.max_abs = s.max_rel = INFINITY;
      continue;
    }
    if (err > allowed[i]) ++s.failures;
    s.max_abs = std::max(s.max_abs, err);
    if (std::abs(ref[i]) >= rel_floor && ref[i] != 0.0) s.max_rel = std::max(s.max_rel, err / std::abs(ref[i]));
    const double fraction = allowed[i] > 0.0 ? err / allowed[i] : (err > 0.0 ? INFINITY : 0.0);
    if (fraction > s.worst_fraction) {
      s.worst_fraction = fraction;
      s.worst_index = static_cast<int64_t>(i);
    }
  }
  return s;
}

}  // namespace dmix::gpu_test
