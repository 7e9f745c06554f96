// Guards against a compiler defect seen with GCC 12 at -O2 -march=native on AVX-512
// machines: small constant vectors with a repeated head and a zero tail were stored
// wrongly ({1, 1, 0, 0} became {1, 1, 1, 1}). The build disables the pass responsible
// (-fno-tree-slp-vectorize); if a flag change brings the defect back, this fails.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {
__attribute__((noinline)) int64_t sum_weighted(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (std::size_t i = 0; i < v.size(); ++i) s += v[i] * static_cast<int64_t>(i + 1);
  return s;
}
__attribute__((noinline)) double sum_weighted(const std::vector<double>& v) {
  double s = 0;
  for (std::size_t i = 0; i < v.size(); ++i) s += v[i] * static_cast<double>(i + 1);
  return s;
}
}  // namespace

TEST_CASE("compiler: small constant vectors are stored as written") {
  CHECK(sum_weighted(std::vector<int64_t>{1, 1, 0, 0}) == 3);
  CHECK(sum_weighted(std::vector<double>{2, 2, 0, 0}) == 6.0);
  CHECK(sum_weighted(std::vector<double>{1, 1, 1, 0}) == 6.0);
  CHECK(sum_weighted(std::vector<double>{7, 7, 7, 7, 0, 0, 0, 0}) == 70.0);
}

#include <cfloat>

#include "kernels/cpu/threads.h"

namespace {
__attribute__((noinline)) float scale(float x, float s) { return x * s; }
}  // namespace

TEST_CASE("threads: set_flush_denormal flushes denormal results to zero and can be undone") {
  const float tiny = FLT_MIN;  // smallest normal float
  if (!dmix::kernels::cpu::set_flush_denormal(true)) return;  // not an x86 build
  CHECK(scale(tiny, 0.25f) == 0.0f);
  dmix::kernels::cpu::set_flush_denormal(false);
  CHECK(scale(tiny, 0.25f) == tiny * 0.25f);
  CHECK(scale(tiny, 0.25f) > 0.0f);
}
