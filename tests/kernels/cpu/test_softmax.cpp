// Softmax / log-softmax kernels against naive loops in long double.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/softmax.h"
#include "tests/test_util.h"

namespace kc = dmix::kernels::cpu;
using dmix::testing::uniform_values;

namespace {

// Direct definition, no max shift: fine in long double for the ranges used here.
template <class T>
std::vector<long double> naive(const std::vector<T>& x, int64_t outer, int64_t n, int64_t inner, bool log) {
  std::vector<long double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < inner; ++k) {
      long double s = 0;
      for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<long double>(x[(o * n + i) * inner + k]));
      for (int64_t i = 0; i < n; ++i) {
        const long double v = x[(o * n + i) * inner + k];
        y[(o * n + i) * inner + k] = log ? v - std::log(s) : std::exp(v) / s;
      }
    }
  return y;
}

template <class T>
void check_case(int64_t outer, int64_t n, int64_t inner, double lo, double hi) {
  CAPTURE(outer);
  CAPTURE(n);
  CAPTURE(inner);
  const double tol = sizeof(T) == 4 ? 3e-6 : 1e-14;
  auto x = uniform_values<T>(outer * n * inner, 7, lo, hi);
  for (bool log : {false, true}) {
    CAPTURE(log);
    std::vector<T> y(x.size());
    if (log)
      kc::log_softmax(x.data(), outer, n, inner, y.data());
    else
      kc::softmax(x.data(), outer, n, inner, y.data());
    auto ref = naive(x, outer, n, inner, log);
    double worst = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      const double scale = log ? std::max(1.0L, std::abs(ref[i])) : 1.0L;
      worst = std::max(worst, static_cast<double>(std::abs(y[i] - ref[i])) / scale);
    }
    CHECK(worst <= tol * (log ? 10 : 1));
  }
}

}  // namespace

TEST_CASE("softmax and log_softmax match naive loops along any dim") {
  check_case<double>(5, 7, 1, -3, 3);    // last dim
  check_case<double>(3, 4, 5, -3, 3);    // middle dim
  check_case<double>(1, 6, 130, -3, 3);  // first dim, more than one block of k
  check_case<double>(4, 1, 3, -3, 3);    // a dim of size 1
  check_case<float>(6, 33, 1, -5, 5);
  check_case<float>(2, 9, 70, -5, 5);
}

TEST_CASE("softmax is stable for large logits") {
  std::vector<double> x = {1000.0, 1001.0, 999.0, -1000.0}, y(4), ly(4);
  kc::softmax(x.data(), 1, 4, 1, y.data());
  kc::log_softmax(x.data(), 1, 4, 1, ly.data());
  const double s = std::exp(-1.0) + 1.0 + std::exp(-2.0);
  CHECK(y[1] == doctest::Approx(1.0 / s));
  CHECK(y[3] == 0.0);
  CHECK(ly[1] == doctest::Approx(-std::log(s)));
  CHECK(ly[3] == doctest::Approx(-2001.0 - std::log(s)));
  std::vector<float> xf = {100.f, 200.f, 300.f}, yf(3);  // exp(300) overflows float
  kc::softmax(xf.data(), 1, 3, 1, yf.data());
  CHECK(std::isfinite(yf[0]));
  CHECK(yf[2] == doctest::Approx(1.0));
}

TEST_CASE("softmax rows sum to one") {
  auto x = uniform_values<float>(3 * 50 * 4, 3, -10, 10);
  std::vector<float> y(x.size());
  kc::softmax(x.data(), 3, 50, 4, y.data());
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t k = 0; k < 4; ++k) {
      double s = 0;
      for (int64_t i = 0; i < 50; ++i) s += y[(o * 50 + i) * 4 + k];
      CHECK(s == doctest::Approx(1.0).epsilon(1e-6));
    }
}
