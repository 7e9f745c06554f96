// Philox on a GPU against the CPU: the raw words, and every Generator distribution
// drawn on cuda:0 against the same draw on the CPU (same seed, same stream).
//
// What must match, and how closely (kernels/cuda/random.h):
//   - raw words, bernoulli, randint, randperm: identical;
//   - uniform: identical (the device kernel rounds exactly as the CPU kernel compiles
//     on an FMA machine; see kernels/cuda/random.cu);
//   - normal, gamma, beta, dirichlet: the same arithmetic, but log / exp / sin / cos
//     come from the CUDA math library (1-2 ulp) instead of glibc. Allowed: f64 within
//     kUlpsF64 units of DBL_EPSILON relative to the value's scale (amplified by the
//     log-space sampler: gamma's log_boost = log(u) / alpha is large for small alpha,
//     so gamma, beta and dirichlet get a relative 1e-12); f32 within one float ulp
//     (the f64 difference almost always vanishes when rounding to float).
// Every case reports its largest differences and how many elements are bit-identical.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "kernels/cuda/random.h"
#include "kernels/philox.h"
#include "tests/gpu/gpu_test_util.h"

using namespace dmix;
using dmix::gpu_test::DeviceBuffer;
using dmix::gpu_test::has_gpu;

namespace {

const Device kGpu = Device::cuda(0);
constexpr double kUlpsF64 = 16.0;

struct Difference {
  int64_t n = 0, identical = 0, failures = 0;
  double max_abs = 0.0, max_rel = 0.0;
  std::string text() const {
    std::ostringstream os;
    os << n << " elements, " << identical << " bit-identical, max abs diff " << max_abs << ", max rel diff " << max_rel;
    if (failures > 0) os << ", " << failures << " out of tolerance";
    return os.str();
  }
};

// The unsigned integer as wide as a sample of each dtype compared here (u8, f32, f64 and i64).
template <size_t Bytes>
struct BitsOfSize;
template <>
struct BitsOfSize<1> {
  using type = uint8_t;
};
template <>
struct BitsOfSize<4> {
  using type = uint32_t;
};
template <>
struct BitsOfSize<8> {
  using type = uint64_t;
};

// Bit patterns, not values: 0 and -0 differ, and a NaN matches the same NaN.
template <class T>
bool same_bits(T a, T b) {
  typename BitsOfSize<sizeof(T)>::type a_bits = 0, b_bits = 0;
  std::memcpy(&a_bits, &a, sizeof(T));
  std::memcpy(&b_bits, &b, sizeof(T));
  return a_bits == b_bits;
}

// Elementwise comparison of two host copies; allowed(ref) is the tolerance per element.
template <class T>
Difference differ(const std::vector<T>& cpu, const std::vector<T>& gpu, const std::function<double(double)>& allowed) {
  REQUIRE(cpu.size() == gpu.size());
  Difference d;
  d.n = static_cast<int64_t>(cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (same_bits(cpu[i], gpu[i])) {
      ++d.identical;
      continue;
    }
    const double ref = static_cast<double>(cpu[i]), got = static_cast<double>(gpu[i]);
    const double err = std::abs(ref - got);
    if (!(err <= allowed(ref))) ++d.failures;  // NaN fails too
    d.max_abs = std::max(d.max_abs, err);
    if (ref != 0.0) d.max_rel = std::max(d.max_rel, err / std::abs(ref));
  }
  return d;
}

// Draws with a fresh Generator(seed) on the CPU and on the GPU and compares them.
// `skip` calls run first on both (they move the stream counter the same way).
template <class T>
Difference draw_and_compare(const std::string& what, uint64_t seed, const std::function<Tensor(Generator&, Device)>& draw,
                            const std::function<double(double)>& allowed, int skip = 0) {
  Generator on_cpu(seed), on_gpu(seed);
  for (int i = 0; i < skip; ++i) {
    on_cpu.next_stream();
    on_gpu.next_stream();
  }
  const Tensor a = draw(on_cpu, Device::cpu());
  const Tensor b = draw(on_gpu, kGpu);
  REQUIRE(b.is_cuda());
  REQUIRE(a.shape() == b.shape());
  REQUIRE(a.dtype() == b.dtype());
  CHECK(on_cpu.stream() == on_gpu.stream());
  const Difference d = differ<T>(a.to_vector<T>(), b.to_vector<T>(), allowed);
  MESSAGE(what << ": " << d.text());
  return d;
}

double exact(double) { return 0.0; }

const std::vector<Shape> kShapes = {{1}, {3}, {4}, {5}, {7, 13}, {1001}, {3, 5, 67}};

}  // namespace

