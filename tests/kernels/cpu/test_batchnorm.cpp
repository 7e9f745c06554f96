// Batch-norm kernels against naive per-channel loops in long double.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "tests/test_util.h"

namespace kc = dmix::kernels::cpu;
using dmix::testing::uniform_values;

namespace {

struct NaiveStats {
  std::vector<long double> mean, var;
};

template <class T>
NaiveStats naive_stats(const std::vector<T>& x, int64_t N, int64_t C, int64_t S) {
  NaiveStats st{std::vector<long double>(C, 0), std::vector<long double>(C, 0)};
  const long double M = static_cast<long double>(N * S);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) st.mean[c] += x[(n * C + c) * S + s];
    st.mean[c] /= M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        long double d = x[(n * C + c) * S + s] - st.mean[c];
        st.var[c] += d * d;
      }
    st.var[c] /= M;
  }
  return st;
}

template <class T> double tolerance() { return sizeof(T) == 4 ? 2e-5 : 1e-12; }

template <class T>
void check_forward_train(int64_t N, int64_t C, int64_t S, bool affine) {
  CAPTURE(N);
  CAPTURE(C);
  CAPTURE(S);
  CAPTURE(affine);
  const double eps = 1e-5;
  // A large common offset: a one-pass sum-of-squares variance would lose it.
  auto x = uniform_values<T>(N * C * S, 1, 99.0, 101.0);
  auto w = uniform_values<T>(C, 2, 0.5, 1.5), b = uniform_values<T>(C, 3, -1.0, 1.0);
  std::vector<T> y(x.size()), mean(C), invstd(C), var(C);
  kc::batch_norm_forward_train(x.data(), N, C, S, affine ? w.data() : nullptr, affine ? b.data() : nullptr, eps,
                               y.data(), mean.data(), invstd.data(), var.data());
  auto st = naive_stats(x, N, C, S);
  for (int64_t c = 0; c < C; ++c) {
    CHECK(std::abs(mean[c] - st.mean[c]) <= tolerance<T>() * 100);
    CHECK(std::abs(var[c] - st.var[c]) <= tolerance<T>() * st.var[c] * 10);
    const long double is = 1.0L / std::sqrt(st.var[c] + eps);
    CHECK(std::abs(invstd[c] - is) <= tolerance<T>() * is);
  }
  double worst = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = (n * C + c) * S + s;
        long double ref = (x[i] - st.mean[c]) / std::sqrt(st.var[c] + eps);
        if (affine) ref = ref * w[c] + b[c];
        worst = std::max(worst, static_cast<double>(std::abs(y[i] - ref)));
      }
  // f32 inputs near 100 carry ~1e-5 absolute rounding, i.e. ~2e-5 relative to the std.
  CHECK(worst <= (sizeof(T) == 4 ? 2e-4 : 1e-9));
}

template <class T>
void check_backward_train(int64_t N, int64_t C, int64_t S, bool affine) {
  CAPTURE(N);
  CAPTURE(C);
  CAPTURE(S);
  CAPTURE(affine);
  const double eps = 1e-5;
  auto x = uniform_values<T>(N * C * S, 4, -2.0, 3.0), g = uniform_values<T>(N * C * S, 5, -1.0, 1.0);
  auto w = uniform_values<T>(C, 6, 0.5, 1.5);
  std::vector<T> y(x.size()), mean(C), invstd(C);
  kc::batch_norm_forward_train<T>(x.data(), N, C, S, nullptr, nullptr, eps, y.data(), mean.data(), invstd.data(),
                                  nullptr);
  std::vector<T> gx(x.size()), gw(C), gb(C);
  kc::batch_norm_backward_train(g.data(), x.data(), N, C, S, mean.data(), invstd.data(), affine ? w.data() : nullptr,
                                gx.data(), gw.data(), gb.data());
  auto st = naive_stats(x, N, C, S);
  const long double M = static_cast<long double>(N * S);
  for (int64_t c = 0; c < C; ++c) {
    const long double is = 1.0L / std::sqrt(st.var[c] + eps);
    long double sum_g = 0, sum_gxhat = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = (n * C + c) * S + s;
        sum_g += g[i];
        sum_gxhat += g[i] * (x[i] - st.mean[c]) * is;
      }
    CHECK(std::abs(gb[c] - sum_g) <= tolerance<T>() * std::max(1.0L, M));
    CHECK(std::abs(gw[c] - sum_gxhat) <= tolerance<T>() * std::max(1.0L, M));
    const long double wc = affine ? w[c] : 1.0L;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = (n * C + c) * S + s;
        const long double xhat = (x[i] - st.mean[c]) * is;
        const long double ref = wc * is * (g[i] - sum_g / M - xhat * sum_gxhat / M);
        CHECK(std::abs(gx[i] - ref) <= tolerance<T>() * 10);
      }
  }
}

}  // namespace

