// Handwritten GEMM: C = alpha * op(A) * op(B) + beta * C, row-major (see gemm.h).
//
// Algorithm: the Goto / BLIS blocking, written for row-major C where SIMD vectors run
// along a row of C (the N direction). C is cut into blocks of at most MC x NC; each
// block is one unit of work, computed by one thread:
//
//   for pc in K, step KC
//     pack op(A)[block rows, pc..] into MR-row panels (each KC x MR, k-major)    L3
//     pack op(B)[pc.., block cols] into NR-column panels (each KC x NR, k-major) L2
//     for ir, step MR             one A panel (MR x KC) stays in L1
//       for jr, step NR           B panels stream from L2
//         micro-kernel: an MR x NR tile of C held in registers for all KC steps
//
// Packing turns every transpose and stride into unit-stride reads in the micro-kernel
// and zero-pads the edges, so the micro-kernel always computes a full tile; edge
// tiles are written back through a small buffer. The micro-kernel does MR*NR/W
// fused multiply-adds per k from NR/W vector loads and MR broadcasts (W = vector
// width), so it is bound by FMA throughput rather than by loads.
//
// Threads (OpenMP) take blocks dynamically and never wait on each other inside a
// call, so a core shared with other work slows only its own blocks. Large problems
// are cut into about four blocks per thread. Block edges fall on multiples of MR and
// NR and every element is accumulated in the same order, so results are bit-identical
// for any thread count. Inside an enclosing parallel region the kernel runs on the
// calling thread alone.
//
// Cost: 2*M*N*K flops. Memory traffic: op(A) is read once per column block
// (M*K*ceil(N/nc)), op(B) once per row block (K*N*ceil(M/mc)), C read and written
// once per KC step (M*N*ceil(K/KC)). Extra memory: one packed A block and one packed
// B block per thread (up to about 3 MB for floats), kept for reuse.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "kernels/cpu/gemm.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace dmix::kernels::cpu {
namespace {

// ---- SIMD vocabulary: one register type and the few operations the kernel needs ----

template <class T>
struct Scalar {  // portable fallback: "vectors" of width 1; the compiler may still vectorise
  using reg = T;
  static constexpr int W = 1;
  static reg zero() { return T(0); }
  static reg set1(T v) { return v; }
  static reg load(const T* p) { return *p; }
  static void store(T* p, reg v) { *p = v; }
  static reg fma(reg a, reg b, reg c) { return a * b + c; }
  static reg mul(reg a, reg b) { return a * b; }
};

#if defined(__AVX512F__)
struct SimdF {
  using reg = __m512;
  static constexpr int W = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
};
struct SimdD {
  using reg = __m512d;
  static constexpr int W = 8;
  static reg zero() { return _mm512_setzero_pd(); }
  static reg set1(double v) { return _mm512_set1_pd(v); }
  static reg load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
};
#elif defined(__AVX2__) && defined(__FMA__)
struct SimdF {
  using reg = __m256;
  static constexpr int W = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
};
struct SimdD {
  using reg = __m256d;
  static constexpr int W = 4;
  static reg zero() { return _mm256_setzero_pd(); }
  static reg set1(double v) { return _mm256_set1_pd(v); }
  static reg load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
};
#else
using SimdF = Scalar<float>;
using SimdD = Scalar<double>;
#endif

// ---- tile and block sizes per element type ----
// MR x (NV vectors) accumulators plus NV loaded B vectors and one broadcast must fit
// the register file (32 zmm with AVX-512, 16 ymm with AVX2). KC sizes the A panel for
// L1 (MR*KC elements), KC*NC the B block for L2, MC*KC the A block for L3.

template <class T>
struct Blocking;

#if defined(__AVX512F__)
template <>
struct Blocking<float> {
  using S = SimdF;
  static constexpr int MR = 12, NV = 2;
  static constexpr int64_t KC = 384, NC = 512, MC = 1536;
};
template <>
struct Blocking<double> {
  using S = SimdD;
  static constexpr int MR = 12, NV = 2;
  static constexpr int64_t KC = 256, NC = 384, MC = 768;
};
#elif defined(__AVX2__) && defined(__FMA__)
template <>
struct Blocking<float> {
  using S = SimdF;
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t KC = 256, NC = 256, MC = 1536;
};
template <>
struct Blocking<double> {
  using S = SimdD;
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t KC = 256, NC = 128, MC = 768;
};
#else
template <>
struct Blocking<float> {
  using S = SimdF;
  static constexpr int MR = 4, NV = 8;
  static constexpr int64_t KC = 256, NC = 256, MC = 512;
};
template <>
struct Blocking<double> {
  using S = SimdD;
  static constexpr int MR = 4, NV = 8;
  static constexpr int64_t KC = 256, NC = 128, MC = 512;
};
#endif

// ---- packing ----

// op(A)[i0 .. i0+rows, p0 .. p0+kc] (rows <= MR) into one panel of kc groups of MR
// values, zero past `rows`.
template <class T, int MR>
void pack_a_panel(bool trans_a, const T* A, int64_t lda, int64_t i0, int64_t p0, int64_t rows,
                  int64_t kc, T* dst) {
  if (!trans_a) {
    for (int64_t r = 0; r < rows; ++r) {
      const T* src = A + (i0 + r) * lda + p0;
      for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = src[k];
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = A + (p0 + k) * lda + i0;
      for (int64_t r = 0; r < rows; ++r) dst[k * MR + r] = src[r];
    }
  }
  for (int64_t r = rows; r < MR; ++r)
    for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = T(0);
}

// op(B)[p0 .. p0+kc, j0 .. j0+cols] (cols <= NR) into one panel of kc groups of NR
// values, zero past `cols`.
template <class T, int NR>
void pack_b_panel(bool trans_b, const T* B, int64_t ldb, int64_t p0, int64_t j0, int64_t cols,
                  int64_t kc, T* dst) {
  if (!trans_b) {
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = B + (p0 + k) * ldb + j0;
      T* d = dst + k * NR;
      for (int64_t c = 0; c < cols; ++c) d[c] = src[c];
      for (int64_t c = cols; c < NR; ++c) d[c] = T(0);
    }
  } else {
    for (int64_t c = 0; c < cols; ++c) {
      const T* src = B + (j0 + c) * ldb + p0;
      for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = src[k];
    }
    for (int64_t c = cols; c < NR; ++c)
      for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = T(0);
  }
}

