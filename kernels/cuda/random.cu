// Random tensors on a CUDA device from Philox 4x32-10: the CPU kernels of
// kernels/cpu/random.cpp, element for element.
//
// Algorithm. One thread per Philox counter block (grid-stride): it computes the block's
// four words and writes the 1-4 elements they serve, exactly as the CPU loop body does
// (uniforms by scaling the words, normals by Box-Muller, Bernoulli by comparing with p,
// integers by 64-bit multiply-shift). Gamma, beta and Dirichlet give one thread per
// gamma sample: Marsaglia-Tsang rejection reading the sample's own counter range, so a
// rejection in one thread never shifts another thread's numbers. Dirichlet writes the
// log-gammas of all rows to a scratch buffer, then one thread per row normalises them
// in column order, as the CPU does.
//
// Matching the CPU bit for bit. The arithmetic below is the CPU kernel's, operation by
// operation, in double precision wherever the CPU uses double. One subtlety: compilers
// fuse a multiply feeding an add into one fma (one rounding instead of two). GCC on an
// FMA machine (the CPU build uses -march=native) fuses `lo + scale * u`,
// `mean + std * z`, `1 + c * x`, `1 - 0.0331 x^2 x^2` and `0.5 x^2 + d * (...)`; nvcc
// fuses even more eagerly (also products with other uses). So here every multiply that
// meets an add is spelled out: __fma_rn where the CPU fuses, __dmul_rn (never fused)
// where it does not. What remains different is the CUDA math library: log, exp, sin
// and cos are within 1-2 ulp of the correctly rounded result (glibc: < 1 ulp), so
// normal, gamma, beta and dirichlet in f64 can differ from the CPU in the last bits
// (in f32 the final rounding to float almost always hides it). sqrt and division are
// correctly rounded on both. A CPU build without FMA (DMIX_NATIVE=OFF on an old CPU)
// rounds those products twice and then differs from this kernel by an ulp.
//
// Cost: one Philox call (20 integer multiplies) per 1-4 elements; Box-Muller adds a
// double log, sqrt and sin/cos per pair (double math: full rate on data-centre GPUs,
// 1/32 or 1/64 rate on consumer ones); Gamma about 1.05 Philox calls and 2-3 logs per
// sample. Memory traffic: one write per element (Dirichlet: plus 16 bytes per sample of
// scratch).
#include "kernels/cuda/random.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"
#include "kernels/philox.h"

