// Weighted blend of K images per sample on a CUDA device: Mixup (K = 2, one lambda for the
// batch) and DMixup (K images, per-sample Dirichlet weights). See kernels/cuda/mixing.h.
//
// Algorithm. The per-sample table (K source indices and K weights per sample) is packed
// into one buffer and copied to the device once per call. The grid is two-dimensional:
// blockIdx.y walks the samples, blockIdx.x / threadIdx.x the sample's elements (both
// grid-stride), so a block reads one row of the table (a broadcast, served by the cache)
// and neighbouring threads touch neighbouring floats of every source (coalesced). Each
// thread keeps the running value in a register:
//   acc = w_0 * x_0 (rounded);  acc = fma(w_k, x_k, acc) for k = 1 .. K-1,
// with __fmul_rn / __fmaf_rn so nvcc cannot contract or reorder anything: the CPU path
// (augment/mixing.cpp) computes the same chain with std::fma, so the results are equal
// bit for bit (denormal inputs aside, if the host flushes them to zero and the device
// does not). Every output element is written by exactly one thread: deterministic.
//
// Cost: B * n * K multiply-adds; K reads and one write per output float, memory bound.
// The table is B * K * 8 bytes.
#include "kernels/cuda/mixing.h"

#include <cstring>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/mixing_table.cuh"
#include "kernels/cuda/stream.h"
#include "kernels/error.h"

namespace dmix::kernels::cuda {
namespace {

// table: B * K int32 source indices, then B * K float weights (as their bits).
__global__ void blend_kernel(const float* __restrict__ x, int64_t B, int64_t n, int K,
                             const int32_t* __restrict__ table, float* __restrict__ out) {
  const int32_t* sources = table;
  const float* weights = reinterpret_cast<const float*>(table + B * K);
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    const int32_t* s = sources + b * K;
    const float* w = weights + b * K;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
      float acc = __fmul_rn(w[0], x[s[0] * n + i]);
      for (int k = 1; k < K; ++k) acc = __fmaf_rn(w[k], x[s[k] * n + i], acc);
      out[b * n + i] = acc;
    }
  }
}

}  // namespace

void mix_blend(const float* x, int64_t B, int64_t sample_size, int64_t K, const int64_t* source, const float* weight,
               float* out, int device) {
  const char* op = "cuda::mix_blend";
  check(B >= 0 && sample_size >= 0 && K >= 1, op, "bad sizes: B ", B, ", sample_size ", sample_size, ", K ", K);
  if (B == 0 || sample_size == 0) return;
  check_device(device, op);
  check(x != nullptr && out != nullptr && source != nullptr && weight != nullptr, op, "null pointer");
  check(B < (int64_t(1) << 31) && K < (int64_t(1) << 20), op, "too many samples (", B, ") or images (", K, ")");

  std::vector<int32_t> table(static_cast<size_t>(2 * B * K));
  for (int64_t i = 0; i < B * K; ++i) {
    check(source[i] >= 0 && source[i] < B, op, "source ", source[i], " of entry ", i, " is outside [0, ", B, ")");
    table[static_cast<size_t>(i)] = static_cast<int32_t>(source[i]);
  }
  std::memcpy(table.data() + B * K, weight, static_cast<size_t>(B * K) * sizeof(float));

  const DeviceScratch params = upload_table(table, device);
  const dim3 grid(blocks_for(sample_size), static_cast<unsigned>(B < 65535 ? B : 65535));
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  blend_kernel<<<grid, kThreads, 0, st>>>(x, B, sample_size, static_cast<int>(K), params.as<int32_t>(), out);
  check_launch(op);
}

}  // namespace dmix::kernels::cuda