// ---- micro-kernel ----

// C[0..m, 0..n] = alpha * (a_panel * b_panel) + beta * C, for one MR x NR tile
// (m <= MR, n <= NR valid). beta == 0 never reads C.
template <class T>
void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T alpha, T beta,
                  T* __restrict c, int64_t ldc, int m, int n) {
  using Cfg = Blocking<T>;
  using S = typename Cfg::S;
  constexpr int MR = Cfg::MR, NV = Cfg::NV, W = S::W, NR = NV * W;

  typename S::reg acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = S::zero();

  for (int64_t k = 0; k < kc; ++k) {
    typename S::reg bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = S::load(b + v * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const typename S::reg ai = S::set1(a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = S::fma(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }

  // A partial tile goes through a full-size buffer so that every element, edge or
  // not, sees the same arithmetic (and so the same bits).
  const bool full = m == MR && n == NR;
  alignas(64) T tile[MR * NR];
  T* out = c;
  int64_t ld = ldc;
  if (!full) {
    out = tile;
    ld = NR;
    if (beta != T(0)) {
      for (int i = 0; i < m; ++i) std::copy(c + i * ldc, c + i * ldc + n, tile + i * NR);
    }
  }

  const typename S::reg va = S::set1(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) S::store(out + i * ld + v * W, S::mul(acc[i][v], va));
  } else {
    const typename S::reg vb = S::set1(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        T* p = out + i * ld + v * W;
        S::store(p, S::fma(acc[i][v], va, S::mul(S::load(p), vb)));
      }
  }

  if (!full) {
    for (int i = 0; i < m; ++i) std::copy(tile + i * NR, tile + i * NR + n, c + i * ldc);
  }
}

// ---- per-thread packing buffers, reused across calls ----

template <class T>
struct AlignedBuffer {
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> data;
  size_t capacity = 0;

  T* get(size_t n) {
    if (n > capacity) {
      const size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
      T* p = static_cast<T*>(std::aligned_alloc(64, bytes));
      if (p == nullptr) throw std::bad_alloc();
      data.reset(p);
      capacity = n;
    }
    return data.get();
  }
};

template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* row = C + i * ldc;
    if (beta == T(0)) {
      std::fill(row, row + N, T(0));
    } else if (beta != T(1)) {
      for (int64_t j = 0; j < N; ++j) row[j] *= beta;
    }
  }
}

struct Problem {
  bool trans_a, trans_b;
  int64_t K;
  int64_t lda, ldb, ldc;
};

