// 2-D convolution by im2col + GEMM, and its two adjoints.
//
// For one image and one group, im2col lays the receptive fields out as a matrix
// col (Cg*R*S rows, P*Q columns): row (c,r,s) holds input channel c shifted by (r,s) and
// sampled at every output position (zeros in the padding). Then
//   forward          y_g  (Kg x PQ)    = w_g (Kg x CgRS) * col
//   backward_input   col  (CgRS x PQ)  = w_g^T * gy_g,   then col2im adds col back into gx
//   backward_weight  gw_g (Kg x CgRS) += gy_g * col^T    (summed over the images)
// A 1x1 kernel with stride 1 and no padding needs no im2col: the image is col already.
// Convolutions with one input channel per group (depthwise, or a single-channel input)
// would give GEMMs with an inner size of R*S, so they run as direct loops instead.
//
// Threads: with at least as many images as threads, images run in parallel, each
// thread with its own column buffer (one band of output rows at a time, so it stays in
// L2) and a GEMM on the calling thread (see image_gemm); otherwise images run one after
// another and the GEMM uses the threads. Every output element is produced by one thread
// in a fixed order, except the weight gradient over the batch, which sums per-thread
// partial gradients in thread order (deterministic for a given thread count).
//
// Cost: 2*N*K*(C/groups)*R*S*P*Q flops per pass (GEMM-bound); im2col/col2im move
// N*C*R*S*P*Q elements per pass through L2. The direct loops do the same flops with
// one read of each plane per output channel.
#include <cblas.h>  // openblas_get_parallel
#include <omp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"

namespace dmix::kernels::cpu {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// Sizes derived once per call.
struct Layout {
  int64_t P, Q, PQ, HW, Cg, Kg, CgRS;
  bool image_is_col;  // 1x1, stride 1, no padding

  explicit Layout(const Conv2dGeometry& g)
      : P(g.out_h()),
        Q(g.out_w()),
        PQ(P * Q),
        HW(g.H * g.W),
        Cg(g.C / g.groups),
        Kg(g.K / g.groups),
        CgRS(Cg * g.R * g.S),
        image_is_col(g.R == 1 && g.S == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0 &&
                     g.H == P && g.W == Q) {}
};

// A per-thread buffer that lives as long as the thread (OpenMP keeps its pool), so
// repeated convolutions do not pay for allocation and page faults every call.
template <class T>
T* thread_buffer(int64_t n) {
  static thread_local std::vector<T> buffer;
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

// With images in parallel, output rows are processed in bands: im2col fills the columns
// of one band (about half the L2 cache) and the GEMM consumes them while they are still
// there (measured 10-15% faster than whole images for 3x3 convs). A band keeps at least
// kMinBandColumns columns, below which the GEMM itself loses efficiency. One image at a
// time, the threaded GEMM prefers whole images. A 1x1 convolution needs no column buffer.
template <class T>
int64_t band_rows(const Layout& L, bool banded) {
  constexpr int64_t kBandBytes = 512 * 1024, kMinBandColumns = 256;
  if (L.image_is_col || !banded) return L.P;
  const int64_t by_cache = kBandBytes / static_cast<int64_t>(sizeof(T)) / (L.CgRS * L.Q);
  return std::clamp<int64_t>(std::max(by_cache, ceil_div(kMinBandColumns, L.Q)), 1, L.P);
}

// The input rows that output rows [p0, p1) read, copied per channel into a frame with
// zero rows outside the image and pad_w zero columns on both sides, so that im2col and
// col2im copy whole output rows with no bounds checks.
struct Frame {
  int64_t first, count, cols;  // input rows [first, first + count), each cols wide
};
Frame band_frame(const Conv2dGeometry& g, int64_t p0, int64_t p1) {
  return {p0 * g.stride_h - g.pad_h, (p1 - 1 - p0) * g.stride_h + (g.R - 1) * g.dilation_h + 1, g.W + 2 * g.pad_w};
}
int64_t frame_size(const Conv2dGeometry& g, int64_t rows) {
  const Frame f = band_frame(g, 0, rows);
  return f.count * f.cols;
}

template <class T>
void copy_row(const T* __restrict src, int64_t n, T* __restrict dst) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dst[j] = src[j];
}

template <class T>
void add_row(const T* __restrict src, int64_t n, T* __restrict dst) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dst[j] += src[j];
}

