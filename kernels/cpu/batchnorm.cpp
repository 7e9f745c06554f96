// Batch normalisation over (N, C, S) per channel: forward with batch statistics, forward
// with given statistics, and the training backward.
//
// Algorithm. Channel c owns N rows of S contiguous values. Threads split the channels,
// and one thread does all the passes of a channel back to back, so the channel's data
// (N*S values) is still in its cache for the second and third pass:
//   forward:  pass 1 sums x (mean), pass 2 sums (x - mean)^2 (biased variance; two
//             passes rather than sum-of-squares, which cancels badly when |mean| >> std),
//             pass 3 writes y = x*scale + shift with scale = invstd*w, shift = b - mean*scale.
//   backward: pass 1 sums g and g*(x - mean) together, pass 2 writes
//             gx = k*g + p*x + q, the per-channel constants folded from the formula.
// Sums are accumulated in double over a fixed number of interleaved lanes, so results do
// not depend on the thread count and f32 sums over large channels keep their precision.
// When rows are short (S < kMinRow, e.g. (N, C) input) the same passes run over columns
// instead: each thread takes a block of whole channels and sweeps the rows once per pass.
//
// Cost, M = N*C*S elements: forward ~6M flops, reads x three times (twice from cache),
// writes y once; backward ~8M flops, reads g and x twice (once from cache), writes gx.
#include "kernels/cpu/batchnorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace dmix::kernels::cpu {
namespace {

// Independent partial sums per row: enough vector chains to hide the add latency.
constexpr int kLanes = 32;
// Rows shorter than this are handled column-wise.
constexpr int64_t kMinRow = 32;
// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

double combine(const double* acc) {
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

template <class T>
double row_sum(const T* x, int64_t n) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(x[i + l]);
  for (int l = 0; i < n; ++i, ++l) acc[l] += static_cast<double>(x[i]);
  return combine(acc);
}

template <class T>
double row_squared_deviation(const T* x, int64_t n, double mean) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      double d = static_cast<double>(x[i + l]) - mean;
      acc[l] += d * d;
    }
  for (int l = 0; i < n; ++i, ++l) {
    double d = static_cast<double>(x[i]) - mean;
    acc[l] += d * d;
  }
  return combine(acc);
}

// Adds sum(g) and sum(g * (x - mean)) over one row to *sum_g and *sum_gxc.
template <class T>
void row_grad_sums(const T* g, const T* x, int64_t n, double mean, double* sum_g, double* sum_gxc) {
  double acc_g[kLanes] = {}, acc_gx[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      double gv = static_cast<double>(g[i + l]);
      acc_g[l] += gv;
      acc_gx[l] += gv * (static_cast<double>(x[i + l]) - mean);
    }
  for (int l = 0; i < n; ++i, ++l) {
    double gv = static_cast<double>(g[i]);
    acc_g[l] += gv;
    acc_gx[l] += gv * (static_cast<double>(x[i]) - mean);
  }
  *sum_g += combine(acc_g);
  *sum_gxc += combine(acc_gx);
}

template <class T>
void row_affine(const T* x, int64_t n, T scale, T shift, T* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale + shift;
}

template <class T>
void row_affine2(const T* g, const T* x, int64_t n, T k, T p, T q, T* out) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = g[i] * k + x[i] * p + q;
}

// Channels per block in the column-wise path: about 256 columns per block.
int64_t channels_per_block(int64_t S) { return std::max<int64_t>(1, 256 / std::max<int64_t>(S, 1)); }

// Per-channel affine constants y = x*scale + shift.
template <class T>
void affine_constants(double mean, double invstd, const T* weight, const T* bias, int64_t c, double* scale,
                      double* shift) {
  double w = weight ? static_cast<double>(weight[c]) : 1.0;
  double b = bias ? static_cast<double>(bias[c]) : 0.0;
  *scale = invstd * w;
  *shift = b - mean * *scale;
}

}  // namespace

