// Host-side comparison helpers of the op-level GPU suites: random fills, a tensor's
// values as doubles wherever it lives, and the error measures each suite reports.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/tensor.h"

namespace dmix::gpu_test {

// n values uniform in [lo, hi), reproducible for a seed.
inline std::vector<double> uniform(int64_t n, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = dist(gen);
  return v;
}

// The values of a float or i64 tensor on any device, copied to the host as doubles.
inline std::vector<double> host_values(const Tensor& t) {
  const Tensor d = t.detach().to(Device::cpu());
  if (d.dtype() == DType::i64) {
    const std::vector<int64_t> v = d.to_vector<int64_t>();
    return std::vector<double>(v.begin(), v.end());
  }
  return d.to(DType::f64).to_vector<double>();
}

inline double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

// Largest |a - b|; a NaN anywhere makes it NaN.
inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    if (!(d <= m)) m = d;  // NaN sticks
  }
  return m;
}

// Largest |a - b| / |b| over elements with |b| >= 1e-3 max|b| (tiny entries of b would
// turn rounding noise into huge relative errors).
inline double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  const double floor = 1e-3 * max_abs(b);
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::abs(b[i]) >= floor && b[i] != 0.0) {
      const double d = std::abs(a[i] - b[i]) / std::abs(b[i]);
      if (!(d <= m)) m = d;
    }
  return m;
}

// Equal element for element (NaN equals NaN).
inline bool same_values(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
  return true;
}

}  // namespace dmix::gpu_test