template <class T>
void fill_frame(const Conv2dGeometry& g, const Frame& f, const T* plane, T* framed) {
  for (int64_t i = 0; i < f.count; ++i) {
    T* row = framed + i * f.cols;
    const int64_t ih = f.first + i;
    if (ih < 0 || ih >= g.H) {
      std::fill(row, row + f.cols, T(0));
      continue;
    }
    std::fill(row, row + g.pad_w, T(0));
    copy_row(plane + ih * g.W, g.W, row + g.pad_w);
    std::fill(row + g.pad_w + g.W, row + f.cols, T(0));
  }
}

// The columns for output rows [p0, p1) of one image's group `x` (Cg planes), as a
// CgRS x (p1-p0)*Q matrix. `framed` holds one channel's frame.
template <class T>
void im2col(const Conv2dGeometry& g, const Layout& L, const T* x, int64_t p0, int64_t p1, T* framed, T* col) {
  const int64_t width = (p1 - p0) * L.Q;
  const Frame f = band_frame(g, p0, p1);
  for (int64_t c = 0; c < L.Cg; ++c) {
    fill_frame(g, f, x + c * L.HW, framed);
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        T* row = col + ((c * g.R + r) * g.S + s) * width;
        for (int64_t oh = p0; oh < p1; ++oh) {
          const T* src = framed + ((oh - p0) * g.stride_h + r * g.dilation_h) * f.cols + s * g.dilation_w;
          T* dst = row + (oh - p0) * L.Q;
          if (g.stride_w == 1) {
            copy_row(src, L.Q, dst);
          } else {
            for (int64_t ow = 0; ow < L.Q; ++ow) dst[ow] = src[ow * g.stride_w];
          }
        }
      }
    }
  }
}

// The adjoint of im2col for output rows [p0, p1): adds every column entry to the input
// cell it came from, in gx (Cg planes), through a frame as above.
template <class T>
void col2im(const Conv2dGeometry& g, const Layout& L, const T* col, int64_t p0, int64_t p1, T* framed, T* gx) {
  const int64_t width = (p1 - p0) * L.Q;
  const Frame f = band_frame(g, p0, p1);
  for (int64_t c = 0; c < L.Cg; ++c) {
    std::fill(framed, framed + f.count * f.cols, T(0));
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        const T* row = col + ((c * g.R + r) * g.S + s) * width;
        for (int64_t oh = p0; oh < p1; ++oh) {
          T* dst = framed + ((oh - p0) * g.stride_h + r * g.dilation_h) * f.cols + s * g.dilation_w;
          const T* src = row + (oh - p0) * L.Q;
          if (g.stride_w == 1) {
            add_row(src, L.Q, dst);
          } else {
            for (int64_t ow = 0; ow < L.Q; ++ow) dst[ow * g.stride_w] += src[ow];
          }
        }
      }
    }
    T* plane = gx + c * L.HW;
    for (int64_t i = 0; i < f.count; ++i) {
      const int64_t ih = f.first + i;
      if (ih >= 0 && ih < g.H) add_row(framed + i * f.cols + g.pad_w, g.W, plane + ih * g.W);
    }
  }
}

template <class T>
void add_bias(const T* bias, int64_t K, int64_t PQ, T* y) {
  for (int64_t k = 0; k < K; ++k) {
    T* yk = y + k * PQ;
    const T b = bias[k];
    for (int64_t i = 0; i < PQ; ++i) yk[i] += b;
  }
}

