// Both GEMM backends (handwritten blocked, OpenBLAS) and the dispatching gemm() against
// a naive triple loop in long double: all four transpose combinations, alpha/beta
// variants, odd sizes and sizes that cross the kernel's block edges, padded row
// strides, f32 and f64. Also: beta = 0 ignores NaN in C, degenerate sizes, the backend
// switch, thread-count independence, and calls from inside an OpenMP parallel region.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "tests/test_util.h"

namespace {

namespace kc = dmix::kernels::cpu;
using dmix::testing::uniform_values;
using kc::GemmBackend;

// Restores the process-wide backend when a test that switches it ends.
struct BackendGuard {
  GemmBackend saved = kc::gemm_backend();
  ~BackendGuard() { kc::set_gemm_backend(saved); }
};

// One problem: op(A) is MxK, op(B) is KxN; every matrix stored with `pad` extra
// columns so that strides differ from widths.
template <class T>
struct Problem {
  bool ta, tb;
  int64_t M, N, K, pad;
  T alpha, beta;
  int64_t lda, ldb, ldc;
  std::vector<T> A, B, C0;

  Problem(bool ta_, bool tb_, int64_t M_, int64_t N_, int64_t K_, T alpha_, T beta_, int64_t pad_, unsigned seed)
      : ta(ta_), tb(tb_), M(M_), N(N_), K(K_), pad(pad_), alpha(alpha_), beta(beta_) {
    const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
    const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
    lda = a_cols + pad;
    ldb = b_cols + pad;
    ldc = N + pad;
    A = uniform_values<T>(size_t(a_rows * lda), seed);
    B = uniform_values<T>(size_t(b_rows * ldb), seed + 1);
    C0 = uniform_values<T>(size_t(M * ldc), seed + 2);
  }
  T a(int64_t i, int64_t k) const { return ta ? A[k * lda + i] : A[i * lda + k]; }
  T b(int64_t k, int64_t j) const { return tb ? B[j * ldb + k] : B[k * ldb + j]; }
};

// Checks `C` (computed from p.C0) against long-double loops; padding columns must be untouched.
template <class T>
void check_against_naive(const Problem<T>& p, const std::vector<T>& C, const std::string& who) {
  CAPTURE(who);
  const double eps = std::numeric_limits<T>::epsilon();
  int64_t bad = 0;
  for (int64_t i = 0; i < p.M; ++i) {
    for (int64_t j = 0; j < p.N; ++j) {
      long double dot = 0, magnitude = 0;
      for (int64_t k = 0; k < p.K; ++k) {
        dot += (long double)p.a(i, k) * p.b(k, j);
        magnitude += std::fabs((long double)p.a(i, k) * p.b(k, j));
      }
      // beta == 0 must not look at C at all (it may hold NaN).
      const long double old_term = p.beta == T(0) ? 0.0L : p.beta * (long double)p.C0[i * p.ldc + j];
      const long double expect = p.alpha * dot + old_term;
      // Rounding of a K-term sum plus the beta term, with a margin: an indexing
      // mistake is off by O(magnitude), orders above this.
      const double tol = 4 * eps * double((p.K + 2) * (std::fabs(p.alpha) * magnitude + std::fabs(old_term))) + 1e-30;
      const double got = C[i * p.ldc + j];
      if (!(std::fabs(got - double(expect)) <= tol)) {
        if (bad < 3) {
          INFO("C(" << i << "," << j << ") = " << got << ", expected " << double(expect) << " (tol " << tol << ")");
          CHECK(false);
        }
        ++bad;
      }
    }
    for (int64_t j = p.N; j < p.ldc; ++j) {
      if (C[i * p.ldc + j] != p.C0[i * p.ldc + j]) ++bad;
    }
  }
  CHECK(bad == 0);
}

template <class T>
std::vector<T> run(const Problem<T>& p, const char* backend) {
  std::vector<T> C = p.C0;
  const std::string b = backend;
  if (b == "handwritten") {
    kc::gemm_handwritten(p.ta, p.tb, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, p.beta,
                         C.data(), p.ldc);
  } else if (b == "openblas") {
    kc::gemm_openblas(p.ta, p.tb, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, p.beta, C.data(),
                      p.ldc);
  } else {
    kc::gemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, p.beta, C.data(), p.ldc);
  }
  return C;
}

