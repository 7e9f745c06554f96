// gemm(): routes a matrix multiply to the backend selected for this process
// (OpenBLAS or the handwritten blocked kernel, see gemm.h). No arithmetic here;
// the cost is one atomic load per call.
#include "kernels/cpu/gemm.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "kernels/error.h"

namespace dmix::kernels::cpu {
namespace {

constexpr int kUnset = -1;
std::atomic<int> g_backend{kUnset};

GemmBackend backend_from_environment() {
  const char* value = std::getenv("DMIX_GEMM");
  if (value == nullptr || *value == '\0') return GemmBackend::OpenBLAS;
  const std::string v(value);
  if (v == "openblas") return GemmBackend::OpenBLAS;
  if (v == "handwritten") return GemmBackend::Handwritten;
  // A misspelt setting silently measuring the wrong backend is worse than stopping.
  fail("DMIX_GEMM", "'", v, "' is not a GEMM backend; expected 'openblas' or 'handwritten'");
}

}  // namespace

void set_gemm_backend(GemmBackend b) { g_backend.store(static_cast<int>(b), std::memory_order_relaxed); }

GemmBackend gemm_backend() {
  int b = g_backend.load(std::memory_order_relaxed);
  if (b == kUnset) {
    // The first caller reads the environment; an earlier set_gemm_backend() wins.
    int from_env = static_cast<int>(backend_from_environment());
    if (g_backend.compare_exchange_strong(b, from_env, std::memory_order_relaxed)) b = from_env;
  }
  return static_cast<GemmBackend>(b);
}

const char* gemm_backend_name(GemmBackend b) {
  return b == GemmBackend::OpenBLAS ? "openblas" : "handwritten";
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (gemm_backend() == GemmBackend::Handwritten) {
    gemm_handwritten(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else {
    gemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  if (gemm_backend() == GemmBackend::Handwritten) {
    gemm_handwritten(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else {
    gemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

}  // namespace dmix::kernels::cpu