TEST_CASE("batch_norm_forward_train matches naive per-channel loops") {
  for (bool affine : {true, false}) {
    check_forward_train<double>(3, 4, 37, affine);   // row-wise path with a tail
    check_forward_train<double>(5, 3, 1, affine);    // (N, C): column-wise path
    check_forward_train<double>(4, 6, 7, affine);    // short rows: column-wise path
    check_forward_train<float>(4, 5, 64, affine);
    check_forward_train<float>(9, 300, 1, affine);   // more channels than one column block
    check_forward_train<float>(3, 70, 5, affine);
  }
}

TEST_CASE("batch_norm_backward_train matches the naive formula") {
  for (bool affine : {true, false}) {
    check_backward_train<double>(3, 4, 37, affine);
    check_backward_train<double>(5, 3, 1, affine);
    check_backward_train<double>(4, 6, 7, affine);
    check_backward_train<float>(4, 5, 64, affine);
    check_backward_train<float>(9, 300, 1, affine);
  }
}

TEST_CASE("batch_norm_backward_train leaves out unwanted outputs") {
  const int64_t N = 2, C = 3, S = 40;
  auto x = uniform_values<double>(N * C * S, 7, -1, 1), g = uniform_values<double>(N * C * S, 8, -1, 1);
  std::vector<double> y(x.size()), mean(C), invstd(C), gw(C, 42.0), gb(C), gx(x.size());
  kc::batch_norm_forward_train<double>(x.data(), N, C, S, nullptr, nullptr, 1e-5, y.data(), mean.data(),
                                       invstd.data(), nullptr);
  kc::batch_norm_backward_train<double>(g.data(), x.data(), N, C, S, mean.data(), invstd.data(), nullptr, nullptr,
                                        nullptr, gb.data());
  for (int64_t c = 0; c < C; ++c) CHECK(gw[c] == 42.0);
  kc::batch_norm_backward_train<double>(g.data(), x.data(), N, C, S, mean.data(), invstd.data(), nullptr, gx.data(),
                                        nullptr, nullptr);
  double sum = 0;
  for (double v : gx) sum += std::abs(v);
  CHECK(sum > 0);
}

TEST_CASE("batch_norm_apply uses the given statistics") {
  const int64_t N = 3, C = 4;
  for (int64_t S : {1, 5, 40}) {
    CAPTURE(S);
    auto x = uniform_values<double>(N * C * S, 9, -1, 1);
    std::vector<double> mean = {0.1, -0.2, 0.3, 0.0}, invstd = {1.0, 2.0, 0.5, 3.0}, w = {1, 2, 3, 4},
                        b = {0.5, 0.0, -0.5, 1.0}, y(x.size());
    kc::batch_norm_apply(x.data(), N, C, S, mean.data(), invstd.data(), w.data(), b.data(), y.data());
    for (int64_t i = 0; i < N * C * S; ++i) {
      const int64_t c = (i / S) % C;
      CHECK(y[i] == doctest::Approx((x[i] - mean[c]) * invstd[c] * w[c] + b[c]).epsilon(1e-12));
    }
  }
}

TEST_CASE("batch_norm kernels give the same bits for any thread count") {
  // Sizes above the kernels' threshold for going parallel, on each path.
  struct Size {
    int64_t N, C, S;
  };
  for (Size z : {Size{8, 8, 600}, Size{64, 600, 1}, Size{64, 200, 3}}) {
    const int64_t N = z.N, C = z.C, S = z.S;
    CAPTURE(S);
    auto x = uniform_values<float>(N * C * S, 10, -1, 1), g = uniform_values<float>(N * C * S, 11, -1, 1);
    auto run = [&](int threads) {
      const int before = omp_get_max_threads();
      omp_set_num_threads(threads);
      std::vector<float> y(x.size()), mean(C), invstd(C), gx(x.size()), gw(C), gb(C);
      kc::batch_norm_forward_train<float>(x.data(), N, C, S, nullptr, nullptr, 1e-5, y.data(), mean.data(),
                                          invstd.data(), nullptr);
      kc::batch_norm_backward_train<float>(g.data(), x.data(), N, C, S, mean.data(), invstd.data(), nullptr,
                                           gx.data(), gw.data(), gb.data());
      omp_set_num_threads(before);
      y.insert(y.end(), gx.begin(), gx.end());
      y.insert(y.end(), gw.begin(), gw.end());
      return y;
    };
    CHECK(run(1) == run(3));
  }
}