template <class T>
void batch_norm_forward_train(const T* x, int64_t N, int64_t C, int64_t S, const T* weight, const T* bias, double eps,
                              T* y, T* mean, T* invstd, T* var) {
  const int64_t count = N * S;
  if (S >= kMinRow) {
#pragma omp parallel for schedule(static) if (N * C * S >= kParallelMin)
    for (int64_t c = 0; c < C; ++c) {
      double total = 0;
      for (int64_t n = 0; n < N; ++n) total += row_sum(x + (n * C + c) * S, S);
      const double m = total / static_cast<double>(count);
      double sq = 0;
      for (int64_t n = 0; n < N; ++n) sq += row_squared_deviation(x + (n * C + c) * S, S, m);
      const double v = sq / static_cast<double>(count);
      const double is = 1.0 / std::sqrt(v + eps);
      double scale, shift;
      affine_constants(m, is, weight, bias, c, &scale, &shift);
      for (int64_t n = 0; n < N; ++n)
        row_affine(x + (n * C + c) * S, S, static_cast<T>(scale), static_cast<T>(shift), y + (n * C + c) * S);
      mean[c] = static_cast<T>(m);
      invstd[c] = static_cast<T>(is);
      if (var) var[c] = static_cast<T>(v);
    }
    return;
  }
  const int64_t row = C * S, cb = channels_per_block(S);
  const int64_t blocks = (C + cb - 1) / cb;
#pragma omp parallel for schedule(static) if (N * C * S >= kParallelMin)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * cb, c1 = std::min(C, c0 + cb);
    const int64_t j0 = c0 * S, j1 = c1 * S;
    std::vector<double> acc(j1 - j0), m(c1 - c0), scale(c1 - c0), shift(c1 - c0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = j0; j < j1; ++j) acc[j - j0] += static_cast<double>(x[n * row + j]);
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0;
      for (int64_t k = 0; k < S; ++k) s += acc[c * S + k - j0];
      m[c - c0] = s / static_cast<double>(count);
    }
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = j0; j < j1; ++j) {
        double d = static_cast<double>(x[n * row + j]) - m[j / S - c0];
        acc[j - j0] += d * d;
      }
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0;
      for (int64_t k = 0; k < S; ++k) s += acc[c * S + k - j0];
      const double v = s / static_cast<double>(count);
      const double is = 1.0 / std::sqrt(v + eps);
      affine_constants(m[c - c0], is, weight, bias, c, &scale[c - c0], &shift[c - c0]);
      mean[c] = static_cast<T>(m[c - c0]);
      invstd[c] = static_cast<T>(is);
      if (var) var[c] = static_cast<T>(v);
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t c = j / S - c0;
        y[n * row + j] = static_cast<T>(x[n * row + j] * static_cast<T>(scale[c]) + static_cast<T>(shift[c]));
      }
  }
}

template <class T>
void batch_norm_apply(const T* x, int64_t N, int64_t C, int64_t S, const T* mean, const T* invstd, const T* weight,
                      const T* bias, T* y) {
  std::vector<T> scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    double sc, sh;
    affine_constants(static_cast<double>(mean[c]), static_cast<double>(invstd[c]), weight, bias, c, &sc, &sh);
    scale[c] = static_cast<T>(sc);
    shift[c] = static_cast<T>(sh);
  }
  if (S >= kMinRow) {
#pragma omp parallel for schedule(static) if (N * C * S >= kParallelMin)
    for (int64_t nc = 0; nc < N * C; ++nc) row_affine(x + nc * S, S, scale[nc % C], shift[nc % C], y + nc * S);
    return;
  }
  const int64_t row = C * S;
#pragma omp parallel for schedule(static) if (N * C * S >= kParallelMin)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < row; ++j) y[n * row + j] = x[n * row + j] * scale[j / S] + shift[j / S];
}

