// gemm_cublas and gemm_tiled (kernels/cuda/gemm.h) against a naive CPU reference in
// double precision: all four transpose combinations, odd sizes, alpha/beta, padded
// leading dimensions, K = 0, beta = 0 over a NaN-filled C, and argument errors.
//
// Tolerance. Summing K products in fp32, in any order, errs by at most
// gamma_K * sum_k |a_ik b_kj| with gamma_K ~= K u (u = 2^-24, the unit roundoff; Higham,
// "Accuracy and Stability of Numerical Algorithms", 3.1). Scaling by alpha, the
// product beta * C and the final addition add three more roundings. Each element is
// therefore allowed
//     (K + 3) * FLT_EPSILON * (|alpha| sum_k |a_ik b_kj| + |beta c_ij|),
// with FLT_EPSILON = 2u: twice the worst case, so a correct kernel passes whatever
// summation order it uses (cuBLAS picks its own, split-K included), while a wrong
// index, a missed tile edge or a lost term is off by O(1) and fails. The reference
// itself (double, 2^-53) is exact by comparison. Columns of C beyond N (padding in
// ldc) must come back untouched: tolerance 0.
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"
#include "tests/gpu/gpu_test_util.h"

namespace cuda = dmix::kernels::cuda;
using dmix::gpu_test::compare;
using dmix::gpu_test::DeviceBuffer;
using dmix::gpu_test::ErrorSummary;
using dmix::gpu_test::has_gpu;
using dmix::gpu_test::random_floats;

namespace {

using GemmFunction = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                              int64_t, float, float*, int64_t, int);

struct GemmProblem {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0, lda = 1, ldb = 1, ldc = 1;
  float alpha = 1.0f, beta = 0.0f;
  std::vector<float> A, B, C;             // as stored; C holds its initial value
  std::vector<double> expected, allowed;  // over the whole C buffer, padding included

  std::string describe() const {
    return std::string(trans_a ? "T" : "N") + (trans_b ? "T" : "N") + " M=" + std::to_string(M) +
           " N=" + std::to_string(N) + " K=" + std::to_string(K);
  }
};

struct ProblemOptions {
  float alpha = 1.0f, beta = 0.0f;
  int64_t pad = 0;            // extra elements per row of A, B and C
  bool nan_in_c = false;      // initial C all NaN (only meaningful with beta = 0)
  double input_rounding = 0;  // per-product relative error of inputs (TF32), added to the tolerance
};

GemmProblem make_problem(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const ProblemOptions& options,
                         uint32_t seed) {
  GemmProblem p;
  p.trans_a = trans_a, p.trans_b = trans_b, p.M = M, p.N = N, p.K = K;
  p.alpha = options.alpha, p.beta = options.beta;
  p.lda = std::max<int64_t>(1, trans_a ? M : K) + options.pad;
  p.ldb = std::max<int64_t>(1, trans_b ? K : N) + options.pad;
  p.ldc = std::max<int64_t>(1, N) + options.pad;
  // A NaN in the padding of C would have to stay NaN, which compare() counts as a failure.
  REQUIRE_MESSAGE(!(options.nan_in_c && options.pad > 0), "nan_in_c needs pad = 0");
  p.A = random_floats(static_cast<size_t>((trans_a ? K : M) * p.lda), seed);
  p.B = random_floats(static_cast<size_t>((trans_b ? N : K) * p.ldb), seed + 1000);
  p.C = options.nan_in_c ? std::vector<float>(static_cast<size_t>(M * p.ldc), std::numeric_limits<float>::quiet_NaN())
                         : random_floats(static_cast<size_t>(M * p.ldc), seed + 2000);

  // op(A) as M x K rows and op(B) as N x K rows, so every dot product below runs
  // over contiguous memory.
  std::vector<double> a_rows(static_cast<size_t>(M * K)), b_cols(static_cast<size_t>(N * K));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) a_rows[i * K + k] = trans_a ? p.A[k * p.lda + i] : p.A[i * p.lda + k];
  for (int64_t j = 0; j < N; ++j)
    for (int64_t k = 0; k < K; ++k) b_cols[j * K + k] = trans_b ? p.B[j * p.ldb + k] : p.B[k * p.ldb + j];

  p.expected.assign(p.C.begin(), p.C.end());  // padding columns keep their value
  p.allowed.assign(p.C.size(), 0.0);
  const double fp32_bound = static_cast<double>(K + 3) * FLT_EPSILON + options.input_rounding;
  const double alpha = options.alpha, beta = options.beta;
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double sum = 0.0, magnitude = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double product = a_rows[i * K + k] * b_cols[j * K + k];
        sum += product;
        magnitude += std::abs(product);
      }
      const double c0 = beta == 0.0 ? 0.0 : static_cast<double>(p.C[i * p.ldc + j]);
      p.expected[i * p.ldc + j] = alpha * sum + beta * c0;
      p.allowed[i * p.ldc + j] =
          fp32_bound * (std::abs(alpha) * magnitude + std::abs(beta * c0)) + std::numeric_limits<float>::min();
    }
  }
  return p;
}