TEST_CASE("cuda random: raw Philox words equal the CPU's for any seed, stream and offset" * doctest::skip(!has_gpu())) {
  struct Case {
    uint64_t seed, stream, first_block;
    int64_t blocks;
  };
  const Case cases[] = {{0, 0, 0, 1},
                        {1, 2, 3, 1000},
                        {0xDEADBEEFCAFEF00Dull, 0x123456789ull, 0xFFFFFFF0ull, 777},  // block counter crosses 2^32
                        {42, 0xFFFFFFFFFFFFFFFFull, 1ull << 40, 100003}};
  for (const Case& c : cases) {
    DeviceBuffer<uint32_t> words(static_cast<size_t>(4 * c.blocks));
    kernels::cuda::philox_blocks(c.seed, c.stream, c.first_block, c.blocks, words.get(), 0);
    const std::vector<uint32_t> got = words.download();
    int64_t mismatches = 0;
    for (int64_t b = 0; b < c.blocks; ++b) {
      const kernels::PhiloxWords r = kernels::philox_block(c.seed, c.stream, c.first_block + static_cast<uint64_t>(b));
      for (int w = 0; w < 4; ++w) mismatches += got[static_cast<size_t>(4 * b + w)] != r.w[w];
    }
    MESSAGE("philox seed " << c.seed << " stream " << c.stream << " first block " << c.first_block << ": "
                           << mismatches << " of " << 4 * c.blocks << " words differ");
    CHECK(mismatches == 0);
  }
}

TEST_CASE("cuda random: uniform is bit-identical to the CPU, f32 and f64, any range" * doctest::skip(!has_gpu())) {
  struct Range {
    double lo, hi;
  };
  // The last range is so narrow that lo + (hi - lo) u rounds up to hi: the clamp below hi is exercised.
  const Range ranges[] = {{0.0, 1.0}, {-1.7, 2.9}, {3.0, 3.0 + 1e-7}, {-5.0, -5.0}};
  uint64_t seed = 10;
  for (const Shape& shape : kShapes) {
    for (const Range& r : ranges) {
      for (DType dtype : {DType::f32, DType::f64}) {
        const std::string what = std::string("uniform ") + dtype_name(dtype) + shape_str(shape) + " [" +
                                 std::to_string(r.lo) + ", " + std::to_string(r.hi) + ")";
        auto draw = [&](Generator& g, Device d) { return g.uniform(shape, r.lo, r.hi, dtype, d); };
        const Difference diff = dtype == DType::f32 ? draw_and_compare<float>(what, seed, draw, exact, 1)
                                                    : draw_and_compare<double>(what, seed, draw, exact, 1);
        CHECK(diff.identical == diff.n);
        ++seed;
      }
    }
  }
}

