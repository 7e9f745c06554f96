// Generator: reproducibility, independence from the thread count, and each
// distribution's moments against theory. Tolerances are 6 standard errors of the
// statistic (fixed seeds, so a pass is deterministic; a wrong formula moves a moment by
// far more than 6 standard errors at these sample sizes).
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/rng.h"

using namespace dmix;

namespace {

struct Moments {
  double mean = 0, var = 0, m4 = 0;  // var unbiased; m4 the central fourth moment
  int64_t n = 0;
};

Moments moments(const std::vector<double>& v) {
  Moments m;
  m.n = static_cast<int64_t>(v.size());
  for (double x : v) m.mean += x;
  m.mean /= m.n;
  for (double x : v) {
    const double d = (x - m.mean) * (x - m.mean);
    m.var += d;
    m.m4 += d * d;
  }
  m.var /= (m.n - 1);
  m.m4 /= m.n;
  return m;
}

std::vector<double> as_doubles(const Tensor& t) {
  if (t.dtype() == DType::f64) return t.to_vector<double>();
  const std::vector<float> f = t.to_vector<float>();
  return std::vector<double>(f.begin(), f.end());
}

// Sample mean within 6 standard errors sqrt(var / n) of the true mean.
void check_mean(const Moments& m, double true_mean, double true_var) {
  const double tol = 6.0 * std::sqrt(true_var / m.n);
  INFO("sample mean " << m.mean << ", true " << true_mean << ", tolerance " << tol);
  CHECK(std::abs(m.mean - true_mean) < tol);
}

// Sample variance within 6 standard errors sqrt((mu4 - var^2) / n) of the true variance.
void check_var(const Moments& m, double true_var, double true_m4) {
  const double tol = 6.0 * std::sqrt((true_m4 - true_var * true_var) / m.n);
  INFO("sample variance " << m.var << ", true " << true_var << ", tolerance " << tol);
  CHECK(std::abs(m.var - true_var) < tol);
}

// A proportion within 6 standard errors of p.
void check_rate(int64_t hits, int64_t n, double p) {
  const double rate = static_cast<double>(hits) / n;
  const double tol = 6.0 * std::sqrt(p * (1 - p) / n);
  INFO("rate " << rate << ", true " << p << ", tolerance " << tol);
  CHECK(std::abs(rate - p) < tol);
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// Every kind of draw, sized past the kernels' parallel thresholds.
std::vector<Tensor> draw_everything(uint64_t seed) {
  Generator g(seed);
  const Shape big{300, 101};
  return {g.uniform(big),
          g.uniform(big, -1.0, 2.0, DType::f64),
          g.normal(big),
          g.normal(big, 0.5, 2.0, DType::f64),
          g.bernoulli(big, 0.3),
          g.bernoulli(big, 0.7, DType::u8),
          g.randint(big, -5, 17),
          g.randperm(30001),
          g.gamma({5001}, 0.4),
          g.gamma({5001}, 2.5, DType::f64),
          g.beta({5001}, 0.5, 1.5),
          g.dirichlet(2001, {0.3, 1.0, 2.0})};
}

}  // namespace

TEST_CASE("rng: the same seed and stream give the same tensor, a new stream a different one") {
  Generator a(1234), b(1234);
  const Tensor first = a.normal({64});
  CHECK(bitwise_equal(first, b.normal({64})));
  CHECK(a.stream() == 1);
  const Tensor second = a.normal({64});
  CHECK_FALSE(bitwise_equal(first, second));

  // set_state replays a stream exactly.
  Generator c(0);
  c.set_state(1234, 1);
  CHECK(bitwise_equal(second, c.normal({64})));

  Generator other_seed(1235);
  CHECK_FALSE(bitwise_equal(first, other_seed.normal({64})));

  // Prefixes agree: element i depends only on (seed, stream, i), not on the size.
  Generator d(99), e(99);
  const std::vector<float> small = d.uniform({10}).to_vector<float>();
  const std::vector<float> large = e.uniform({1000}).to_vector<float>();
  CHECK(std::equal(small.begin(), small.end(), large.begin()));
}

TEST_CASE("rng: every call takes exactly one stream, including scalar draws") {
  Generator g(7);
  g.uniform({3});
  g.normal({3});
  g.bernoulli({3}, 0.5);
  g.randperm(3);
  g.randint({3}, 0, 4);
  g.gamma({3}, 2.0);
  g.beta({3}, 2.0, 2.0);
  g.dirichlet(3, {1.0, 1.0});
  g.uniform_scalar();
  g.beta_scalar(1.0, 1.0);
  CHECK(g.stream() == 10);
  // A rejected call takes none.
  CHECK_THROWS_AS(g.gamma({3}, -1.0), Error);
  CHECK(g.stream() == 10);
}

TEST_CASE("rng: results are bitwise identical with 1 and 2 threads") {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<Tensor> one = draw_everything(42);
  omp_set_num_threads(2);
  const std::vector<Tensor> two = draw_everything(42);
  omp_set_num_threads(saved);
  REQUIRE(one.size() == two.size());
  for (size_t i = 0; i < one.size(); ++i) {
    INFO("draw " << i << ": " << one[i].str());
    CHECK(bitwise_equal(one[i], two[i]));
  }
}

TEST_CASE("rng: uniform has the right range, mean and variance (f32 and f64)") {
  const double lo = -2.0, hi = 3.0, w = hi - lo;
  for (DType dtype : {DType::f32, DType::f64}) {
    INFO(std::string(dtype_name(dtype)));
    Generator g(11);
    const std::vector<double> v = as_doubles(g.uniform({200000}, lo, hi, dtype));
    CHECK(*std::min_element(v.begin(), v.end()) >= lo);
    CHECK(*std::max_element(v.begin(), v.end()) < hi);
    const Moments m = moments(v);
    check_mean(m, (lo + hi) / 2, w * w / 12);
    check_var(m, w * w / 12, std::pow(w, 4) / 80);
  }
  Generator g(12);
  for (int i = 0; i < 1000; ++i) {
    const double u = g.uniform_scalar(5.0, 6.0);
    REQUIRE(u >= 5.0);
    REQUIRE(u < 6.0);
  }
}

TEST_CASE("rng: normal has the right mean, variance and central mass; Box-Muller pairs uncorrelated") {
  const double mu = 1.5, sigma = 2.0;
  for (DType dtype : {DType::f32, DType::f64}) {
    INFO(std::string(dtype_name(dtype)));
    Generator g(21);
    const std::vector<double> v = as_doubles(g.normal({200000}, mu, sigma, dtype));
    const Moments m = moments(v);
    check_mean(m, mu, sigma * sigma);
    check_var(m, sigma * sigma, 3 * std::pow(sigma, 4));
    int64_t within_one_sigma = 0;
    for (double x : v) within_one_sigma += std::abs(x - mu) < sigma;
    check_rate(within_one_sigma, m.n, 0.6826894921370859);
    // Elements 2k and 2k+1 come from one Box-Muller pair (cos and sin).
    double cross = 0;
    for (size_t k = 0; k + 1 < v.size(); k += 2) cross += (v[k] - mu) * (v[k + 1] - mu);
    const size_t pairs = v.size() / 2;
    const double corr = cross / static_cast<double>(pairs) / (sigma * sigma);
    CHECK(std::abs(corr) < 6.0 / std::sqrt(static_cast<double>(pairs)));
  }
}

TEST_CASE("rng: bernoulli hits its rate and gives only 0 and 1") {
  Generator g(31);
  const std::vector<float> v = g.bernoulli({200000}, 0.3).to_vector<float>();
  int64_t ones = 0;
  for (float x : v) {
    REQUIRE((x == 0.0f || x == 1.0f));
    ones += x == 1.0f;
  }
  check_rate(ones, static_cast<int64_t>(v.size()), 0.3);

  const std::vector<uint8_t> bytes = g.bernoulli({50000}, 0.85, DType::u8).to_vector<uint8_t>();
  int64_t byte_ones = 0;
  for (uint8_t x : bytes) {
    REQUIRE(x <= 1);
    byte_ones += x;
  }
  check_rate(byte_ones, static_cast<int64_t>(bytes.size()), 0.85);

  const std::vector<double> never = g.bernoulli({1000}, 0.0, DType::f64).to_vector<double>();
  const std::vector<double> always = g.bernoulli({1000}, 1.0, DType::f64).to_vector<double>();
  CHECK(std::all_of(never.begin(), never.end(), [](double x) { return x == 0.0; }));
  CHECK(std::all_of(always.begin(), always.end(), [](double x) { return x == 1.0; }));
}

TEST_CASE("rng: randint covers [lo, hi) uniformly") {
  Generator g(41);
  const int64_t lo = -3, hi = 4, n = 140000;
  const std::vector<int64_t> v = g.randint({n}, lo, hi).to_vector<int64_t>();
  std::vector<int64_t> counts(hi - lo, 0);
  for (int64_t x : v) {
    REQUIRE(x >= lo);
    REQUIRE(x < hi);
    ++counts[x - lo];
  }
  for (int64_t c : counts) check_rate(c, n, 1.0 / (hi - lo));
  // The full int64 range does not overflow.
  const std::vector<int64_t> wide = g.randint({1000}, INT64_MIN, INT64_MAX).to_vector<int64_t>();
  int64_t negative = 0;
  for (int64_t x : wide) negative += x < 0;
  check_rate(negative, 1000, 0.5);
}

TEST_CASE("rng: gamma has mean alpha and variance alpha") {
  for (double alpha : {0.2, 1.0, 3.5}) {
    for (DType dtype : {DType::f64, DType::f32}) {
      INFO("alpha " << alpha << " " << std::string(dtype_name(dtype)));
      Generator g(51);
      const std::vector<double> v = as_doubles(g.gamma({200000}, alpha, dtype));
      CHECK(*std::min_element(v.begin(), v.end()) >= 0.0);
      const Moments m = moments(v);
      check_mean(m, alpha, alpha);
      check_var(m, alpha, 3 * alpha * alpha + 6 * alpha);
    }
  }
}

TEST_CASE("rng: beta has mean a/(a+b) and variance ab/((a+b)^2 (a+b+1))") {
  struct Params {
    double a, b;
  };
  for (Params p : {Params{2.0, 0.5}, Params{0.3, 0.3}, Params{1.0, 1.0}}) {
    INFO("a " << p.a << ", b " << p.b);
    Generator g(61);
    const std::vector<double> v = as_doubles(g.beta({200000}, p.a, p.b, DType::f64));
    CHECK(*std::min_element(v.begin(), v.end()) >= 0.0);
    CHECK(*std::max_element(v.begin(), v.end()) <= 1.0);
    const Moments m = moments(v);
    const double s = p.a + p.b;
    const double var = p.a * p.b / (s * s * (s + 1));
    check_mean(m, p.a / s, var);
    check_var(m, var, m.m4);  // bounded, so the sample fourth moment is a sound estimate
  }
  // The scalar draw follows the same law.
  Generator g(62);
  std::vector<double> scalars(20000);
  for (double& x : scalars) x = g.beta_scalar(2.0, 0.5);
  check_mean(moments(scalars), 0.8, 2.0 * 0.5 / (2.5 * 2.5 * 3.5));
}

TEST_CASE("rng: dirichlet rows sum to 1 and components have the right means and variances") {
  const std::vector<double> alpha{0.5, 1.0, 2.5};
  const double a0 = 4.0;
  const int64_t n = 100000, k = 3;
  Generator g(71);
  const Tensor d = g.dirichlet(n, alpha, DType::f64);
  CHECK(d.shape() == Shape{n, k});
  const std::vector<double> v = d.to_vector<double>();
  for (int64_t r = 0; r < n; ++r) {
    const double row = v[r * k] + v[r * k + 1] + v[r * k + 2];
    REQUIRE(std::abs(row - 1.0) < 1e-12);
  }
  for (int64_t j = 0; j < k; ++j) {
    INFO("component " << j);
    std::vector<double> col(n);
    for (int64_t r = 0; r < n; ++r) col[r] = v[r * k + j];
    const Moments m = moments(col);
    const double var = alpha[j] * (a0 - alpha[j]) / (a0 * a0 * (a0 + 1));
    check_mean(m, alpha[j] / a0, var);
    check_var(m, var, m.m4);
  }
  // f32 rows sum to 1 within float rounding, even with tiny concentrations.
  const std::vector<float> f = g.dirichlet(1000, {0.01, 0.02, 0.05, 0.1}).to_vector<float>();
  for (int64_t r = 0; r < 1000; ++r) {
    const double row = double(f[r * 4]) + f[r * 4 + 1] + f[r * 4 + 2] + f[r * 4 + 3];
    REQUIRE(std::abs(row - 1.0) < 1e-5);
  }
}

TEST_CASE("rng: randperm is a permutation with uniform positions") {
  Generator g(81);
  std::vector<int64_t> p = g.randperm(1000).to_vector<int64_t>();
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  CHECK(sorted == identity);
  CHECK(p != identity);
  CHECK(g.randperm(0).numel() == 0);
  CHECK(g.randperm(1).to_vector<int64_t>() == std::vector<int64_t>{0});

  const int64_t n = 5, draws = 20000;
  std::vector<int64_t> first(n, 0), last(n, 0);
  for (int64_t t = 0; t < draws; ++t) {
    const std::vector<int64_t> q = g.randperm(n).to_vector<int64_t>();
    ++first[q[0]];
    ++last[q[n - 1]];
  }
  for (int64_t v = 0; v < n; ++v) {
    INFO("value " << v);
    check_rate(first[v], draws, 1.0 / n);
    check_rate(last[v], draws, 1.0 / n);
  }
}

TEST_CASE("rng: bad arguments and devices throw a clear dmix::Error") {
  Generator g(1);
  CHECK_THROWS_AS(g.uniform({3}, 2.0, 1.0), Error);
  CHECK_THROWS_AS(g.uniform({3}, 0.0, 1.0, DType::i64), Error);
  CHECK_THROWS_AS(g.normal({3}, 0.0, -1.0), Error);
  CHECK_THROWS_AS(g.bernoulli({3}, 1.5), Error);
  CHECK_THROWS_AS(g.randint({3}, 4, 4), Error);
  CHECK_THROWS_AS(g.randperm(-1), Error);
  CHECK_THROWS_AS(g.gamma({3}, 0.0), Error);
  CHECK_THROWS_AS(g.beta({3}, 1.0, 0.0), Error);
  CHECK_THROWS_AS(g.dirichlet(3, {}), Error);
  CHECK_THROWS_AS(g.dirichlet(3, {1.0, -1.0}), Error);
  CHECK_THROWS_AS(g.beta_scalar(-1.0, 1.0), Error);
  // Without a GPU, asking for a CUDA tensor is one clear error (with one, tests/gpu covers it).
  if (!cuda_available()) CHECK_THROWS_AS(g.normal({3}, 0.0, 1.0, DType::f32, Device::cuda(0)), Error);
}