namespace dmix::kernels::cuda {
namespace {

// ---- arithmetic pinned to what the CPU kernel compiles to -------------------------------

__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double fma_rn(double a, double b, double c) { return __fma_rn(a, b, c); }

// ---- per-element samplers (the CPU's expressions) ---------------------------------------

// lo + (hi - lo) * u, kept below hi after rounding to T.
template <class T>
struct UniformFinish {
  double lo, scale, hi;
  bool keep_below_hi;
  T below_hi;
  __device__ T operator()(double u) const {
    const T v = static_cast<T>(fma_rn(scale, u, lo));
    return (keep_below_hi && static_cast<double>(v) >= hi) ? below_hi : v;
  }
};

// log of one Gamma(alpha, 1) sample (Marsaglia-Tsang), sample `index` of the stream:
// kernels::cpu::log_gamma_sample, including its counter layout (2^20 blocks per sample).
__device__ double log_gamma_sample(uint64_t seed, uint64_t rng_stream, uint64_t index, double alpha) {
  const bool boost = alpha < 1.0;
  const double d = (boost ? alpha + 1.0 : alpha) - 1.0 / 3.0;
  const double c = 1.0 / sqrt(mul_rn(9.0, d));
  const uint64_t first_block = index << 20;
  double log_boost = 0.0;
  for (uint64_t t = 0;; ++t) {
    const PhiloxWords r = philox_block(seed, rng_stream, first_block + t);
    if (t == 0 && boost) log_boost = log(uniform_oc_f64(r.w[3])) / alpha;
    const double x = box_muller(uniform_oc_f64(r.w[0]), uniform_co_f64(r.w[1])).z0;
    double v = fma_rn(c, x, 1.0);
    if (v <= 0.0) continue;
    v = mul_rn(mul_rn(v, v), v);
    const double u = uniform_oc_f64(r.w[2]);
    const double x2 = mul_rn(x, x);
    const double squeeze = fma_rn(-mul_rn(0.0331, x2), x2, 1.0);
    if (u < squeeze || log(u) < fma_rn(0.5, x2, mul_rn(d, (1.0 - v) + log(v)))) {
      return (log(d) + log(v)) + log_boost;
    }
  }
}

// ---- fills: what one counter block writes ------------------------------------------------

template <class T>
struct UniformF32Fill {  // 4 elements per block, 24-bit uniforms
  static constexpr int kPerBlock = 4;
  T* out;
  UniformFinish<T> finish;
  __device__ void operator()(const PhiloxWords& r, int64_t first, int count) const {
#pragma unroll
    for (int l = 0; l < kPerBlock; ++l)
      if (l < count) out[first + l] = finish(uniform_co_f32(r.w[l]));
  }
};

template <class T>
struct UniformF64Fill {  // 2 elements per block, 53-bit uniforms
  static constexpr int kPerBlock = 2;
  T* out;
  UniformFinish<T> finish;
  __device__ void operator()(const PhiloxWords& r, int64_t first, int count) const {
#pragma unroll
    for (int l = 0; l < kPerBlock; ++l)
      if (l < count) out[first + l] = finish(uniform_co_f64(r.w[2 * l], r.w[2 * l + 1]));
  }
};

template <class T>
struct NormalF32Fill {  // 4 normals per block from two 32-bit Box-Muller pairs
  static constexpr int kPerBlock = 4;
  T* out;
  double mean, std;
  __device__ void operator()(const PhiloxWords& r, int64_t first, int count) const {
    const NormalPair a = box_muller(uniform_oc_f64(r.w[0]), uniform_co_f64(r.w[1]));
    const NormalPair b = box_muller(uniform_oc_f64(r.w[2]), uniform_co_f64(r.w[3]));
    const double z[4] = {a.z0, a.z1, b.z0, b.z1};
#pragma unroll
    for (int l = 0; l < kPerBlock; ++l)
      if (l < count) out[first + l] = static_cast<T>(fma_rn(std, z[l], mean));
  }
};

template <class T>
struct NormalF64Fill {  // 2 normals per block from one 53-bit Box-Muller pair
  static constexpr int kPerBlock = 2;
  T* out;
  double mean, std;
  __device__ void operator()(const PhiloxWords& r, int64_t first, int count) const {
    const NormalPair a = box_muller(uniform_oc_f64(r.w[0], r.w[1]), uniform_co_f64(r.w[2], r.w[3]));
    const double z[2] = {a.z0, a.z1};
#pragma unroll
    for (int l = 0; l < kPerBlock; ++l)
      if (l < count) out[first + l] = static_cast<T>(fma_rn(std, z[l], mean));
  }
};

template <class T>
struct BernoulliFill {
  static constexpr int kPerBlock = 4;
  T* out;
  double p;
  __device__ void operator()(const PhiloxWords& r, int64_t first, int count) const {
#pragma unroll
    for (int l = 0; l < kPerBlock; ++l)
      if (l < count) out[first + l] = uniform_co_f64(r.w[l]) < p ? T(1) : T(0);
  }
};

struct RandintFill {
  static constexpr int kPerBlock = 2;
  int64_t* out;
  uint64_t lo, range;  // unsigned: hi - lo may exceed INT64_MAX
  __device__ void operator()(const PhiloxWords& r, int64_t first, int count) const {
#pragma unroll
    for (int l = 0; l < kPerBlock; ++l)
      if (l < count) out[first + l] = static_cast<int64_t>(lo + bounded_u64(join_words(r.w[2 * l], r.w[2 * l + 1]), range));
  }
};

struct RawWordsFill {
  static constexpr int kPerBlock = 4;
  uint32_t* out;
  __device__ void operator()(const PhiloxWords& r, int64_t first, int count) const {
#pragma unroll
    for (int l = 0; l < kPerBlock; ++l)
      if (l < count) out[first + l] = r.w[l];
  }
};

// ---- kernels ---------------------------------------------------------------------------------

// Thread per counter block b = first_block + 0..: calls fill for the elements
// [b' * kPerBlock, ...) it serves, b' = b - first_block.
template <class Fill>
__global__ void block_kernel(uint64_t seed, uint64_t rng_stream, uint64_t first_block, int64_t n, Fill fill) {
  constexpr int kPerBlock = Fill::kPerBlock;
  const int64_t blocks = (n + kPerBlock - 1) / kPerBlock;
  for (int64_t b : GridStride(blocks)) {
    const PhiloxWords r = philox_block(seed, rng_stream, first_block + static_cast<uint64_t>(b));
    const int64_t first = b * kPerBlock;
    fill(r, first, static_cast<int>(n - first < kPerBlock ? n - first : kPerBlock));
  }
}

template <class T>
__global__ void gamma_kernel(uint64_t seed, uint64_t rng_stream, double alpha, T* out, int64_t n) {
  for (int64_t i : GridStride(n)) out[i] = static_cast<T>(exp(log_gamma_sample(seed, rng_stream, uint64_t(i), alpha)));
}

template <class T>
__global__ void beta_kernel(uint64_t seed, uint64_t rng_stream, double a, double b, T* out, int64_t n) {
  for (int64_t i : GridStride(n)) {
    const double log_x = log_gamma_sample(seed, rng_stream, 2 * static_cast<uint64_t>(i), a);
    const double log_y = log_gamma_sample(seed, rng_stream, 2 * static_cast<uint64_t>(i) + 1, b);
    out[i] = static_cast<T>(1.0 / (1.0 + exp(log_y - log_x)));
  }
}

// logs[r * k + j] = log Gamma(alpha[j]) sample r * k + j.
__global__ void dirichlet_logs_kernel(uint64_t seed, uint64_t rng_stream, const double* alpha, int64_t k,
                                      double* logs, int64_t samples) {
  for (int64_t s : GridStride(samples)) logs[s] = log_gamma_sample(seed, rng_stream, uint64_t(s), alpha[s % k]);
}

// One thread per row: exp(log - row max) / row sum, summed in column order.
template <class T>
__global__ void dirichlet_normalise_kernel(double* logs, int64_t k, T* out, int64_t rows) {
  for (int64_t r : GridStride(rows)) {
    double* row = logs + r * k;
    double largest = -INFINITY;
    for (int64_t j = 0; j < k; ++j) largest = largest < row[j] ? row[j] : largest;  // std::max(largest, row[j])
    double total = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      row[j] = exp(row[j] - largest);
      total += row[j];
    }
    for (int64_t j = 0; j < k; ++j) out[r * k + j] = static_cast<T>(row[j] / total);
  }
}

// ---- host side ---------------------------------------------------------------------------------

template <class Fill>
void launch_blocks(const char* op, uint64_t seed, uint64_t rng_stream, uint64_t first_block, int64_t n, int device,
                   const Fill& fill) {
  check_device(device, op);
  check(n >= 0, op, "negative element count ", n);
  if (n == 0) return;
  const int64_t blocks = (n + Fill::kPerBlock - 1) / Fill::kPerBlock;
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  block_kernel<<<blocks_for(blocks), kThreads, 0, st>>>(seed, rng_stream, first_block, n, fill);
  check_launch(op);
}

// The largest T strictly below hi (where lo + (hi - lo) u may round up to): the CPU's rule.
template <class T>
T largest_below(double hi) {
  T h = static_cast<T>(hi);
  while (static_cast<double>(h) >= hi) h = std::nextafter(h, -std::numeric_limits<T>::infinity());
  return h;
}

template <class T>
UniformFinish<T> uniform_finish(double lo, double hi) {
  const bool keep_below_hi = lo < hi;
  return UniformFinish<T>{lo, hi - lo, hi, keep_below_hi, keep_below_hi ? largest_below<T>(hi) : static_cast<T>(hi)};
}

}  // namespace

