// 2-D convolution by im2col + GEMM, and its two adjoints.
//
// For one image and one group, im2col lays the receptive fields out as a matrix
// col (Cg*R*S rows, P*Q columns): row (c,r,s) holds input channel c shifted by (r,s) and
// sampled at every output position (zeros in the padding). Then
//   forward          y_g  (Kg x PQ)    = w_g (Kg x CgRS) * col
//   backward_input   col  (CgRS x PQ)  = w_g^T * gy_g,   then col2im adds col back into gx
//   backward_weight  gw_g (Kg x CgRS) += gy_g * col^T    (summed over the images)
// A 1x1 kernel with stride 1 and no padding needs no im2col: the image is col already.
//
// Chunks: the GEMMs need enough columns to run near peak. A large image is a chunk of
// its own, and its output rows are processed in bands (one band's columns, about half
// the L2 cache, are consumed by the GEMM while they are still there: measured 10-15%
// faster than whole images for 3x3 convs). Small images (P*Q under kMinColumns: the 8x8
// and 7x7 stages of CIFAR and Fashion-MNIST networks) are grouped, several whole images
// side by side in one column matrix, so one GEMM serves them all; its output is then
// copied into each image's place (y, gx) or gathered from it (gy).
//
// Threads: with at least as many images as threads, chunks run in parallel, each
// thread with its own buffers and a GEMM on the calling thread (see image_gemm);
// otherwise chunks run one after another and the GEMM uses the threads. Every output
// element is produced by one thread in a fixed order, except the weight gradient over
// the batch, which sums per-thread partial gradients in thread order (deterministic for
// a given thread count).
//
// Cost: 2*N*K*(C/groups)*R*S*P*Q flops per pass (GEMM-bound); im2col/col2im move
// N*C*R*S*P*Q elements per pass through L2, and grouped chunks copy their N*K*P*Q
// outputs (or output gradients) once more.
#include <cblas.h>  // openblas_get_parallel
#include <omp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/cpu/conv2d_algorithms.h"
#include "kernels/cpu/gemm.h"

namespace dmix::kernels::cpu {
namespace {

using Layout = Conv2dLayout;

// Below this many columns a GEMM loses efficiency (the micro-kernel's panels go unfilled).
constexpr int64_t kMinColumns = 256;

int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// How the batch is cut into chunks of whole images, and how a one-image chunk is cut
// into bands of output rows.
struct Chunking {
  int64_t images = 1;  // images per chunk (the last chunk may hold fewer)
  int64_t rows = 1;    // output rows per band (P for whole images)
  bool parallel = false;  // chunks on separate threads, each GEMM on its thread

