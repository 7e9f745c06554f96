// Matrix transpose on a CUDA device: out[j, i] = in[i, j] for an R x C row-major matrix.
//
// Algorithm: shared-memory tiles. A block of 32 x 8 threads moves one 32 x 32 tile: it
// reads the tile row by row (each warp reads 32 consecutive elements: coalesced) into
// shared memory, then writes it out column by column of the tile, which are rows of
// the output (again 32 consecutive addresses per warp). Reading rows and writing
// columns straight from global memory would scatter every write over 32 cache lines.
// The tile is padded to 33 columns so the column-wise reads from shared memory fall in
// 32 different banks (f32; f64 reads are served per half warp, also conflict-free). Tiles past the grid's 65535 rows are taken by a grid-stride loop.
//
// Cost: no arithmetic; one coalesced read and one coalesced write per element.
#include "kernels/cuda/transpose.h"

#include "kernels/cuda/check.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

constexpr int kTile = 32;
constexpr int kRowsPerPass = 8;  // threadIdx.y steps; each thread moves kTile / kRowsPerPass elements

template <class T>
__global__ void __launch_bounds__(kTile * kRowsPerPass)
    transpose_kernel(const T* __restrict__ in, int64_t R, int64_t C, T* __restrict__ out) {
  __shared__ T tile[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t row_tiles = (R + kTile - 1) / kTile;
  for (int64_t rt = blockIdx.y; rt < row_tiles; rt += gridDim.y) {
    const int64_t r0 = rt * kTile;
    for (int y = ty; y < kTile; y += kRowsPerPass) {
      const int64_t r = r0 + y, c = c0 + tx;
      if (r < R && c < C) tile[y][tx] = in[r * C + c];
    }
    __syncthreads();
    // Output row c0 + y holds input column c0 + y; its entries r0 + tx are consecutive.
    for (int y = ty; y < kTile; y += kRowsPerPass) {
      const int64_t c = c0 + y, r = r0 + tx;
      if (c < C && r < R) out[c * R + r] = tile[tx][y];
    }
    __syncthreads();  // the next pass overwrites the tile
  }
}

}  // namespace

template <class T>
void transpose(const T* in, int64_t R, int64_t C, T* out, int device) {
  const char* op = "cuda::transpose";
  check_device(device, op);
  check(R >= 0 && C >= 0, op, "negative size ", R, " x ", C);
  if (R == 0 || C == 0) return;
  const int64_t col_tiles = (C + kTile - 1) / kTile, row_tiles = (R + kTile - 1) / kTile;
  check(col_tiles <= 2147483647, op, "C=", C, " needs too many column tiles");
  const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(row_tiles < 65535 ? row_tiles : 65535));
  const dim3 block(kTile, kRowsPerPass);
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  transpose_kernel<T><<<grid, block, 0, st>>>(in, R, C, out);
  check_launch(op);
}

template void transpose<float>(const float*, int64_t, int64_t, float*, int);
template void transpose<double>(const double*, int64_t, int64_t, double*, int);

}  // namespace dmix::kernels::cuda
