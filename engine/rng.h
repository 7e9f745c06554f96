// Seeded counter-based randomness (Philox 4x32-10). A draw is a pure function of
// (seed, stream, element index): each call takes a fresh stream number from the
// Generator, and element i of the result reads its own counter, so results do not
// depend on thread count or device. Rejection samplers (Gamma) give element i its own
// range of counters.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace dmix {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }          // calls made so far; with seed() the full state
  void set_state(uint64_t seed, uint64_t stream) { seed_ = seed; stream_ = stream; }
  uint64_t next_stream() { return stream_++; }

  Tensor uniform(const Shape& shape, double lo = 0.0, double hi = 1.0, DType dtype = DType::f32,
                 Device device = Device::cpu());
  Tensor normal(const Shape& shape, double mean = 0.0, double std = 1.0, DType dtype = DType::f32,
                Device device = Device::cpu());
  Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::f32, Device device = Device::cpu());
  Tensor randperm(int64_t n, Device device = Device::cpu());  // i64
  Tensor randint(const Shape& shape, int64_t lo, int64_t hi, Device device = Device::cpu());  // i64 in [lo, hi)
  Tensor gamma(const Shape& shape, double alpha, DType dtype = DType::f32, Device device = Device::cpu());
  Tensor beta(const Shape& shape, double a, double b, DType dtype = DType::f32, Device device = Device::cpu());
  // n draws of Dirichlet(alpha): (n, K), rows sum to 1.
  Tensor dirichlet(int64_t n, const std::vector<double>& alpha, DType dtype = DType::f32,
                   Device device = Device::cpu());

  // Scalar draws for host-side decisions (one stream each).
  double uniform_scalar(double lo = 0.0, double hi = 1.0);
  double beta_scalar(double a, double b);

 private:
  uint64_t seed_ = 0;
  uint64_t stream_ = 0;
};

// The process-wide generator ops use when the caller passes none.
Generator& default_generator();

}  // namespace dmix
