// Random tensors: each element is computed from its own Philox 4x32-10 counter block
// (layout in random.h), so the loops parallelise over blocks with no shared state and
// give bit-identical results for any number of threads.
//
// Algorithms: uniforms by scaling the words (24 bits for f32, 53 bits for f64);
// normals by Box-Muller; Bernoulli by comparing a 32-bit uniform with p; integers by
// 64-bit multiply-shift; permutations by Fisher-Yates; Gamma by Marsaglia-Tsang
// (ACM TOMS 2000) with the U^(1/alpha) boost for alpha < 1; Beta and Dirichlet from
// normalised gammas.
//
// Cost: one Philox call (20 multiplies) per 1-4 elements; Box-Muller adds a log, a sqrt
// and a sin/cos per pair; Gamma about 1.05 Philox calls and 2 logs per sample on
// average (acceptance rate >= 0.95). Memory traffic: one write per element.
#include "kernels/cpu/random.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/philox.h"

namespace dmix::kernels::cpu {
namespace {

constexpr int64_t kMinParallelBlocks = 2048;  // below this, threads cost more than they save

// Calls f(words, first, count) for each counter block b = 0.. of a stream, where the
// block serves elements [first, first + count) with first = b * PerBlock.
template <int PerBlock, class F>
void for_each_block(uint64_t seed, uint64_t stream, int64_t n, F f) {
  const int64_t blocks = (n + PerBlock - 1) / PerBlock;
#pragma omp parallel for schedule(static) if (blocks >= kMinParallelBlocks)
  for (int64_t b = 0; b < blocks; ++b) {
    const PhiloxWords r = philox_block(seed, stream, static_cast<uint64_t>(b));
    const int64_t first = b * PerBlock;
    const int count = static_cast<int>(std::min<int64_t>(PerBlock, n - first));
    f(r, first, count);
  }
}

// The largest T strictly below hi: where lo + (hi - lo) * U may round up to.
template <class T>
T largest_below(double hi) {
  T h = static_cast<T>(hi);
  while (static_cast<double>(h) >= hi) h = std::nextafter(h, -std::numeric_limits<T>::infinity());
  return h;
}

}  // namespace

template <class T>
void uniform(uint64_t seed, uint64_t stream, double lo, double hi, T* out, int64_t n) {
  const double scale = hi - lo;
  const bool keep_below_hi = lo < hi;
  const T below_hi = keep_below_hi ? largest_below<T>(hi) : static_cast<T>(hi);
  auto finish = [=](double u) {
    const T v = static_cast<T>(lo + scale * u);
    return (keep_below_hi && static_cast<double>(v) >= hi) ? below_hi : v;
  };
  if constexpr (sizeof(T) == 4) {
    for_each_block<4>(seed, stream, n, [&](const PhiloxWords& r, int64_t first, int count) {
      for (int l = 0; l < count; ++l) out[first + l] = finish(uniform_co_f32(r.w[l]));
    });
  } else {
    for_each_block<2>(seed, stream, n, [&](const PhiloxWords& r, int64_t first, int count) {
      for (int l = 0; l < count; ++l) out[first + l] = finish(uniform_co_f64(r.w[2 * l], r.w[2 * l + 1]));
    });
  }
}

template <class T>
void normal(uint64_t seed, uint64_t stream, double mean, double std, T* out, int64_t n) {
  if constexpr (sizeof(T) == 4) {
    for_each_block<4>(seed, stream, n, [&](const PhiloxWords& r, int64_t first, int count) {
      const NormalPair a = box_muller(uniform_oc_f64(r.w[0]), uniform_co_f64(r.w[1]));
      const NormalPair b = box_muller(uniform_oc_f64(r.w[2]), uniform_co_f64(r.w[3]));
      const double z[4] = {a.z0, a.z1, b.z0, b.z1};
      for (int l = 0; l < count; ++l) out[first + l] = static_cast<T>(mean + std * z[l]);
    });
  } else {
    for_each_block<2>(seed, stream, n, [&](const PhiloxWords& r, int64_t first, int count) {
      const NormalPair a = box_muller(uniform_oc_f64(r.w[0], r.w[1]), uniform_co_f64(r.w[2], r.w[3]));
      const double z[2] = {a.z0, a.z1};
      for (int l = 0; l < count; ++l) out[first + l] = static_cast<T>(mean + std * z[l]);
    });
  }
}

template <class T>
void bernoulli(uint64_t seed, uint64_t stream, double p, T* out, int64_t n) {
  for_each_block<4>(seed, stream, n, [&](const PhiloxWords& r, int64_t first, int count) {
    for (int l = 0; l < count; ++l) out[first + l] = uniform_co_f64(r.w[l]) < p ? T(1) : T(0);
  });
}

void randint(uint64_t seed, uint64_t stream, int64_t lo, int64_t hi, int64_t* out, int64_t n) {
  // Unsigned arithmetic: hi - lo may exceed INT64_MAX.
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  for_each_block<2>(seed, stream, n, [&](const PhiloxWords& r, int64_t first, int count) {
    for (int l = 0; l < count; ++l) {
      const uint64_t offset = bounded_u64(join_words(r.w[2 * l], r.w[2 * l + 1]), range);
      out[first + l] = static_cast<int64_t>(static_cast<uint64_t>(lo) + offset);
    }
  });
}

void randperm(uint64_t seed, uint64_t stream, int64_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = i;
  for (int64_t i = n - 1; i >= 1; --i) {
    const PhiloxWords r = philox_block(seed, stream, static_cast<uint64_t>(i) / 2);
    const int l = static_cast<int>(i % 2) * 2;
    const uint64_t j = bounded_u64(join_words(r.w[l], r.w[l + 1]), static_cast<uint64_t>(i) + 1);
    std::swap(out[i], out[j]);
  }
}

double log_gamma_sample(uint64_t seed, uint64_t stream, uint64_t index, double alpha) {
  const bool boost = alpha < 1.0;
  const double d = (boost ? alpha + 1.0 : alpha) - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  // 2^20 blocks per sample: the chance that a sample rejects that many times is
  // below 0.05^(2^20), so ranges never overlap in practice.
  const uint64_t first_block = index << 20;
  double log_boost = 0.0;
  for (uint64_t t = 0;; ++t) {
    const PhiloxWords r = philox_block(seed, stream, first_block + t);
    if (t == 0 && boost) log_boost = std::log(uniform_oc_f64(r.w[3])) / alpha;
    const double x = box_muller(uniform_oc_f64(r.w[0]), uniform_co_f64(r.w[1])).z0;
    double v = 1.0 + c * x;
    if (v <= 0.0) continue;
    v = v * v * v;
    const double u = uniform_oc_f64(r.w[2]);
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2 || std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) {
      return std::log(d) + std::log(v) + log_boost;
    }
  }
}