template <class T>
void batch_norm_backward_train(const T* g, const T* x, int64_t N, int64_t C, int64_t S, const T* mean,
                               const T* invstd, const T* weight, T* gx, T* gweight, T* gbias) {
  const double count = static_cast<double>(N * S);
  // Folds gx = w*invstd*(g - sum_g/M - xhat*sum(g*xhat)/M) into gx = k*g + p*x + q.
  auto fold = [&](int64_t c, double sum_g, double sum_gxc, double* k, double* p, double* q) {
    const double m = static_cast<double>(mean[c]), is = static_cast<double>(invstd[c]);
    const double w = weight ? static_cast<double>(weight[c]) : 1.0;
    *k = w * is;
    *p = -*k * is * is * sum_gxc / count;
    *q = -*k * sum_g / count - *p * m;
  };
  auto store_sums = [&](int64_t c, double sum_g, double sum_gxc) {
    if (gbias) gbias[c] = static_cast<T>(sum_g);
    if (gweight) gweight[c] = static_cast<T>(sum_gxc * static_cast<double>(invstd[c]));
  };
  if (S >= kMinRow) {
#pragma omp parallel for schedule(static) if (N * C * S >= kParallelMin)
    for (int64_t c = 0; c < C; ++c) {
      const double m = static_cast<double>(mean[c]);
      double sum_g = 0, sum_gxc = 0;
      for (int64_t n = 0; n < N; ++n) row_grad_sums(g + (n * C + c) * S, x + (n * C + c) * S, S, m, &sum_g, &sum_gxc);
      store_sums(c, sum_g, sum_gxc);
      if (!gx) continue;
      double k, p, q;
      fold(c, sum_g, sum_gxc, &k, &p, &q);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c) * S;
        row_affine2(g + off, x + off, S, static_cast<T>(k), static_cast<T>(p), static_cast<T>(q), gx + off);
      }
    }
    return;
  }
  const int64_t row = C * S, cb = channels_per_block(S);
  const int64_t blocks = (C + cb - 1) / cb;
#pragma omp parallel for schedule(static) if (N * C * S >= kParallelMin)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * cb, c1 = std::min(C, c0 + cb);
    const int64_t j0 = c0 * S, j1 = c1 * S;
    std::vector<double> acc_g(j1 - j0), acc_gx(j1 - j0);
    std::vector<T> k(c1 - c0), p(c1 - c0), q(c1 - c0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = j0; j < j1; ++j) {
        const double gv = static_cast<double>(g[n * row + j]);
        acc_g[j - j0] += gv;
        acc_gx[j - j0] += gv * (static_cast<double>(x[n * row + j]) - static_cast<double>(mean[j / S]));
      }
    for (int64_t c = c0; c < c1; ++c) {
      double sum_g = 0, sum_gxc = 0;
      for (int64_t s = 0; s < S; ++s) {
        sum_g += acc_g[c * S + s - j0];
        sum_gxc += acc_gx[c * S + s - j0];
      }
      store_sums(c, sum_g, sum_gxc);
      double kk, pp, qq;
      fold(c, sum_g, sum_gxc, &kk, &pp, &qq);
      k[c - c0] = static_cast<T>(kk);
      p[c - c0] = static_cast<T>(pp);
      q[c - c0] = static_cast<T>(qq);
    }
    if (!gx) continue;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t c = j / S - c0;
        gx[n * row + j] = g[n * row + j] * k[c] + x[n * row + j] * p[c] + q[c];
      }
  }
}

template void batch_norm_forward_train<float>(const float*, int64_t, int64_t, int64_t, const float*, const float*,
                                              double, float*, float*, float*, float*);
template void batch_norm_forward_train<double>(const double*, int64_t, int64_t, int64_t, const double*, const double*,
                                               double, double*, double*, double*, double*);
template void batch_norm_apply<float>(const float*, int64_t, int64_t, int64_t, const float*, const float*,
                                      const float*, const float*, float*);
template void batch_norm_apply<double>(const double*, int64_t, int64_t, int64_t, const double*, const double*,
                                       const double*, const double*, double*);
template void batch_norm_backward_train<float>(const float*, const float*, int64_t, int64_t, int64_t, const float*,
                                               const float*, const float*, float*, float*, float*);
template void batch_norm_backward_train<double>(const double*, const double*, int64_t, int64_t, int64_t,
                                                const double*, const double*, const double*, double*, double*,
                                                double*);

}  // namespace dmix::kernels::cpu
