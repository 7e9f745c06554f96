// Naive matrix products on row-major doubles: the references of the linalg op-table rows
// (rows_linalg.cpp) and of the GEMM cases in test_linalg.cpp.
#pragma once
#include <cstdint>
#include <vector>

namespace dmix::testing {

// (M,K) x (K,N), row-major.
inline std::vector<double> naive_matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t M,
                                        int64_t K, int64_t N) {
  std::vector<double> c(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) c[i * N + j] += a[i * K + k] * b[k * N + j];
  return c;
}

inline std::vector<double> naive_transpose(const std::vector<double>& a, int64_t R, int64_t C) {
  std::vector<double> t(a.size());
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) t[c * R + r] = a[r * C + c];
  return t;
}

// y[n, o] = sum_i x[n, i] w[o, i] + b[o]
inline std::vector<double> naive_linear(const std::vector<double>& x, const std::vector<double>& w,
                                        const std::vector<double>* b, int64_t rows, int64_t in, int64_t out) {
  std::vector<double> y(size_t(rows * out), 0.0);
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t o = 0; o < out; ++o) {
      double s = b ? (*b)[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += x[n * in + i] * w[o * in + i];
      y[n * out + o] = s;
    }
  return y;
}

}  // namespace dmix::testing