template <class T>
void gamma(uint64_t seed, uint64_t stream, double alpha, T* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kMinParallelBlocks)
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<T>(std::exp(log_gamma_sample(seed, stream, static_cast<uint64_t>(i), alpha)));
  }
}

template <class T>
void beta(uint64_t seed, uint64_t stream, double a, double b, T* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kMinParallelBlocks)
  for (int64_t i = 0; i < n; ++i) {
    const double log_x = log_gamma_sample(seed, stream, 2 * static_cast<uint64_t>(i), a);
    const double log_y = log_gamma_sample(seed, stream, 2 * static_cast<uint64_t>(i) + 1, b);
    out[i] = static_cast<T>(1.0 / (1.0 + std::exp(log_y - log_x)));
  }
}

template <class T>
void dirichlet(uint64_t seed, uint64_t stream, const double* alpha, int64_t k, T* out, int64_t rows) {
#pragma omp parallel if (rows * k >= kMinParallelBlocks)
  {
    std::vector<double> logs(static_cast<size_t>(k));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      double largest = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < k; ++j) {
        logs[j] = log_gamma_sample(seed, stream, static_cast<uint64_t>(r * k + j), alpha[j]);
        largest = std::max(largest, logs[j]);
      }
      double total = 0.0;
      for (int64_t j = 0; j < k; ++j) {
        logs[j] = std::exp(logs[j] - largest);
        total += logs[j];
      }
      for (int64_t j = 0; j < k; ++j) out[r * k + j] = static_cast<T>(logs[j] / total);
    }
  }
}

template void uniform<float>(uint64_t, uint64_t, double, double, float*, int64_t);
template void uniform<double>(uint64_t, uint64_t, double, double, double*, int64_t);
template void normal<float>(uint64_t, uint64_t, double, double, float*, int64_t);
template void normal<double>(uint64_t, uint64_t, double, double, double*, int64_t);
template void bernoulli<float>(uint64_t, uint64_t, double, float*, int64_t);
template void bernoulli<double>(uint64_t, uint64_t, double, double*, int64_t);
template void bernoulli<int64_t>(uint64_t, uint64_t, double, int64_t*, int64_t);
template void bernoulli<uint8_t>(uint64_t, uint64_t, double, uint8_t*, int64_t);
template void gamma<float>(uint64_t, uint64_t, double, float*, int64_t);
template void gamma<double>(uint64_t, uint64_t, double, double*, int64_t);
template void beta<float>(uint64_t, uint64_t, double, double, float*, int64_t);
template void beta<double>(uint64_t, uint64_t, double, double, double*, int64_t);
template void dirichlet<float>(uint64_t, uint64_t, const double*, int64_t, float*, int64_t);
template void dirichlet<double>(uint64_t, uint64_t, const double*, int64_t, double*, int64_t);

}  // namespace dmix::kernels::cpu