  int64_t chunks(int64_t N) const { return ceil_div(N, images); }
};

template <class T>
Chunking plan_chunks(const Conv2dGeometry& g, const Layout& L) {
  constexpr int64_t kBandBytes = 512 * 1024;
  Chunking c;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  c.parallel = g.N >= threads;
  if (L.PQ >= kMinColumns) {
    c.images = 1;
    if (L.image_is_col || !c.parallel) {
      c.rows = L.P;  // a 1x1 conv needs no column buffer; the threaded GEMM prefers whole images
    } else {
      const int64_t by_cache = kBandBytes / static_cast<int64_t>(sizeof(T)) / (L.CgRS * L.Q);
      c.rows = std::clamp<int64_t>(std::max(by_cache, ceil_div(kMinColumns, L.Q)), 1, L.P);
    }
    return c;
  }
  c.rows = L.P;
  c.images = ceil_div(kMinColumns, L.PQ);
  // Keep at least one chunk per thread.
  if (c.parallel) c.images = std::min(c.images, std::max<int64_t>(1, g.N / threads));
  c.images = std::clamp<int64_t>(c.images, 1, std::max<int64_t>(g.N, 1));
  return c;
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
// CgRS x (p1-p0)*Q matrix whose rows are ld apart. `framed` holds one channel's frame.
template <class T>
void im2col(const Conv2dGeometry& g, const Layout& L, const T* x, int64_t p0, int64_t p1, T* framed, T* col,
            int64_t ld) {
  const Frame f = band_frame(g, p0, p1);
  for (int64_t c = 0; c < L.Cg; ++c) {
    fill_frame(g, f, x + c * L.HW, framed);
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        T* row = col + ((c * g.R + r) * g.S + s) * ld;
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
void col2im(const Conv2dGeometry& g, const Layout& L, const T* col, int64_t ld, int64_t p0, int64_t p1, T* framed,
            T* gx) {
  const Frame f = band_frame(g, p0, p1);
  for (int64_t c = 0; c < L.Cg; ++c) {
    std::fill(framed, framed + f.count * f.cols, T(0));
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) {
        const T* row = col + ((c * g.R + r) * g.S + s) * ld;
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

// Copies `planes` planes of PQ values between image-major storage (plane p of image j at
// images + j * image_stride + p * PQ) and a chunk matrix (row p, image j's block of
// columns at chunk + p * ld + j * PQ).
template <class T>
void gather_planes(const T* images, int64_t image_stride, int64_t count, int64_t planes, int64_t PQ, T* chunk,
                   int64_t ld) {
  for (int64_t j = 0; j < count; ++j)
    for (int64_t p = 0; p < planes; ++p) copy_row(images + j * image_stride + p * PQ, PQ, chunk + p * ld + j * PQ);
}
template <class T>
void scatter_planes(const T* chunk, int64_t ld, int64_t count, int64_t planes, int64_t PQ, T* images,
                    int64_t image_stride) {
  for (int64_t j = 0; j < count; ++j)
    for (int64_t p = 0; p < planes; ++p) copy_row(chunk + p * ld + j * PQ, PQ, images + j * image_stride + p * PQ);
}

template <class T>
void add_bias(const T* bias, int64_t K, int64_t PQ, T* y) {
  for (int64_t k = 0; k < K; ++k) {
    T* yk = y + k * PQ;
    const T b = bias[k];
    for (int64_t i = 0; i < PQ; ++i) yk[i] += b;
  }
}

// The GEMM of one chunk. Inside a parallel region it must run on the calling thread:
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

// A thread's scratch for one chunk: `col` holds the column matrix (one band, or the
// chunk's images side by side) followed by room for one channel's frame; `out` holds a
// chunk's GEMM output or gathered output gradient (Kg x columns; grouped chunks only).
template <class T>
struct Scratch {
  T* col;
  T* out;
};

template <class T>
Scratch<T> thread_scratch(const Conv2dGeometry& g, const Layout& L, const Chunking& c) {
  const int64_t columns = c.images * c.rows * L.Q;
  Scratch<T> s{nullptr, nullptr};
  if (!L.image_is_col || c.images > 1) s.col = thread_buffer<T>(L.CgRS * columns + frame_size(g, c.rows), 0);
  if (c.images > 1) s.out = thread_buffer<T>(L.Kg * columns, 1);
  return s;
}

// The column matrix of images [n0, n0 + count) of group x_g (whole images) in s.col,
// images side by side; returns its leading dimension.
template <class T>
int64_t chunk_columns(const Conv2dGeometry& g, const Layout& L, const T* x_g, int64_t count, Scratch<T> s) {
  const int64_t ld = count * L.PQ, image_stride = g.C * L.HW;
  if (L.image_is_col) {
    gather_planes(x_g, image_stride, count, L.Cg, L.PQ, s.col, ld);
  } else {
    T* framed = s.col + L.CgRS * ld;
    for (int64_t j = 0; j < count; ++j) im2col(g, L, x_g + j * image_stride, 0, L.P, framed, s.col + j * L.PQ, ld);
  }
  return ld;
}

// ---- one image in bands of output rows -----------------------------------------------
// Offsets: x_g / gx_g (Cg planes of H x W), y_g / gy_g (Kg planes of P x Q), w_g / gw_g
// (Kg x CgRS).

template <class T>
void forward_image(const Conv2dGeometry& g, const Layout& L, int64_t rows, const T* x_g, const T* w_g, T* col,
                   T* y_g) {
  for (int64_t p0 = 0; p0 < L.P; p0 += rows) {
    const int64_t p1 = std::min(L.P, p0 + rows), width = (p1 - p0) * L.Q;
    if (L.image_is_col) {
      image_gemm(false, false, L.Kg, width, L.CgRS, T(1), w_g, L.CgRS, x_g + p0 * L.Q, L.PQ, T(0), y_g + p0 * L.Q,
                 L.PQ);
    } else {
      im2col(g, L, x_g, p0, p1, col + L.CgRS * width, col, width);
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
    col2im(g, L, col, width, p0, p1, col + L.CgRS * width, gx_g);
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
      im2col(g, L, x_g, p0, p1, col + L.CgRS * width, col, width);
      image_gemm(false, true, L.Kg, L.CgRS, width, T(1), gy_g + p0 * L.Q, L.PQ, col, width, beta, gw_g, L.CgRS);
    }
  }
}

// ---- several whole images through one GEMM ------------------------------------------
// Offsets as above, for the chunk's first image; the next image's planes are C (or K)
// planes further on.

template <class T>
void forward_images(const Conv2dGeometry& g, const Layout& L, int64_t count, const T* x_g, const T* w_g,
                    Scratch<T> s, T* y_g) {
  const int64_t ld = chunk_columns(g, L, x_g, count, s);
  image_gemm(false, false, L.Kg, ld, L.CgRS, T(1), w_g, L.CgRS, s.col, ld, T(0), s.out, ld);
  scatter_planes(s.out, ld, count, L.Kg, L.PQ, y_g, g.K * L.PQ);
}

template <class T>
void backward_input_images(const Conv2dGeometry& g, const Layout& L, int64_t count, const T* gy_g, const T* w_g,
                           Scratch<T> s, T* gx_g) {
  const int64_t ld = count * L.PQ, image_stride = g.C * L.HW;
  gather_planes(gy_g, g.K * L.PQ, count, L.Kg, L.PQ, s.out, ld);
  image_gemm(true, false, L.CgRS, ld, L.Kg, T(1), w_g, L.CgRS, s.out, ld, T(0), s.col, ld);
  if (L.image_is_col) {
    scatter_planes(s.col, ld, count, L.Cg, L.PQ, gx_g, image_stride);
    return;
  }
  T* framed = s.col + L.CgRS * ld;
  for (int64_t j = 0; j < count; ++j) {
    T* gx_j = gx_g + j * image_stride;
    for (int64_t c = 0; c < L.Cg; ++c) std::fill(gx_j + c * L.HW, gx_j + (c + 1) * L.HW, T(0));
    col2im(g, L, s.col + j * L.PQ, ld, 0, L.P, framed, gx_j);
  }
}

// gw_g = (accumulate ? gw_g : 0) + gy_chunk col_chunk^T.
template <class T>
void backward_weight_images(const Conv2dGeometry& g, const Layout& L, int64_t count, const T* gy_g, const T* x_g,
                            Scratch<T> s, bool accumulate, T* gw_g) {
  const int64_t ld = chunk_columns(g, L, x_g, count, s);
  gather_planes(gy_g, g.K * L.PQ, count, L.Kg, L.PQ, s.out, ld);
  image_gemm(false, true, L.Kg, L.CgRS, ld, T(1), s.out, ld, s.col, ld, accumulate ? T(1) : T(0), gw_g, L.CgRS);
}

// ---- drivers ---------------------------------------------------------------------------

// Runs chunk(n0, count, scratch) for every chunk: across threads (each with its own
// scratch) when the plan says so, otherwise one after another.
template <class T, class ChunkFn>
void for_each_chunk(const Conv2dGeometry& g, const Layout& L, const Chunking& c, ChunkFn&& chunk) {
  const int64_t chunks = c.chunks(g.N);
  auto run = [&](int64_t i, Scratch<T> s) {
    const int64_t n0 = i * c.images;
    chunk(n0, std::min(c.images, g.N - n0), s);
  };
  if (c.parallel) {
#pragma omp parallel
    {
      const Scratch<T> s = thread_scratch<T>(g, L, c);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < chunks; ++i) run(i, s);
    }
  } else {
    const Scratch<T> s = thread_scratch<T>(g, L, c);
    for (int64_t i = 0; i < chunks; ++i) run(i, s);
  }
}

template <class T>
void forward_gemm(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const Layout L(g);
  const Chunking c = plan_chunks<T>(g, L);
  for_each_chunk<T>(g, L, c, [&](int64_t n0, int64_t count, Scratch<T> s) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* x_g = x + (n0 * g.C + grp * L.Cg) * L.HW;
      const T* w_g = w + grp * L.Kg * L.CgRS;
      T* y_g = y + (n0 * g.K + grp * L.Kg) * L.PQ;
      if (count == 1) {
        forward_image(g, L, c.rows, x_g, w_g, s.col, y_g);
      } else {
        forward_images(g, L, count, x_g, w_g, s, y_g);
      }
    }
    if (bias)
      for (int64_t n = n0; n < n0 + count; ++n) add_bias(bias, g.K, L.PQ, y + n * g.K * L.PQ);
  });
}

template <class T>
void backward_input_gemm(const Conv2dGeometry& g, const T* gy, const T* w, T* gx) {
  const Layout L(g);
  const Chunking c = plan_chunks<T>(g, L);
  for_each_chunk<T>(g, L, c, [&](int64_t n0, int64_t count, Scratch<T> s) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* gy_g = gy + (n0 * g.K + grp * L.Kg) * L.PQ;
      const T* w_g = w + grp * L.Kg * L.CgRS;
      T* gx_g = gx + (n0 * g.C + grp * L.Cg) * L.HW;
      if (count == 1) {
        backward_input_image(g, L, c.rows, gy_g, w_g, s.col, gx_g);
      } else {
        backward_input_images(g, L, count, gy_g, w_g, s, gx_g);
      }
    }
  });
}

template <class T>
void backward_weight_gemm(const Conv2dGeometry& g, const T* gy, const T* x, T* gw) {
  const Layout L(g);
  const Chunking c = plan_chunks<T>(g, L);
  const int64_t weight_size = g.K * L.CgRS, chunks = c.chunks(g.N);
  // out = (accumulate ? out : 0) + the gradient from chunk i.
  auto chunk = [&](int64_t i, Scratch<T> s, bool accumulate, T* out) {
    const int64_t n0 = i * c.images, count = std::min(c.images, g.N - n0);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* gy_g = gy + (n0 * g.K + grp * L.Kg) * L.PQ;
      const T* x_g = x + (n0 * g.C + grp * L.Cg) * L.HW;
      T* gw_g = out + grp * L.Kg * L.CgRS;
      if (count == 1) {
        backward_weight_image(g, L, c.rows, gy_g, x_g, s.col, accumulate, gw_g);
      } else {
        backward_weight_images(g, L, count, gy_g, x_g, s, accumulate, gw_g);
      }
    }
  };
  if (!c.parallel) {
    const Scratch<T> s = thread_scratch<T>(g, L, c);
    for (int64_t i = 0; i < chunks; ++i) chunk(i, s, i > 0, gw);
    return;
  }
  // Thread t sums its chunks into its own buffer (thread 0 into gw); the buffers are
  // then added into gw in thread order. Every buffer a thread reads has been written.
  const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  std::unique_ptr<T[]> partials(new T[static_cast<size_t>(max_threads - 1) * weight_size]);
#pragma omp parallel num_threads(max_threads)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    const Scratch<T> s = thread_scratch<T>(g, L, c);
    T* out = t == 0 ? gw : partials.get() + (t - 1) * weight_size;
    bool accumulate = false;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < chunks; ++i) {
      chunk(i, s, accumulate, out);
      accumulate = true;
    }
    if (!accumulate) std::fill(out, out + weight_size, T(0));  // this thread got no chunk
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t i = 0; i < weight_size; ++i) {
      T total = gw[i];
      for (int p = 0; p + 1 < team; ++p) total += partials[p * weight_size + i];
      gw[i] = total;
    }
  }
}

}  // namespace

template <class T>
void conv2d_forward_im2col(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  forward_gemm(g, x, w, bias, y);
}
template <class T>
void conv2d_backward_input_im2col(const Conv2dGeometry& g, const T* gy, const T* w, T* gx) {
  backward_input_gemm(g, gy, w, gx);
}
template <class T>
void conv2d_backward_weight_im2col(const Conv2dGeometry& g, const T* gy, const T* x, T* gw) {
  backward_weight_gemm(g, gy, x, gw);
}

template void conv2d_forward_im2col<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*);
template void conv2d_forward_im2col<double>(const Conv2dGeometry&, const double*, const double*, const double*,
                                            double*);
template void conv2d_backward_input_im2col<float>(const Conv2dGeometry&, const float*, const float*, float*);
template void conv2d_backward_input_im2col<double>(const Conv2dGeometry&, const double*, const double*, double*);
template void conv2d_backward_weight_im2col<float>(const Conv2dGeometry&, const float*, const float*, float*);
template void conv2d_backward_weight_im2col<double>(const Conv2dGeometry&, const double*, const double*, double*);

}  // namespace dmix::kernels::cpu
