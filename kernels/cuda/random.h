// Random tensors on a CUDA device from Philox 4x32-10: the twins of
// kernels/cpu/random.h, with the same arguments plus the device the output lives on.
// Element i reads the same counter block and words as on the CPU (the layout is in
// kernels/cpu/random.h), so for the same (seed, stream) the GPU produces the CPU's
// numbers:
//   - bit for bit: the raw words, uniform, bernoulli, randint;
//   - within a few units in the last place (f64) or, almost always, bit for bit (f32):
//     normal, gamma, beta, dirichlet. Their arithmetic follows the CPU kernel operation
//     by operation (including which multiply-adds are fused, see random.cu); the only
//     difference left is the CUDA math library's log, exp, sin and cos (1-2 ulp from
//     the correctly rounded value, where glibc is within 1 ulp). A gamma sample whose
//     accept/reject test falls within those few ulp of its threshold could decide
//     differently; at ~1e-15 per sample, that never happens in the tests.
// randperm has no device kernel: Fisher-Yates is sequential, so the engine runs the CPU
// kernel and copies the permutation over (engine/rng.cpp).
//
// All pointers are device pointers on `device` except dirichlet's alpha, a host array
// read before the call returns. The work is queued on the device's stream; the call
// returns before it is done.
#pragma once
#include <cstdint>

namespace dmix::kernels::cuda {

// T = float, double.
template <class T>
void uniform(uint64_t seed, uint64_t stream, double lo, double hi, T* out, int64_t n, int device);
template <class T>
void normal(uint64_t seed, uint64_t stream, double mean, double std, T* out, int64_t n, int device);
// T = float, double, int64_t, uint8_t.
template <class T> void bernoulli(uint64_t seed, uint64_t stream, double p, T* out, int64_t n, int device);
void randint(uint64_t seed, uint64_t stream, int64_t lo, int64_t hi, int64_t* out, int64_t n, int device);
// T = float, double.
template <class T> void gamma(uint64_t seed, uint64_t stream, double alpha, T* out, int64_t n, int device);
template <class T>
void beta(uint64_t seed, uint64_t stream, double a, double b, T* out, int64_t n, int device);
template <class T>
void dirichlet(uint64_t seed, uint64_t stream, const double* alpha, int64_t k, T* out, int64_t rows, int device);

// The raw stream: out[4 * b + w] = word w of counter block first_block + b, for
// b < blocks. What every sampler above is built from; tests hold it against the CPU.
void philox_blocks(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks, uint32_t* out, int device);

}  // namespace dmix::kernels::cuda