// C[ic .. ic+mc, jc .. jc+nc] over all of K, on the calling thread, with its own
// packing buffers.
template <class T>
void compute_block(const Problem& p, int64_t ic, int64_t mc, int64_t jc, int64_t nc, T alpha,
                   const T* A, const T* B, T beta, T* C) {
  using Cfg = Blocking<T>;
  constexpr int MR = Cfg::MR, NR = Cfg::NV * Cfg::S::W;
  constexpr int64_t KC = Cfg::KC;

  const int64_t a_panels = (mc + MR - 1) / MR, b_panels = (nc + NR - 1) / NR;
  const int64_t kc_max = std::min(KC, p.K);
  thread_local AlignedBuffer<T> a_buffer, b_buffer;
  T* a_pack = a_buffer.get(size_t(a_panels * MR * kc_max));
  T* b_pack = b_buffer.get(size_t(b_panels * NR * kc_max));

  for (int64_t pc = 0; pc < p.K; pc += KC) {
    const int64_t kc = std::min(KC, p.K - pc);
    const T beta_here = pc == 0 ? beta : T(1);  // later K steps accumulate
    for (int64_t q = 0; q < a_panels; ++q) {
      const int64_t rows = std::min<int64_t>(MR, mc - q * MR);
      pack_a_panel<T, MR>(p.trans_a, A, p.lda, ic + q * MR, pc, rows, kc, a_pack + q * MR * kc);
    }
    for (int64_t q = 0; q < b_panels; ++q) {
      const int64_t cols = std::min<int64_t>(NR, nc - q * NR);
      pack_b_panel<T, NR>(p.trans_b, B, p.ldb, pc, jc + q * NR, cols, kc, b_pack + q * NR * kc);
    }
    for (int64_t qa = 0; qa < a_panels; ++qa) {
      const int m = int(std::min<int64_t>(MR, mc - qa * MR));
      for (int64_t qb = 0; qb < b_panels; ++qb) {
        const int n = int(std::min<int64_t>(NR, nc - qb * NR));
        T* c = C + (ic + qa * MR) * p.ldc + jc + qb * NR;
        micro_kernel<T>(kc, a_pack + qa * MR * kc, b_pack + qb * NR * kc, alpha, beta_here, c, p.ldc, m, n);
      }
    }
  }
}

// Problems below this many multiply-adds run on one thread: a parallel region costs
// more than it saves.
constexpr int64_t kParallelThreshold = int64_t(64) * 64 * 64;
// Blocks of C handed out per thread, for balance when a core is shared, and the
// smallest blocks worth their own packing of A and B.
constexpr int64_t kBlocksPerThread = 4;
constexpr int64_t kMinBlockRows = 48, kMinBlockCols = 128;

int64_t round_up(int64_t x, int64_t multiple) { return (x + multiple - 1) / multiple * multiple; }

template <class T>
void gemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  using Cfg = Blocking<T>;
  constexpr int MR = Cfg::MR, NR = Cfg::NV * Cfg::S::W;
  constexpr int64_t NC = Cfg::NC, MC = Cfg::MC;

  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return;
  }

  // Blocks of C are the unit of work. Their edges stay on multiples of MR and NR, so
  // tile boundaries (and thus every result bit) do not depend on the decomposition.
  int64_t row_blocks = (M + MC - 1) / MC, col_blocks = (N + NC - 1) / NC;
  const bool parallel = !omp_in_parallel() && omp_get_max_threads() > 1 && M * N * K >= kParallelThreshold;
  if (parallel) {
    const int64_t wanted = kBlocksPerThread * omp_get_max_threads();
    const int64_t max_row_blocks = (M + kMinBlockRows - 1) / kMinBlockRows;
    const int64_t max_col_blocks = (N + kMinBlockCols - 1) / kMinBlockCols;
    if (row_blocks * col_blocks < wanted)
      row_blocks = std::max(row_blocks, std::min((wanted + col_blocks - 1) / col_blocks, max_row_blocks));
    if (row_blocks * col_blocks < wanted)
      col_blocks = std::max(col_blocks, std::min((wanted + row_blocks - 1) / row_blocks, max_col_blocks));
  }
  const int64_t mc = round_up((M + row_blocks - 1) / row_blocks, MR);
  const int64_t nc = round_up((N + col_blocks - 1) / col_blocks, NR);
  row_blocks = (M + mc - 1) / mc;
  col_blocks = (N + nc - 1) / nc;
  const Problem p{trans_a, trans_b, K, lda, ldb, ldc};

#pragma omp parallel for schedule(dynamic, 1) if (parallel && row_blocks * col_blocks > 1)
  for (int64_t t = 0; t < row_blocks * col_blocks; ++t) {
    const int64_t ic = (t / col_blocks) * mc, jc = (t % col_blocks) * nc;
    compute_block<T>(p, ic, std::min(mc, M - ic), jc, std::min(nc, N - jc), alpha, A, B, beta, C);
  }
}

}  // namespace

void gemm_handwritten(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                      int64_t ldc) {
  gemm_blocked<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_handwritten(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                      const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                      double* C, int64_t ldc) {
  gemm_blocked<double>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace dmix::kernels::cpu