struct Size {
  int64_t M, N, K;
};

// Odd sizes, one-element edges, and sizes past the blocked kernel's KC (384 f32,
// 256 f64), NC (512 f32, 384 f64) and several row blocks, with enough work for the
// threaded path.
const std::vector<Size> kSizes = {{1, 1, 1},    {1, 7, 33},   {7, 1, 33},    {33, 7, 1},    {7, 33, 100},
                                  {100, 33, 7}, {257, 100, 33}, {33, 257, 100}, {13, 530, 17}, {70, 45, 400},
                                  {257, 129, 300}};

template <class T>
void check_all_combinations(const char* backend) {
  struct Scalars {
    T alpha, beta;
  };
  const std::vector<Scalars> scalars = {{T(1), T(0)}, {T(0.5), T(1)}, {T(-1.5), T(0.25)}};
  unsigned seed = 1;
  for (const Size& s : kSizes) {
    for (int trans = 0; trans < 4; ++trans) {
      const Scalars& sc = scalars[seed % scalars.size()];
      const int64_t pad = (seed % 2) ? 3 : 0;
      Problem<T> p(trans & 1, trans & 2, s.M, s.N, s.K, sc.alpha, sc.beta, pad, seed++);
      CAPTURE(s.M);
      CAPTURE(s.N);
      CAPTURE(s.K);
      CAPTURE(p.ta);
      CAPTURE(p.tb);
      CAPTURE(p.alpha);
      CAPTURE(p.beta);
      CAPTURE(pad);
      check_against_naive(p, run(p, backend), backend);
    }
  }
}

}  // namespace

TEST_CASE("gemm handwritten f32 matches naive loops over sizes, transposes, alpha/beta and strides") {
  check_all_combinations<float>("handwritten");
}
TEST_CASE("gemm handwritten f64 matches naive loops over sizes, transposes, alpha/beta and strides") {
  check_all_combinations<double>("handwritten");
}
TEST_CASE("gemm openblas f32 matches naive loops over sizes, transposes, alpha/beta and strides") {
  check_all_combinations<float>("openblas");
}
TEST_CASE("gemm openblas f64 matches naive loops over sizes, transposes, alpha/beta and strides") {
  check_all_combinations<double>("openblas");
}

TEST_CASE_TEMPLATE("gemm handwritten and openblas agree closely", T, float, double) {
  Problem<T> p(false, true, 123, 301, 211, T(0.75), T(0.5), 2, 77);
  const std::vector<T> hw = run(p, "handwritten"), ob = run(p, "openblas");
  const double tol = sizeof(T) == 4 ? 2e-5 : 1e-13;
  double worst = 0;
  for (size_t i = 0; i < hw.size(); ++i) worst = std::max(worst, std::fabs(double(hw[i]) - double(ob[i])));
  CHECK(worst < tol);
}

TEST_CASE_TEMPLATE("gemm beta = 0 ignores NaN and Inf already in C", T, float, double) {
  for (const char* backend : {"handwritten", "openblas", "dispatch"}) {
    for (const Size& s : std::vector<Size>{{5, 9, 3}, {100, 70, 90}}) {
      Problem<T> p(false, false, s.M, s.N, s.K, T(1), T(0), 1, 5);
      for (int64_t i = 0; i < p.M; ++i)
        for (int64_t j = 0; j < p.N; ++j)
          p.C0[i * p.ldc + j] = (i + j) % 2 ? std::numeric_limits<T>::quiet_NaN() : std::numeric_limits<T>::infinity();
      check_against_naive(p, run(p, backend), backend);
    }
  }
}