template <class T>
void uniform(uint64_t seed, uint64_t rng_stream, double lo, double hi, T* out, int64_t n, int device) {
  if constexpr (sizeof(T) == 4) {
    launch_blocks("cuda::uniform", seed, rng_stream, 0, n, device, UniformF32Fill<T>{out, uniform_finish<T>(lo, hi)});
  } else {
    launch_blocks("cuda::uniform", seed, rng_stream, 0, n, device, UniformF64Fill<T>{out, uniform_finish<T>(lo, hi)});
  }
}

template <class T>
void normal(uint64_t seed, uint64_t rng_stream, double mean, double std, T* out, int64_t n, int device) {
  if constexpr (sizeof(T) == 4) {
    launch_blocks("cuda::normal", seed, rng_stream, 0, n, device, NormalF32Fill<T>{out, mean, std});
  } else {
    launch_blocks("cuda::normal", seed, rng_stream, 0, n, device, NormalF64Fill<T>{out, mean, std});
  }
}

template <class T>
void bernoulli(uint64_t seed, uint64_t rng_stream, double p, T* out, int64_t n, int device) {
  launch_blocks("cuda::bernoulli", seed, rng_stream, 0, n, device, BernoulliFill<T>{out, p});
}

void randint(uint64_t seed, uint64_t rng_stream, int64_t lo, int64_t hi, int64_t* out, int64_t n, int device) {
  check(lo < hi, "cuda::randint", "needs lo < hi, got [", lo, ", ", hi, ")");
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  launch_blocks("cuda::randint", seed, rng_stream, 0, n, device, RandintFill{out, static_cast<uint64_t>(lo), range});
}