// The GEMM of one image. Inside a parallel region it must run on the calling thread:
// gemm() does for the handwritten kernel and for OpenMP builds of OpenBLAS, but the
// pthread build of OpenBLAS makes concurrent callers share (and wait for) its one
// worker pool, measured 1.5-2x slower here than single-threaded GEMMs; with that build
// the handwritten kernel takes these calls.
template <class T>
void image_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  static const bool pthread_openblas = openblas_get_parallel() == 1;
  if (pthread_openblas && omp_in_parallel() && gemm_backend() == GemmBackend::OpenBLAS) {
    gemm_handwritten(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else {
    gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

// Images in parallel when there are enough of them (each GEMM then runs on its calling
// thread); otherwise one image at a time with the GEMM using the threads.
bool batch_parallel(const Conv2dGeometry& g) {
  return g.N >= omp_get_max_threads() || omp_in_parallel();
}

// ---- im2col + GEMM, one image's group at a time --------------------------------------
// Offsets: x_g / gx_g (Cg planes of H x W), y_g / gy_g (Kg planes of P x Q), w_g / gw_g
// (Kg x CgRS); `col` holds one band.

template <class T>
void forward_image(const Conv2dGeometry& g, const Layout& L, int64_t rows, const T* x_g, const T* w_g, T* col,
                   T* y_g) {
  for (int64_t p0 = 0; p0 < L.P; p0 += rows) {
    const int64_t p1 = std::min(L.P, p0 + rows), width = (p1 - p0) * L.Q;
    if (L.image_is_col) {
      image_gemm(false, false, L.Kg, width, L.CgRS, T(1), w_g, L.CgRS, x_g + p0 * L.Q, L.PQ, T(0), y_g + p0 * L.Q,
                 L.PQ);
    } else {
      im2col(g, L, x_g, p0, p1, col + L.CgRS * width, col);
      image_gemm(false, false, L.Kg, width, L.CgRS, T(1), w_g, L.CgRS, col, width, T(0), y_g + p0 * L.Q, L.PQ);
    }
  }
}

template <class T>
void backward_input_image(const Conv2dGeometry& g, const Layout& L, int64_t rows, const T* gy_g, const T* w_g, T* col,
                          T* gx_g) {
  if (L.image_is_col) {
    image_gemm(true, false, L.CgRS, L.PQ, L.Kg, T(1), w_g, L.CgRS, gy_g, L.PQ, T(0), gx_g, L.PQ);
    return;
  }
  std::fill(gx_g, gx_g + L.Cg * L.HW, T(0));
  for (int64_t p0 = 0; p0 < L.P; p0 += rows) {
    const int64_t p1 = std::min(L.P, p0 + rows), width = (p1 - p0) * L.Q;
    image_gemm(true, false, L.CgRS, width, L.Kg, T(1), w_g, L.CgRS, gy_g + p0 * L.Q, L.PQ, T(0), col, width);
    col2im(g, L, col, p0, p1, col + L.CgRS * width, gx_g);
  }
}

// gw_g = (accumulate ? gw_g : 0) + gy_g col^T.
template <class T>
void backward_weight_image(const Conv2dGeometry& g, const Layout& L, int64_t rows, const T* gy_g, const T* x_g,
                           T* col, bool accumulate, T* gw_g) {
  for (int64_t p0 = 0; p0 < L.P; p0 += rows) {
    const int64_t p1 = std::min(L.P, p0 + rows), width = (p1 - p0) * L.Q;
    const T beta = accumulate || p0 > 0 ? T(1) : T(0);
    if (L.image_is_col) {
      image_gemm(false, true, L.Kg, L.CgRS, width, T(1), gy_g + p0 * L.Q, L.PQ, x_g + p0 * L.Q, L.PQ, beta, gw_g,
                 L.CgRS);
    } else {
      im2col(g, L, x_g, p0, p1, col + L.CgRS * width, col);
      image_gemm(false, true, L.Kg, L.CgRS, width, T(1), gy_g + p0 * L.Q, L.PQ, col, width, beta, gw_g, L.CgRS);
    }
  }
}

// One band of columns followed by room for one channel's frame.
template <class T>
T* column_buffer(const Conv2dGeometry& g, const Layout& L, int64_t rows) {
  return L.image_is_col ? nullptr : thread_buffer<T>(L.CgRS * rows * L.Q + frame_size(g, rows));
}

// Runs image(n, col) for every image n: across threads (each with its own column buffer)
// when the batch is split, otherwise one after another with a single buffer.
template <class T, class ImageFn>
void for_each_image(const Conv2dGeometry& g, const Layout& L, int64_t rows, bool parallel_images, ImageFn&& image) {
  if (parallel_images) {
#pragma omp parallel
    {
      T* col = column_buffer<T>(g, L, rows);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < g.N; ++n) image(n, col);
    }
  } else {
    T* col = column_buffer<T>(g, L, rows);
    for (int64_t n = 0; n < g.N; ++n) image(n, col);
  }
}

template <class T>
void forward_gemm(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const Layout L(g);
  const bool parallel_images = batch_parallel(g);
  const int64_t rows = band_rows<T>(L, parallel_images);
  auto image = [&](int64_t n, T* col) {
    for (int64_t grp = 0; grp < g.groups; ++grp)
      forward_image(g, L, rows, x + (n * g.C + grp * L.Cg) * L.HW, w + grp * L.Kg * L.CgRS, col,
                    y + (n * g.K + grp * L.Kg) * L.PQ);
    if (bias) add_bias(bias, g.K, L.PQ, y + n * g.K * L.PQ);
  };
  for_each_image<T>(g, L, rows, parallel_images, image);
}

template <class T>
void backward_input_gemm(const Conv2dGeometry& g, const T* gy, const T* w, T* gx) {
  const Layout L(g);
  const bool parallel_images = batch_parallel(g);
  const int64_t rows = band_rows<T>(L, parallel_images);
  auto image = [&](int64_t n, T* col) {
    for (int64_t grp = 0; grp < g.groups; ++grp)
      backward_input_image(g, L, rows, gy + (n * g.K + grp * L.Kg) * L.PQ, w + grp * L.Kg * L.CgRS, col,
                           gx + (n * g.C + grp * L.Cg) * L.HW);
  };
  for_each_image<T>(g, L, rows, parallel_images, image);
}

template <class T>
void backward_weight_gemm(const Conv2dGeometry& g, const T* gy, const T* x, T* gw) {
  const Layout L(g);
  const bool parallel_images = batch_parallel(g);
  const int64_t rows = band_rows<T>(L, parallel_images);
  const int64_t weight_size = g.K * L.CgRS;
  // out = (accumulate ? out : 0) + the gradient from image n.
  auto image = [&](int64_t n, T* col, bool accumulate, T* out) {
    for (int64_t grp = 0; grp < g.groups; ++grp)
      backward_weight_image(g, L, rows, gy + (n * g.K + grp * L.Kg) * L.PQ, x + (n * g.C + grp * L.Cg) * L.HW, col,
                            accumulate, out + grp * L.Kg * L.CgRS);
  };
  if (!parallel_images) {
    T* col = column_buffer<T>(g, L, rows);
    for (int64_t n = 0; n < g.N; ++n) image(n, col, n > 0, gw);
    return;
  }
  // Thread t sums its images into its own buffer (thread 0 into gw); the buffers are
  // then added into gw in thread order. Every buffer a thread reads has been written.
  const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  std::unique_ptr<T[]> partials(new T[static_cast<size_t>(max_threads - 1) * weight_size]);
#pragma omp parallel num_threads(max_threads)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    T* col = column_buffer<T>(g, L, rows);
    T* out = t == 0 ? gw : partials.get() + (t - 1) * weight_size;
    bool accumulate = false;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      image(n, col, accumulate, out);
      accumulate = true;
    }
    if (!accumulate) std::fill(out, out + weight_size, T(0));  // this thread got no image
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t i = 0; i < weight_size; ++i) {
      T total = gw[i];
      for (int p = 0; p + 1 < team; ++p) total += partials[p * weight_size + i];
      gw[i] = total;
    }
  }
}

