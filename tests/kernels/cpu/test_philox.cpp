// Philox 4x32-10 against Random123's published known-answer vectors (kat_vectors),
// and the word -> floating point conversions at the ends of their intervals.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>

#include "kernels/philox.h"

using dmix::kernels::PhiloxWords;

namespace {

void check_known_answer(PhiloxWords ctr, uint32_t key0, uint32_t key1, PhiloxWords expected) {
  const PhiloxWords got = dmix::kernels::philox4x32_10(ctr, key0, key1);
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(got.w[i] == expected.w[i]);
  }
}

}  // namespace

TEST_CASE("philox4x32_10 matches the Random123 known-answer vectors") {
  SUBCASE("counter and key all zeros") {
    check_known_answer({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
  }
  SUBCASE("counter and key all ones") {
    const uint32_t f = 0xffffffffu;
    check_known_answer({{f, f, f, f}}, f, f, {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
  }
  SUBCASE("digits of pi") {
    check_known_answer({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
                       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
  }
}

TEST_CASE("philox_block lays out (block, stream) as the counter and the seed as the key") {
  const uint64_t seed = 0x299f31d0a4093822ull;
  const uint64_t stream = 0x0370734413198a2eull;
  const uint64_t block = 0x85a308d3243f6a88ull;
  const PhiloxWords got = dmix::kernels::philox_block(seed, stream, block);
  const PhiloxWords expected{{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}};
  for (int i = 0; i < 4; ++i) CHECK(got.w[i] == expected.w[i]);
  // Neighbouring blocks and streams give unrelated words.
  const PhiloxWords next = dmix::kernels::philox_block(seed, stream, block + 1);
  const PhiloxWords other = dmix::kernels::philox_block(seed, stream + 1, block);
  CHECK(next.w[0] != got.w[0]);
  CHECK(other.w[0] != got.w[0]);
}

TEST_CASE("word to uniform conversions stay inside their documented intervals") {
  using namespace dmix::kernels;
  const uint32_t zero = 0, ones = 0xffffffffu;
  CHECK(uniform_co_f32(zero) == 0.0f);
  CHECK(uniform_co_f32(ones) < 1.0f);
  CHECK(uniform_co_f32(ones) == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(uniform_co_f64(zero) == 0.0);
  CHECK(uniform_co_f64(ones) < 1.0);
  CHECK(uniform_oc_f64(zero) > 0.0);
  CHECK(uniform_oc_f64(ones) == 1.0);
  CHECK(uniform_co_f64(zero, zero) == 0.0);
  CHECK(uniform_co_f64(ones, ones) < 1.0);
  CHECK(uniform_co_f64(ones, ones) == 1.0 - 0x1.0p-53);
  CHECK(uniform_oc_f64(zero, zero) == 0x1.0p-53);
  CHECK(uniform_oc_f64(ones, ones) == 1.0);
  // Midpoints land where they should.
  CHECK(uniform_co_f32(0x80000000u) == 0.5f);
  CHECK(uniform_co_f64(0x80000000u, 0u) == 0.5);
}

TEST_CASE("bounded_u64 maps 64 random bits onto [0, range)") {
  using dmix::kernels::bounded_u64;
  CHECK(bounded_u64(0, 10) == 0);
  CHECK(bounded_u64(~uint64_t{0}, 10) == 9);
  CHECK(bounded_u64(uint64_t{1} << 63, 10) == 5);
  CHECK(bounded_u64(~uint64_t{0}, ~uint64_t{0}) == ~uint64_t{0} - 1);
  CHECK(bounded_u64(12345, 1) == 0);
}

TEST_CASE("box_muller gives the polar form r (cos, sin) with r = sqrt(-2 ln u1)") {
  using dmix::kernels::box_muller;
  const auto at_one = box_muller(1.0, 0.3);  // r = 0
  CHECK(at_one.z0 == 0.0);
  CHECK(at_one.z1 == 0.0);
  const double u1 = std::exp(-2.0);  // r = 2
  const auto quarter = box_muller(u1, 0.25);  // theta = pi/2
  CHECK(quarter.z0 == doctest::Approx(0.0).epsilon(1e-12).scale(1.0));
  CHECK(quarter.z1 == doctest::Approx(2.0).epsilon(1e-12));
  const auto zero_angle = box_muller(u1, 0.0);
  CHECK(zero_angle.z0 == doctest::Approx(2.0).epsilon(1e-12));
  CHECK(zero_angle.z1 == 0.0);
}