void philox_blocks(uint64_t seed, uint64_t rng_stream, uint64_t first_block, int64_t blocks, uint32_t* out,
                   int device) {
  check(blocks >= 0, "cuda::philox_blocks", "negative block count ", blocks);
  launch_blocks("cuda::philox_blocks", seed, rng_stream, first_block, 4 * blocks, device, RawWordsFill{out});
}

template <class T>
void gamma(uint64_t seed, uint64_t rng_stream, double alpha, T* out, int64_t n, int device) {
  const char* op = "cuda::gamma";
  check_device(device, op);
  check(alpha > 0.0, op, "alpha must be > 0, got ", alpha);
  if (n <= 0) return;
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  gamma_kernel<T><<<blocks_for(n), kThreads, 0, st>>>(seed, rng_stream, alpha, out, n);
  check_launch(op);
}

template <class T>
void beta(uint64_t seed, uint64_t rng_stream, double a, double b, T* out, int64_t n, int device) {
  const char* op = "cuda::beta";
  check_device(device, op);
  check(a > 0.0 && b > 0.0, op, "a and b must be > 0, got a ", a, ", b ", b);
  if (n <= 0) return;
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  beta_kernel<T><<<blocks_for(n), kThreads, 0, st>>>(seed, rng_stream, a, b, out, n);
  check_launch(op);
}

template <class T>
void dirichlet(uint64_t seed, uint64_t rng_stream, const double* alpha, int64_t k, T* out, int64_t rows,
               int device) {
  const char* op = "cuda::dirichlet";
  check_device(device, op);
  check(k >= 1 && rows >= 0, op, "needs k >= 1 and rows >= 0, got k ", k, ", rows ", rows);
  for (int64_t j = 0; j < k; ++j) check(alpha[j] > 0.0, op, "every alpha must be > 0, got ", alpha[j]);
  if (rows == 0) return;
  const int64_t samples = rows * k;
  const size_t alpha_bytes = static_cast<size_t>(k) * sizeof(double);
  const size_t logs_bytes = static_cast<size_t>(samples) * sizeof(double);
  // Both are released while the kernels may still run: the next user of these blocks
  // queues its work behind them on the same stream (kernels/cuda/stream.h).
  const DeviceScratch alpha_buffer(alpha_bytes, device), logs_buffer(logs_bytes, device);
  double* alpha_d = alpha_buffer.as<double>();
  double* logs = logs_buffer.as<double>();
  copy_host_to_device(alpha_d, alpha, alpha_bytes, device);  // queued on the stream, ahead of the kernels
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  dirichlet_logs_kernel<<<blocks_for(samples), kThreads, 0, st>>>(seed, rng_stream, alpha_d, k, logs, samples);
  check_launch(op);
  dirichlet_normalise_kernel<T><<<blocks_for(rows), kThreads, 0, st>>>(logs, k, out, rows);
  check_launch(op);
}

template void uniform<float>(uint64_t, uint64_t, double, double, float*, int64_t, int);
template void uniform<double>(uint64_t, uint64_t, double, double, double*, int64_t, int);
template void normal<float>(uint64_t, uint64_t, double, double, float*, int64_t, int);
template void normal<double>(uint64_t, uint64_t, double, double, double*, int64_t, int);
template void bernoulli<float>(uint64_t, uint64_t, double, float*, int64_t, int);
template void bernoulli<double>(uint64_t, uint64_t, double, double*, int64_t, int);
template void bernoulli<int64_t>(uint64_t, uint64_t, double, int64_t*, int64_t, int);
template void bernoulli<uint8_t>(uint64_t, uint64_t, double, uint8_t*, int64_t, int);
template void gamma<float>(uint64_t, uint64_t, double, float*, int64_t, int);
template void gamma<double>(uint64_t, uint64_t, double, double*, int64_t, int);
template void beta<float>(uint64_t, uint64_t, double, double, float*, int64_t, int);
template void beta<double>(uint64_t, uint64_t, double, double, double*, int64_t, int);
template void dirichlet<float>(uint64_t, uint64_t, const double*, int64_t, float*, int64_t, int);
template void dirichlet<double>(uint64_t, uint64_t, const double*, int64_t, double*, int64_t, int);

}  // namespace dmix::kernels::cuda
