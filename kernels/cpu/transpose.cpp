// Matrix transpose: out[j, i] = in[i, j] for an R x C row-major matrix.
//
// Algorithm: 32 x 32 tiles. A naive loop reads rows and writes columns, so every write
// touches a new cache line; within one tile the lines read and written (4 KiB per side
// for f32, 8 KiB for f64) stay in L1 until they are used in full. Threads take whole
// bands of 32 input rows, so no two write the same element.
//
// Cost: no arithmetic; one read and one write per element (memory bound).
#include "kernels/cpu/transpose.h"

#include <algorithm>

namespace dmix::kernels::cpu {
namespace {

constexpr int64_t kTile = 32;
constexpr int64_t kMinParallelElements = int64_t(1) << 16;

}  // namespace

template <class T>
void transpose(const T* in, int64_t R, int64_t C, T* out) {
  const int64_t row_tiles = (R + kTile - 1) / kTile;
#pragma omp parallel for schedule(static) if (R * C >= kMinParallelElements)
  for (int64_t rt = 0; rt < row_tiles; ++rt) {
    const int64_t r0 = rt * kTile, r1 = std::min(R, r0 + kTile);
    for (int64_t c0 = 0; c0 < C; c0 += kTile) {
      const int64_t c1 = std::min(C, c0 + kTile);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) out[c * R + r] = in[r * C + c];
    }
  }
}

template void transpose<float>(const float*, int64_t, int64_t, float*);
template void transpose<double>(const double*, int64_t, int64_t, double*);

}  // namespace dmix::kernels::cpu