ErrorSummary run_on_gpu(GemmFunction gemm, const GemmProblem& p) {
  DeviceBuffer<float> a(p.A.size()), b(p.B.size()), c(p.C.size());
  a.upload(p.A);
  b.upload(p.B);
  c.upload(p.C);
  gemm(p.trans_a, p.trans_b, p.M, p.N, p.K, p.alpha, a.get(), p.lda, b.get(), p.ldb, p.beta, c.get(), p.ldc, 0);
  return compare(c.download(), p.expected, p.allowed);
}

struct Transposes {
  bool a, b;
};
constexpr Transposes kAllTransposes[] = {{false, false}, {false, true}, {true, false}, {true, true}};

struct Shape {
  int64_t M, N, K;
};

// Every combination of 1, 17, 100 and 257 (single elements, less than one tile, tile
// edges in every direction), and shapes with 1000 (several tiles, long K).
std::vector<Shape> odd_shapes() {
  const int64_t sizes[] = {1, 17, 100, 257};
  std::vector<Shape> shapes;
  for (int64_t m : sizes)
    for (int64_t n : sizes)
      for (int64_t k : sizes) shapes.push_back({m, n, k});
  shapes.push_back({1000, 17, 257});
  shapes.push_back({17, 1000, 100});
  shapes.push_back({257, 100, 1000});
  shapes.push_back({1000, 1000, 1000});
  return shapes;
}

void check_against_reference(const std::string& name, GemmFunction gemm, const std::vector<Shape>& shapes,
                             const ProblemOptions& options) {
  uint32_t seed = 1;
  for (const Transposes& t : kAllTransposes) {
    for (const Shape& s : shapes) {
      const GemmProblem p = make_problem(t.a, t.b, s.M, s.N, s.K, options, seed++);
      const ErrorSummary e = run_on_gpu(gemm, p);
      MESSAGE(name << " " << p.describe() << ": " << e.text());
      CHECK_MESSAGE(e.failures == 0, name << " " << p.describe() << " is out of tolerance");
    }
  }
}

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const dmix::Error& e) {
    return e.what();
  }
  return "(no dmix::Error thrown)";
}

struct Tf32Allowed {
  Tf32Allowed() { cuda::set_allow_tf32(true); }
  ~Tf32Allowed() { cuda::set_allow_tf32(false); }
};

}  // namespace

TEST_CASE("cuda gemm: gemm_cublas matches a double reference, all transposes, odd sizes" *
          doctest::skip(!has_gpu())) {
  check_against_reference("gemm_cublas", cuda::gemm_cublas, odd_shapes(), {});
}

TEST_CASE("cuda gemm: gemm_tiled matches a double reference, all transposes, odd sizes" *
          doctest::skip(!has_gpu())) {
  check_against_reference("gemm_tiled", cuda::gemm_tiled, odd_shapes(), {});
}

// gemm_tiled switches to 128-row tiles once there is a tile for every multiprocessor
// (132 on an H100): these products have 180 and 153 of them, with ragged edges.
TEST_CASE("cuda gemm: gemm_tiled's large-tile path matches a double reference" * doctest::skip(!has_gpu())) {
  check_against_reference("gemm_tiled", cuda::gemm_tiled, {{1800, 1500, 33}, {2049, 1100, 70}}, {});
  ProblemOptions options;
  options.alpha = -0.5f, options.beta = 2.0f, options.pad = 5;
  check_against_reference("gemm_tiled", cuda::gemm_tiled, {{1800, 1500, 9}}, options);
}

TEST_CASE("cuda gemm: alpha, beta and padded leading dimensions" * doctest::skip(!has_gpu())) {
  const std::vector<Shape> shapes = {{17, 100, 257}, {257, 17, 1}, {100, 257, 17}, {129, 130, 9}};
  ProblemOptions options;
  options.alpha = 1.5f, options.beta = -0.75f, options.pad = 3;
  check_against_reference("gemm_cublas", cuda::gemm_cublas, shapes, options);
  check_against_reference("gemm_tiled", cuda::gemm_tiled, shapes, options);
}

