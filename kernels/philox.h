// Philox 4x32-10: the counter-based random number generator of Salmon, Moraes, Dror and
// Shaw, "Parallel random numbers: as easy as 1, 2, 3" (SC 2011), bit-compatible with
// Random123's philox4x32_10. A draw is a pure function of a 128-bit counter and a 64-bit
// key, so any element of a random tensor can be computed on its own, by any thread, on
// the CPU or a GPU, with the same result.
//
// One call: 10 rounds, each two 32x32->64 multiplies, a few xors and a key bump; it
// yields four 32-bit words. Header-only so CUDA kernels include the same code.
//
// dmix's counter layout (engine/rng.h): key = (seed lo, seed hi); counter = (block lo,
// block hi, stream lo, stream hi).
//
// Conversions from words to floating point say their interval in their name:
//   *_co: [0, 1) (closed-open), *_oc: (0, 1] (open-closed, safe for log).
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define DMIX_HOST_DEVICE __host__ __device__
#else
#define DMIX_HOST_DEVICE
#endif

namespace dmix::kernels {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;  // round multipliers
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // Weyl key increments (golden ratio, sqrt(3)-1)
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

struct PhiloxWords {
  uint32_t w[4];
};

DMIX_HOST_DEVICE inline PhiloxWords philox4x32_10(PhiloxWords ctr, uint32_t key0, uint32_t key1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {  // the key schedule bumps before rounds 2..10
      key0 += kPhiloxW0;
      key1 += kPhiloxW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * ctr.w[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * ctr.w[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = PhiloxWords{{hi1 ^ ctr.w[1] ^ key0, lo1, hi0 ^ ctr.w[3] ^ key1, lo0}};
  }
  return ctr;
}

// The four words of counter block `block` in stream `stream` of generator `seed`.
DMIX_HOST_DEVICE inline PhiloxWords philox_block(uint64_t seed, uint64_t stream, uint64_t block) {
  const PhiloxWords ctr{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                         static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)}};
  return philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// ---- words -> uniform floating point ----

// [0, 1) from the top 24 bits: every value exactly representable as a float, never 1.
DMIX_HOST_DEVICE inline float uniform_co_f32(uint32_t w) { return static_cast<float>(w >> 8) * 0x1.0p-24f; }
// [0, 1) with 32-bit resolution.
DMIX_HOST_DEVICE inline double uniform_co_f64(uint32_t w) { return static_cast<double>(w) * 0x1.0p-32; }
// (0, 1] with 32-bit resolution: never 0, so log() is finite.
DMIX_HOST_DEVICE inline double uniform_oc_f64(uint32_t w) { return (static_cast<double>(w) + 1.0) * 0x1.0p-32; }
// [0, 1) from 53 bits of two words: the full resolution of a double.
DMIX_HOST_DEVICE inline double uniform_co_f64(uint32_t hi, uint32_t lo) {
  const uint64_t bits = (static_cast<uint64_t>(hi) << 21) | (lo >> 11);
  return static_cast<double>(bits) * 0x1.0p-53;
}
// (0, 1] from 53 bits of two words.
DMIX_HOST_DEVICE inline double uniform_oc_f64(uint32_t hi, uint32_t lo) {
  const uint64_t bits = (static_cast<uint64_t>(hi) << 21) | (lo >> 11);
  return (static_cast<double>(bits) + 1.0) * 0x1.0p-53;
}

// 64 random bits from two words.
DMIX_HOST_DEVICE inline uint64_t join_words(uint32_t hi, uint32_t lo) {
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// floor(r * range / 2^64): an integer in [0, range) from 64 random bits (Lemire's
// multiply-shift without the rejection step; its bias is below range / 2^64).
DMIX_HOST_DEVICE inline uint64_t bounded_u64(uint64_t r, uint64_t range) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(r, range);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * range) >> 64);
#endif
}

// ---- Box-Muller ----

struct NormalPair {
  double z0, z1;
};

// Two independent standard normals from u1 in (0, 1] and u2 in [0, 1):
// r = sqrt(-2 ln u1), theta = 2 pi u2, (r cos theta, r sin theta).
DMIX_HOST_DEVICE inline NormalPair box_muller(double u1_oc, double u2_co) {
  const double r = std::sqrt(-2.0 * std::log(u1_oc));
  const double theta = 6.283185307179586476925286766559 * u2_co;
  return NormalPair{r * std::cos(theta), r * std::sin(theta)};
}

}  // namespace dmix::kernels
