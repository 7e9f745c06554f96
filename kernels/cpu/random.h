// Random tensors from Philox 4x32-10 (kernels/philox.h). Every kernel takes the
// generator's (seed, stream) and writes n elements; element i is a pure function of
// (seed, stream, i), so results are identical for any thread count.
//
// Which counter block and words element i reads (word = lane of a block):
//   uniform f32, bernoulli: block i/4, word i%4
//   uniform f64:            block i/2, words 2(i%2), 2(i%2)+1 (53-bit uniform)
//   normal f32:             block i/4; words (0,1) -> normals 0,1; words (2,3) -> 2,3
//   normal f64:             block i/2; the block's 4 words -> two 53-bit uniforms -> normals 0,1
//   randint:                block i/2, words 2(i%2) (high), 2(i%2)+1 (low) -> 64 bits
//   gamma sample j:         blocks j*2^20 + t, t = 0, 1, ... (its own range for rejection)
//   beta element i:         gamma samples 2i (alpha = a) and 2i+1 (alpha = b)
//   dirichlet row r, col k: gamma sample r*K + k
//   randperm:               Fisher-Yates step i (n-1 down to 1) uses 64 bits as randint element i
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

// lo + (hi - lo) * U with U in [0, 1); the result stays below hi after rounding (when lo < hi).
template <class T> void uniform(uint64_t seed, uint64_t stream, double lo, double hi, T* out, int64_t n);
// mean + std * Z, Z standard normal by Box-Muller.
template <class T> void normal(uint64_t seed, uint64_t stream, double mean, double std, T* out, int64_t n);
// 1 with probability p, else 0 (T = float, double, int64_t, uint8_t).
template <class T> void bernoulli(uint64_t seed, uint64_t stream, double p, T* out, int64_t n);
// Integers in [lo, hi); requires lo < hi.
void randint(uint64_t seed, uint64_t stream, int64_t lo, int64_t hi, int64_t* out, int64_t n);
// A uniformly random permutation of 0..n-1 (Fisher-Yates; sequential, O(n)).
void randperm(uint64_t seed, uint64_t stream, int64_t* out, int64_t n);
// Gamma(alpha, 1) by Marsaglia-Tsang; alpha < 1 via Gamma(alpha+1) * U^(1/alpha). alpha > 0.
template <class T> void gamma(uint64_t seed, uint64_t stream, double alpha, T* out, int64_t n);
// Beta(a, b) = X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b), formed in log space so tiny
// gammas never give 0/0.
template <class T> void beta(uint64_t seed, uint64_t stream, double a, double b, T* out, int64_t n);
// rows x k draws of Dirichlet(alpha[0..k)): normalised gammas (in log space); each row sums to 1.
template <class T>
void dirichlet(uint64_t seed, uint64_t stream, const double* alpha, int64_t k, T* out, int64_t rows);

// log of one Gamma(alpha, 1) sample: gamma sample `index` of (seed, stream).
double log_gamma_sample(uint64_t seed, uint64_t stream, uint64_t index, double alpha);

}  // namespace dmix::kernels::cpu