// ---- direct loops for one input channel per group ------------------------------------
// Input planes are first copied into a zero border, so that every tap reads inside the
// copy and the loops need no bounds checks. Output rows are computed in blocks of
// kBlock columns held in registers across all R*S taps.

constexpr int64_t kBlock = 16;

// A plane of rows x cols placed at (top, left) inside a zero frame of padded_rows x padded_cols.
template <class T>
void frame_plane(const T* plane, int64_t rows, int64_t cols, int64_t top, int64_t left, int64_t padded_rows,
                 int64_t padded_cols, T* framed) {
  std::fill(framed, framed + padded_rows * padded_cols, T(0));
  for (int64_t i = 0; i < rows; ++i)
    std::copy(plane + i * cols, plane + (i + 1) * cols, framed + (i + top) * padded_cols + left);
}

struct Taps {
  int64_t R, S, stride_h, stride_w, dilation_h, dilation_w;
};

// out[i][j] += sum_{r,s} w[r*S+s] * in[(i*stride_h + r*dilation_h)*ld + j*stride_w + s*dilation_w]
// for i < rows, j < cols (out is rows x cols, contiguous). KR, KS > 0 fix R and S at
// compile time, so the tap loops unroll (the common 3x3 and 5x5 kernels).
template <int KR, int KS, class T>
void correlate_add(const T* in, int64_t ld, const T* w, const Taps& t, int64_t rows, int64_t cols, T* out) {
  const int64_t R = KR > 0 ? KR : t.R, S = KS > 0 ? KS : t.S;
  for (int64_t i = 0; i < rows; ++i) {
    const T* base = in + i * t.stride_h * ld;
    T* o = out + i * cols;
    for (int64_t j0 = 0; j0 < cols; j0 += kBlock) {
      const int64_t width = std::min(kBlock, cols - j0);
      T acc[kBlock];
      if (width == kBlock && t.stride_w == 1) {
        for (int64_t j = 0; j < kBlock; ++j) acc[j] = o[j0 + j];
        for (int64_t r = 0; r < R; ++r)
          for (int64_t s = 0; s < S; ++s) {
            const T wv = w[r * S + s];
            const T* p = base + r * t.dilation_h * ld + s * t.dilation_w + j0;
#pragma omp simd
            for (int64_t j = 0; j < kBlock; ++j) acc[j] += wv * p[j];
          }
      } else {
        for (int64_t j = 0; j < width; ++j) acc[j] = o[j0 + j];
        for (int64_t r = 0; r < R; ++r)
          for (int64_t s = 0; s < S; ++s) {
            const T wv = w[r * S + s];
            const T* p = base + r * t.dilation_h * ld + s * t.dilation_w + j0 * t.stride_w;
            for (int64_t j = 0; j < width; ++j) acc[j] += wv * p[j * t.stride_w];
          }
      }
      std::copy(acc, acc + width, o + j0);
    }
  }
}