TEST_CASE_TEMPLATE("gemm degenerate sizes: K = 0 and alpha = 0 scale C by beta; empty C is untouched", T, float, double) {
  for (const char* backend : {"handwritten", "openblas"}) {
    CAPTURE(backend);
    Problem<T> k0(false, false, 4, 5, 0, T(1), T(2), 0, 9);
    std::vector<T> C = run(k0, backend);
    for (size_t i = 0; i < C.size(); ++i) CHECK(C[i] == T(2) * k0.C0[i]);

    Problem<T> k0_beta0(false, false, 4, 5, 0, T(1), T(0), 0, 9);
    k0_beta0.C0.assign(k0_beta0.C0.size(), std::numeric_limits<T>::quiet_NaN());
    C = run(k0_beta0, backend);
    for (T v : C) CHECK(v == T(0));

    Problem<T> alpha0(true, true, 6, 3, 8, T(0), T(-1), 1, 10);
    C = run(alpha0, backend);
    for (size_t i = 0; i < C.size(); ++i) {
      const bool padding = int64_t(i % alpha0.ldc) >= alpha0.N;
      CHECK(C[i] == (padding ? alpha0.C0[i] : -alpha0.C0[i]));
    }

    Problem<T> empty(false, false, 0, 5, 3, T(1), T(0), 0, 11);
    CHECK(run(empty, backend).empty());
    Problem<T> no_cols(false, false, 4, 0, 3, T(1), T(0), 2, 12);
    CHECK(run(no_cols, backend) == no_cols.C0);
  }
}

TEST_CASE("gemm dispatch follows set_gemm_backend") {
  BackendGuard guard;
  Problem<float> p(true, false, 97, 113, 389, 1.0f, 0.0f, 0, 21);
  const std::vector<float> hw = run(p, "handwritten"), ob = run(p, "openblas");

  kc::set_gemm_backend(GemmBackend::Handwritten);
  CHECK(kc::gemm_backend() == GemmBackend::Handwritten);
  CHECK(std::string(kc::gemm_backend_name(kc::gemm_backend())) == "handwritten");
  CHECK(run(p, "dispatch") == hw);

  kc::set_gemm_backend(GemmBackend::OpenBLAS);
  CHECK(kc::gemm_backend() == GemmBackend::OpenBLAS);
  CHECK(std::string(kc::gemm_backend_name(kc::gemm_backend())) == "openblas");
  CHECK(run(p, "dispatch") == ob);

  Problem<double> pd(false, true, 40, 50, 60, 2.0, 1.0, 1, 22);
  kc::set_gemm_backend(GemmBackend::Handwritten);
  CHECK(run(pd, "dispatch") == run(pd, "handwritten"));
  kc::set_gemm_backend(GemmBackend::OpenBLAS);
  CHECK(run(pd, "dispatch") == run(pd, "openblas"));
}

TEST_CASE_TEMPLATE("gemm handwritten gives identical bits for any thread count", T, float, double) {
  Problem<T> p(false, true, 301, 530, 420, T(1), T(0.5), 1, 31);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<T> one = run(p, "handwritten");
  omp_set_num_threads(3);
  const std::vector<T> three = run(p, "handwritten");
  omp_set_num_threads(saved);
  const std::vector<T> dflt = run(p, "handwritten");
  CHECK(one == three);
  CHECK(one == dflt);
}

TEST_CASE_TEMPLATE("gemm called concurrently from inside an OpenMP parallel region", T, float, double) {
  // Per-group convolution calls gemm from its own parallel loop: every call must see
  // only its own operands, with either backend.
  for (const char* backend : {"handwritten", "openblas"}) {
    CAPTURE(backend);
    const int calls = 8;
    std::vector<Problem<T>> problems;
    std::vector<std::vector<T>> serial;
    for (int c = 0; c < calls; ++c) {
      // Alternate a small product with one large enough for a threaded path.
      const int64_t n = c % 2 ? 24 : 150;
      problems.emplace_back(c % 3 == 0, c % 2 == 0, n, n + 3, n + 5, T(1), T(0), 1, 100 + c);
      serial.push_back(run(problems.back(), backend));
    }
    std::vector<std::vector<T>> nested(calls);
#pragma omp parallel for num_threads(2) schedule(dynamic, 1)
    for (int c = 0; c < calls; ++c) nested[c] = run(problems[c], backend);
    for (int c = 0; c < calls; ++c) {
      CAPTURE(c);
      check_against_naive(problems[c], nested[c], backend);
      if (std::string(backend) == "handwritten") CHECK(nested[c] == serial[c]);
    }
  }
}
