// The pixel work of batch mixing (augment/mixing.h) on a CUDA device. The random draws
// and the geometry are made on the host, exactly as for a CPU batch; these kernels get the
// result as small per-sample tables and produce the mixed images where the batch lives.
//
// `x` and `out` are device pointers on `device`, each B samples of contiguous floats, and
// must not overlap (a sample reads other samples). The tables (`source`, `weight`, `boxes`)
// are HOST arrays, read before the call returns: each call packs them into one small
// host-to-device copy. The work is queued on the device's stream; the call returns before
// it is done.
//
// float only: mixing takes the f32 batches the data loader delivers.
#pragma once
#include <cstdint>

namespace dmix::kernels::cuda {

// Weighted blend (Mixup, DMixup). For each sample b, with s_k = source[b K + k] in
// [0, B) and w_k = weight[b K + k], k < K:
//   out[b] = w_0 x[s_0];  out[b] = fma(w_k, x[s_k], out[b]) for k = 1 .. K-1,
// every product and fused multiply-add rounded once, in that order, as the CPU path
// computes it (so the two agree bit for bit).
void mix_blend(const float* x, int64_t B, int64_t sample_size, int64_t K, const int64_t* source, const float* weight,
               float* out, int device);

// Box paste (Cutout, CutMix, DCutMix, Saliency-DCutMix) on (B, C, H, W) images. Sample b
// has K sources source[b K + k] (in [0, B), or -1 for an all-zero image) and K-1 boxes,
// boxes[(b (K-1) + j) * 4 + {0, 1, 2, 3}] = {top, left, height, width}. Pixel (y, x) of
// sample b, in every channel, comes from source k = 1 + the LAST box j containing it, or
// from source 0 where no box does: the result of pasting the boxes one after another onto
// source 0, the innermost box of a nested set winning. Boxes may be empty; they must lie
// inside the image.
void mix_paste(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t K, const int64_t* source,
               const int64_t* boxes, float* out, int device);

}  // namespace dmix::kernels::cuda