template <class T>
void correlate_add(const T* in, int64_t ld, const T* w, const Taps& t, int64_t rows, int64_t cols, T* out) {
  if (t.R == 3 && t.S == 3) {
    correlate_add<3, 3>(in, ld, w, t, rows, cols, out);
  } else if (t.R == 5 && t.S == 5) {
    correlate_add<5, 5>(in, ld, w, t, rows, cols, out);
  } else {
    correlate_add<0, 0>(in, ld, w, t, rows, cols, out);
  }
}

Taps taps_of(const Conv2dGeometry& g) { return {g.R, g.S, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w}; }

template <class T>
void forward_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const Layout L(g);
  const int64_t rows = g.H + 2 * g.pad_h, cols = g.W + 2 * g.pad_w;
#pragma omp parallel
  {
    T* framed = thread_buffer<T>(rows * cols);
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t c = 0; c < g.C; ++c) {
        frame_plane(x + (n * g.C + c) * L.HW, g.H, g.W, g.pad_h, g.pad_w, rows, cols, framed);
        for (int64_t k = c * L.Kg; k < (c + 1) * L.Kg; ++k) {
          T* yp = y + (n * g.K + k) * L.PQ;
          std::fill(yp, yp + L.PQ, bias ? bias[k] : T(0));
          correlate_add(framed, cols, w + k * g.R * g.S, taps_of(g), L.P, L.Q, yp);
        }
      }
    }
  }
}

