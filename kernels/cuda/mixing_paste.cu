// Box paste on a CUDA device: Cutout (a box of zeros), CutMix (one box), DCutMix and
// Saliency-DCutMix (K-1 nested boxes per sample). See kernels/cuda/mixing.h.
//
// Algorithm. The CPU path copies the anchor image and then pastes the boxes one after
// another, each overwriting the last. Here every output pixel is written once instead:
// it takes the source of the last box that contains it (for nested boxes, the innermost),
// or the anchor's where none does, which is the same result without ordered writes. The
// per-sample table (K sources, K-1 boxes) is packed into one buffer and copied to the
// device once per call. blockIdx.y walks the (sample, channel) planes and blockIdx.x /
// threadIdx.x the plane's pixels (both grid-stride): a block reads one sample's row of
// the table (a broadcast, served by the cache), neighbouring threads read neighbouring
// pixels (coalesced), and the row / column of a pixel cost one 32-bit division. Pixels
// are copied, never computed: the result equals the CPU path's bit for bit.
//
// Cost: one read and one write per output float plus K-1 box tests per pixel; memory
// bound. The table is B * (5K - 4) * 4 bytes.
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/mixing.h"
#include "kernels/cuda/mixing_table.cuh"
#include "kernels/cuda/stream.h"
#include "kernels/error.h"

namespace dmix::kernels::cuda {
namespace {

// table: B * K int32 sources (-1: zeros), then B * (K-1) boxes of 4 int32 {top, left,
// height, width}. plane = H * W <= 2^30.
__global__ void paste_kernel(const float* __restrict__ x, int64_t B, int64_t C, int H, int W, int K,
                             const int32_t* __restrict__ table, float* __restrict__ out) {
  const int plane = H * W;
  const int32_t* sources = table;
  const int32_t* all_boxes = table + B * K;
  for (int64_t p = blockIdx.y; p < B * C; p += gridDim.y) {
    const int64_t b = p / C, c = p % C;
    const int32_t* s = sources + b * K;
    const int32_t* boxes = all_boxes + b * (K - 1) * 4;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < plane; i += gridDim.x * blockDim.x) {
      const int row = i / W, col = i - row * W;
      int k = 0;
      for (int j = 0; j + 1 < K; ++j) {
        const int32_t* box = boxes + 4 * j;
        if (row >= box[0] && row < box[0] + box[2] && col >= box[1] && col < box[1] + box[3]) k = j + 1;
      }
      const int64_t from = s[k];
      out[p * plane + i] = from < 0 ? 0.0f : x[(from * C + c) * plane + i];
    }
  }
}

}  // namespace

void mix_paste(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t K, const int64_t* source,
               const int64_t* boxes, float* out, int device) {
  const char* op = "cuda::mix_paste";
  check(B >= 0 && C >= 0 && H >= 0 && W >= 0 && K >= 1, op, "bad sizes: B ", B, ", C ", C, ", H ", H, ", W ", W,
        ", K ", K);
  if (B == 0 || C == 0 || H == 0 || W == 0) return;
  check_device(device, op);
  check(x != nullptr && out != nullptr && source != nullptr && (K == 1 || boxes != nullptr), op, "null pointer");
  // 32-bit pixel indices: i < H W plus a grid stride of at most 2^24 stays below 2^31.
  check(H * W <= (int64_t(1) << 30) && B < (int64_t(1) << 31) && K < (int64_t(1) << 20), op, "too large: B ", B,
        ", H x W ", H, " x ", W, ", K ", K);

  std::vector<int32_t> table(static_cast<size_t>(B * K + B * (K - 1) * 4));
  for (int64_t i = 0; i < B * K; ++i) {
    check(source[i] >= -1 && source[i] < B, op, "source ", source[i], " of entry ", i, " is outside [-1, ", B, ")");
    table[static_cast<size_t>(i)] = static_cast<int32_t>(source[i]);
  }
  for (int64_t i = 0; i < B * (K - 1); ++i) {
    const int64_t* box = boxes + 4 * i;
    check(box[2] >= 0 && box[3] >= 0 && (box[2] == 0 || box[3] == 0 ||
                                         (box[0] >= 0 && box[1] >= 0 && box[0] + box[2] <= H && box[1] + box[3] <= W)),
          op, "box ", i, " {top ", box[0], ", left ", box[1], ", height ", box[2], ", width ", box[3],
          "} is not inside the ", H, " x ", W, " image");
    for (int64_t j = 0; j < 4; ++j) {
      // An empty box contains no pixel; store it as {0, 0, 0, 0} so any far-off corner
      // it was given cannot overflow an int32.
      const bool empty = box[2] == 0 || box[3] == 0;
      table[static_cast<size_t>(B * K + 4 * i + j)] = empty ? 0 : static_cast<int32_t>(box[j]);
    }
  }

  const DeviceScratch params = upload_table(table, device);
  const int64_t planes = B * C;
  const dim3 grid(blocks_for(H * W), static_cast<unsigned>(planes < 65535 ? planes : 65535));
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  paste_kernel<<<grid, kThreads, 0, st>>>(x, B, C, static_cast<int>(H), static_cast<int>(W), static_cast<int>(K),
                                          params.as<int32_t>(), out);
  check_launch(op);
}

}  // namespace dmix::kernels::cuda