TEST_CASE("cuda random: bernoulli and randint are identical to the CPU" * doctest::skip(!has_gpu())) {
  uint64_t seed = 100;
  for (const Shape& shape : kShapes) {
    for (double p : {0.0, 0.3, 0.5, 1.0}) {
      const std::string suffix = shape_str(shape) + " p=" + std::to_string(p);
      auto draw = [&](DType dtype) {
        return [&, dtype](Generator& g, Device d) { return g.bernoulli(shape, p, dtype, d); };
      };
      CHECK(draw_and_compare<float>("bernoulli f32" + suffix, seed, draw(DType::f32), exact).failures == 0);
      CHECK(draw_and_compare<double>("bernoulli f64" + suffix, seed, draw(DType::f64), exact).failures == 0);
      CHECK(draw_and_compare<int64_t>("bernoulli i64" + suffix, seed, draw(DType::i64), exact).failures == 0);
      CHECK(draw_and_compare<uint8_t>("bernoulli u8" + suffix, seed, draw(DType::u8), exact).failures == 0);
      ++seed;
    }
    struct Bounds {
      int64_t lo, hi;
    };
    for (const Bounds& b : {Bounds{0, 10}, Bounds{-7, 1000000007}, Bounds{INT64_MIN, INT64_MAX}}) {
      auto draw = [&](Generator& g, Device d) { return g.randint(shape, b.lo, b.hi, d); };
      const Difference diff = draw_and_compare<int64_t>(
          "randint" + shape_str(shape) + " [" + std::to_string(b.lo) + ", " + std::to_string(b.hi) + ")", seed++, draw,
          exact);
      CHECK(diff.identical == diff.n);
    }
  }
}

TEST_CASE("cuda random: a draw larger than one grid pass (grid-stride loop) matches the CPU" *
          doctest::skip(!has_gpu())) {
  // 65535 blocks x 256 threads x 4 elements per thread is one pass; go past it.
  const Shape shape = {int64_t(65535) * 256 * 4 + 4099};
  auto bernoulli = [&](Generator& g, Device d) { return g.bernoulli(shape, 0.5, DType::u8, d); };
  const Difference a = draw_and_compare<uint8_t>("bernoulli u8, 67M elements", 5, bernoulli, exact);
  CHECK(a.identical == a.n);
  const Shape half = {int64_t(65535) * 256 * 2 + 3};  // f64 uniform: 2 elements per thread
  auto uniform = [&](Generator& g, Device d) { return g.uniform(half, -1.0, 1.0, DType::f64, d); };
  const Difference b = draw_and_compare<double>("uniform f64, 34M elements", 6, uniform, exact);
  CHECK(b.identical == b.n);
}

TEST_CASE("cuda random: randperm on a device is the CPU's permutation" * doctest::skip(!has_gpu())) {
  for (int64_t n : {0, 1, 2, 17, 1000}) {
    Generator on_cpu(77), on_gpu(77);
    const Tensor a = on_cpu.randperm(n);
    const Tensor b = on_gpu.randperm(n, kGpu);
    CHECK(b.is_cuda());
    CHECK(a.to_vector<int64_t>() == b.to_vector<int64_t>());
    CHECK(on_cpu.stream() == on_gpu.stream());
  }
}

TEST_CASE("cuda random: normal matches the CPU to within the device math library's ulps" *
          doctest::skip(!has_gpu())) {
  struct Params {
    double mean, std;
  };
  uint64_t seed = 300;
  for (const Shape& shape : kShapes) {
    for (const Params& p : {Params{0.0, 1.0}, Params{0.3, 1.7}, Params{-100.0, 0.01}}) {
      // The error of z is relative to |z|; mean + std z then carries it as an absolute error.
      auto allowed = [&](double eps, double ulps) {
        return [=](double ref) {
          const double z = std::abs((ref - p.mean) / p.std);
          return ulps * eps * (std::abs(p.mean) + p.std * (z + 1.0));
        };
      };
      const std::string suffix = shape_str(shape) + " mean " + std::to_string(p.mean) + " std " + std::to_string(p.std);
      auto draw = [&](DType dtype) {
        return [&, dtype](Generator& g, Device d) { return g.normal(shape, p.mean, p.std, dtype, d); };
      };
      CHECK(draw_and_compare<float>("normal f32" + suffix, seed, draw(DType::f32), allowed(FLT_EPSILON, 1.0)).failures ==
            0);
      CHECK(draw_and_compare<double>("normal f64" + suffix, seed, draw(DType::f64), allowed(DBL_EPSILON, kUlpsF64))
                .failures == 0);
      ++seed;
    }
  }
}