// Stride 1 with padding within the kernel's reach: gx is the full correlation of gy with
// the flipped kernel, gx[i][j] = sum_{r,s} w[R-1-r][S-1-s] * framed_gy[i + r*dh][j + s*dw].
bool backward_input_as_correlation(const Conv2dGeometry& g) {
  return g.stride_h == 1 && g.stride_w == 1 && g.pad_h <= (g.R - 1) * g.dilation_h &&
         g.pad_w <= (g.S - 1) * g.dilation_w;
}

template <class T>
void backward_input_direct(const Conv2dGeometry& g, const T* gy, const T* w, T* gx) {
  const Layout L(g);
  const int64_t RS = g.R * g.S;
  if (backward_input_as_correlation(g)) {
    const int64_t top = (g.R - 1) * g.dilation_h - g.pad_h, left = (g.S - 1) * g.dilation_w - g.pad_w;
    const int64_t rows = L.P + 2 * top, cols = L.Q + 2 * left;
    const Taps flipped_taps{g.R, g.S, 1, 1, g.dilation_h, g.dilation_w};
#pragma omp parallel
    {
      T* framed = thread_buffer<T>(rows * cols);
      std::vector<T> flipped(static_cast<size_t>(RS));
#pragma omp for collapse(2) schedule(static)
      for (int64_t n = 0; n < g.N; ++n) {
        for (int64_t c = 0; c < g.C; ++c) {
          T* gxp = gx + (n * g.C + c) * L.HW;
          std::fill(gxp, gxp + L.HW, T(0));
          for (int64_t k = c * L.Kg; k < (c + 1) * L.Kg; ++k) {
            std::reverse_copy(w + k * RS, w + (k + 1) * RS, flipped.begin());
            frame_plane(gy + (n * g.K + k) * L.PQ, L.P, L.Q, top, left, rows, cols, framed);
            correlate_add(framed, cols, flipped.data(), flipped_taps, g.H, g.W, gxp);
          }
        }
      }
    }
    return;
  }
  // Otherwise scatter each output's taps into a framed gx and keep its interior.
  const int64_t rows = g.H + 2 * g.pad_h, cols = g.W + 2 * g.pad_w;
#pragma omp parallel
  {
    T* framed = thread_buffer<T>(rows * cols);
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t c = 0; c < g.C; ++c) {
        std::fill(framed, framed + rows * cols, T(0));
        for (int64_t k = c * L.Kg; k < (c + 1) * L.Kg; ++k) {
          const T* wk = w + k * RS;
          const T* gyp = gy + (n * g.K + k) * L.PQ;
          for (int64_t oh = 0; oh < L.P; ++oh) {
            const T* __restrict in = gyp + oh * L.Q;
            for (int64_t r = 0; r < g.R; ++r) {
              T* row = framed + (oh * g.stride_h + r * g.dilation_h) * cols;
              for (int64_t s = 0; s < g.S; ++s) {
                const T wv = wk[r * g.S + s];
                T* __restrict out = row + s * g.dilation_w;
                for (int64_t ow = 0; ow < L.Q; ++ow) out[ow * g.stride_w] += wv * in[ow];
              }
            }
          }
        }
        T* gxp = gx + (n * g.C + c) * L.HW;
        for (int64_t ih = 0; ih < g.H; ++ih) {
          const T* src = framed + (ih + g.pad_h) * cols + g.pad_w;
          std::copy(src, src + g.W, gxp + ih * g.W);
        }
      }
    }
  }
}