TEST_CASE("cuda gemm: beta = 0 never reads C (a NaN-filled C is overwritten)" * doctest::skip(!has_gpu())) {
  const std::vector<Shape> shapes = {{17, 257, 100}, {130, 1, 33}};
  ProblemOptions options;
  options.alpha = 0.5f, options.nan_in_c = true;
  check_against_reference("gemm_cublas", cuda::gemm_cublas, shapes, options);
  check_against_reference("gemm_tiled", cuda::gemm_tiled, shapes, options);
}

TEST_CASE("cuda gemm: K = 0 scales C by beta" * doctest::skip(!has_gpu())) {
  ProblemOptions options;
  options.beta = 0.5f;
  check_against_reference("gemm_cublas", cuda::gemm_cublas, {{17, 100, 0}}, options);
  check_against_reference("gemm_tiled", cuda::gemm_tiled, {{17, 100, 0}}, options);
  options.beta = 0.0f;  // C becomes exactly zero
  check_against_reference("gemm_cublas", cuda::gemm_cublas, {{17, 100, 0}}, options);
  check_against_reference("gemm_tiled", cuda::gemm_tiled, {{17, 100, 0}}, options);
}

TEST_CASE("cuda gemm: an empty output leaves C alone" * doctest::skip(!has_gpu())) {
  const std::vector<float> initial = random_floats(12, 5);
  for (GemmFunction gemm : {cuda::gemm_cublas, cuda::gemm_tiled}) {
    DeviceBuffer<float> c(initial.size());
    c.upload(initial);
    CHECK_NOTHROW(gemm(false, false, 0, 12, 5, 1.0f, nullptr, 5, nullptr, 12, 0.0f, c.get(), 12, 0));
    CHECK_NOTHROW(gemm(false, false, 12, 0, 5, 1.0f, nullptr, 5, nullptr, 1, 0.0f, c.get(), 1, 0));
    CHECK(c.download() == initial);
  }
}

TEST_CASE("cuda gemm: bad arguments are dmix errors naming the problem" * doctest::skip(!has_gpu())) {
  DeviceBuffer<float> buffer(64);
  float* p = buffer.get();
  const struct {
    std::string name;
    GemmFunction gemm;
  } impls[] = {{"gemm_cublas", cuda::gemm_cublas}, {"gemm_tiled", cuda::gemm_tiled}};
  for (const auto& impl : impls) {
    CAPTURE(impl.name);
    std::string e = error_of([&] { impl.gemm(false, false, 4, 4, 4, 1.0f, p, 3, p, 4, 0.0f, p, 4, 0); });
    CHECK(e.find(impl.name) != std::string::npos);
    CHECK(e.find("lda=3") != std::string::npos);
    e = error_of([&] { impl.gemm(true, true, 4, 5, 6, 1.0f, p, 4, p, 5, 0.0f, p, 5, 0); });
    CHECK(e.find("ldb=5") != std::string::npos);  // B stored N x K needs ldb >= K = 6
    e = error_of([&] { impl.gemm(false, false, 4, 4, 4, 1.0f, p, 4, p, 4, 0.0f, p, 2, 0); });
    CHECK(e.find("ldc=2") != std::string::npos);
    e = error_of([&] { impl.gemm(false, false, -1, 4, 4, 1.0f, p, 4, p, 4, 0.0f, p, 4, 0); });
    CHECK(e.find("negative size") != std::string::npos);
    e = error_of([&] { impl.gemm(false, false, 4, 4, 4, 1.0f, nullptr, 4, p, 4, 0.0f, p, 4, 0); });
    CHECK(e.find("null") != std::string::npos);
    const int missing = cuda::device_count();
    e = error_of([&] { impl.gemm(false, false, 4, 4, 4, 1.0f, p, 4, p, 4, 0.0f, p, 4, missing); });
    CHECK(e.find("cuda:" + std::to_string(missing)) != std::string::npos);
  }
}

TEST_CASE("cuda gemm: gemm_cublas with TF32 allowed stays within the TF32 tolerance" * doctest::skip(!has_gpu())) {
  // TF32 keeps 10 of fp32's 23 mantissa bits: each input may be off by up to 2^-10
  // relative (2^-11 when rounded to nearest), so each product by about 2 * 2^-10.
  ProblemOptions options;
  options.input_rounding = 2.0 * std::ldexp(1.0, -10);
  const Tf32Allowed tf32;
  CHECK(cuda::allow_tf32());
  check_against_reference("gemm_cublas (TF32)", cuda::gemm_cublas, {{257, 100, 1000}, {100, 257, 17}, {1, 1, 1}},
                          options);
}