TEST_CASE("cuda random: gamma, beta and dirichlet match the CPU" * doctest::skip(!has_gpu())) {
  auto relative = [](double rel, double floor) { return [=](double ref) { return rel * std::abs(ref) + floor; }; };
  const auto f32_tol = relative(FLT_EPSILON, FLT_MIN);
  const auto f64_tol = relative(1e-12, DBL_MIN);
  uint64_t seed = 500;
  for (const Shape& shape : {Shape{1}, Shape{5}, Shape{4099}}) {
    for (double alpha : {0.05, 0.5, 1.0, 2.5, 40.0}) {
      const std::string suffix = shape_str(shape) + " alpha " + std::to_string(alpha);
      auto draw = [&](DType dtype) {
        return [&, dtype](Generator& g, Device d) { return g.gamma(shape, alpha, dtype, d); };
      };
      CHECK(draw_and_compare<float>("gamma f32" + suffix, seed, draw(DType::f32), f32_tol).failures == 0);
      CHECK(draw_and_compare<double>("gamma f64" + suffix, seed, draw(DType::f64), f64_tol).failures == 0);
      ++seed;
    }
    for (double a : {0.2, 1.0, 3.0}) {
      const double b = 1.5;
      const std::string suffix = shape_str(shape) + " a " + std::to_string(a) + " b " + std::to_string(b);
      auto draw = [&](DType dtype) {
        return [&, dtype](Generator& g, Device d) { return g.beta(shape, a, b, dtype, d); };
      };
      CHECK(draw_and_compare<float>("beta f32" + suffix, seed, draw(DType::f32), f32_tol).failures == 0);
      CHECK(draw_and_compare<double>("beta f64" + suffix, seed, draw(DType::f64), f64_tol).failures == 0);
      ++seed;
    }
  }
  for (int64_t rows : {1, 3, 1000}) {
    for (const std::vector<double>& alpha : {std::vector<double>{1.0}, std::vector<double>{0.2, 0.2},
                                             std::vector<double>{0.5, 1.0, 2.0, 4.0, 0.1}}) {
      const std::string suffix = " rows " + std::to_string(rows) + " k " + std::to_string(alpha.size());
      auto draw = [&](DType dtype) {
        return [&, dtype](Generator& g, Device d) { return g.dirichlet(rows, alpha, dtype, d); };
      };
      CHECK(draw_and_compare<float>("dirichlet f32" + suffix, seed, draw(DType::f32), f32_tol).failures == 0);
      CHECK(draw_and_compare<double>("dirichlet f64" + suffix, seed, draw(DType::f64), f64_tol).failures == 0);
      ++seed;
    }
  }
}

TEST_CASE("cuda random: a mixed sequence of draws stays in step with the CPU" * doctest::skip(!has_gpu())) {
  Generator on_cpu(2024), on_gpu(2024);
  (void)on_cpu.uniform({10});
  (void)on_gpu.uniform({10}, 0.0, 1.0, DType::f32, kGpu);
  (void)on_cpu.randperm(9);
  (void)on_gpu.randperm(9, kGpu);
  (void)on_cpu.uniform_scalar();
  (void)on_gpu.uniform_scalar();
  (void)on_cpu.bernoulli({3}, 0.5, DType::u8);
  (void)on_gpu.bernoulli({3}, 0.5, DType::u8, kGpu);
  const Tensor a = on_cpu.randint({257}, 0, 1000);
  const Tensor b = on_gpu.randint({257}, 0, 1000, kGpu);
  CHECK(a.to_vector<int64_t>() == b.to_vector<int64_t>());
  CHECK(on_cpu.stream() == on_gpu.stream());
}

TEST_CASE("cuda random: bad arguments throw before anything is drawn" * doctest::skip(!has_gpu())) {
  Generator g(3);
  const uint64_t before = g.stream();
  CHECK_THROWS_AS(g.uniform({3}, 2.0, 1.0, DType::f32, kGpu), Error);
  CHECK_THROWS_AS(g.gamma({3}, -1.0, DType::f32, kGpu), Error);
  CHECK_THROWS_AS(g.bernoulli({3}, 0.5, DType::f16, kGpu), Error);
  CHECK_THROWS_AS(g.normal({3}, 0.0, 1.0, DType::f32, Device::cuda(cuda_device_count())), Error);
  CHECK(g.stream() == before);
}