// gw[k][r][s] = sum over images and output positions of gy * the input under tap (r, s).
// Each (r, s) sum runs over whole planes in kBlock-wide partial sums (reduced once per
// image), so short rows do not pay a horizontal reduction each.
template <class T>
void backward_weight_direct(const Conv2dGeometry& g, const T* gy, const T* x, T* gw) {
  const Layout L(g);
  const int64_t rows = g.H + 2 * g.pad_h, cols = g.W + 2 * g.pad_w, RS = g.R * g.S;
  const int64_t sw = g.stride_w, full = L.Q / kBlock * kBlock;
#pragma omp parallel
  {
    T* framed = thread_buffer<T>(rows * cols);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < g.K; ++k) {
      T* gwk = gw + k * RS;
      std::fill(gwk, gwk + RS, T(0));
      for (int64_t n = 0; n < g.N; ++n) {
        frame_plane(x + (n * g.C + k / L.Kg) * L.HW, g.H, g.W, g.pad_h, g.pad_w, rows, cols, framed);
        const T* gyp = gy + (n * g.K + k) * L.PQ;
        for (int64_t r = 0; r < g.R; ++r) {
          for (int64_t s = 0; s < g.S; ++s) {
            T acc[kBlock] = {};
            T rest = 0;
            for (int64_t oh = 0; oh < L.P; ++oh) {
              const T* go = gyp + oh * L.Q;
              const T* in = framed + (oh * g.stride_h + r * g.dilation_h) * cols + s * g.dilation_w;
              for (int64_t j0 = 0; j0 < full; j0 += kBlock)
                for (int64_t j = 0; j < kBlock; ++j) acc[j] += go[j0 + j] * in[(j0 + j) * sw];
              for (int64_t j = full; j < L.Q; ++j) rest += go[j] * in[j * sw];
            }
            for (int64_t j = 0; j < kBlock; ++j) rest += acc[j];
            gwk[r * g.S + s] += rest;
          }
        }
      }
    }
  }
}

bool one_channel_per_group(const Conv2dGeometry& g) { return g.C == g.groups; }

}  // namespace

template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  if (one_channel_per_group(g)) {
    forward_direct(g, x, w, bias, y);
  } else {
    forward_gemm(g, x, w, bias, y);
  }
}

template <class T>
void conv2d_backward_input(const Conv2dGeometry& g, const T* gy, const T* w, T* gx) {
  if (one_channel_per_group(g)) {
    backward_input_direct(g, gy, w, gx);
  } else {
    backward_input_gemm(g, gy, w, gx);
  }
}

template <class T>
void conv2d_backward_weight(const Conv2dGeometry& g, const T* gy, const T* x, T* gw) {
  if (g.N == 0) {
    std::fill(gw, gw + g.K * (g.C / g.groups) * g.R * g.S, T(0));
  } else if (one_channel_per_group(g)) {
    backward_weight_direct(g, gy, x, gw);
  } else {
    backward_weight_gemm(g, gy, x, gw);
  }
}

template void conv2d_forward<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*);
template void conv2d_forward<double>(const Conv2dGeometry&, const double*, const double*, const double*, double*);
template void conv2d_backward_input<float>(const Conv2dGeometry&, const float*, const float*, float*);
template void conv2d_backward_input<double>(const Conv2dGeometry&, const double*, const double*, double*);
template void conv2d_backward_weight<float>(const Conv2dGeometry&, const float*, const float*, float*);
template void conv2d_backward_weight<double>(const Conv2dGeometry&, const double*, const double*, double*);

}  // namespace dmix::kernels::cpu
