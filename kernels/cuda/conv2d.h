// 2-D convolution on a CUDA device: the twins of kernels/cpu/conv2d.h (same geometry,
// same formulas, same arguments plus the device). Every pointer is device memory of
// `device`; the work is queued on that device's stream and the call returns before it
// is done (except a cuDNN call meeting a new shape, which times the algorithms first).
//
// Two implementations, held against each other and against the CPU by
// tests/gpu/test_conv_pool.cpp:
//   cuDNN       — kernels/cuda/conv2d_cudnn.cu: the vendor library, the fast path;
//   handwritten — the teaching path: implicit GEMM (kernels/cuda/conv2d_implicit_gemm.cu)
//                 for ordinary convolutions, direct loops (kernels/cuda/conv2d_direct.cu)
//                 where a group has so few channels that a GEMM tile would be mostly
//                 padding (depthwise).
// conv2d_forward / _backward_input / _backward_weight run the process-wide choice,
// conv_backend(): the environment variable DMIX_CUDA_CONV=cudnn|handwritten (read at the
// first convolution; like DMIX_CUDA_GEMM=cublas|tiled for matmul), or set_conv_backend().
// The default is cuDNN where the build has it, handwritten otherwise. Asking for cuDNN in
// a build without it is an error, never a silent substitution.
//
// f32 and f64 (cuDNN's legacy API computes doubles natively; the handwritten kernels are
// templates). cuDNN runs in full fp32 unless TF32 is allowed (set_allow_tf32 of
// kernels/cuda/gemm.h, the switch that also governs cuBLAS).
//
// An empty batch (N = 0) is allowed: forward and backward_input write nothing,
// backward_weight writes zeros.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/conv2d.h"

namespace dmix::kernels::cuda {

using cpu::Conv2dGeometry;

enum class ConvBackend { cuDNN, Handwritten };

void set_conv_backend(ConvBackend backend);  // throws for cuDNN in a build without it
ConvBackend conv_backend();
const char* conv_backend_name(ConvBackend backend);  // "cudnn" or "handwritten"
bool cudnn_available();                              // the build links cuDNN

// The backend chosen by conv_backend(). T = float, double.
// y = conv(x, w) + bias; bias (K values) may be null.
template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y, int device);
// gx = d<conv(x, w), gy>/dx (overwrites gx).
template <class T> void conv2d_backward_input(const Conv2dGeometry& g, const T* gy, const T* w, T* gx, int device);
// gw = d<conv(x, w), gy>/dw (overwrites gw).
template <class T> void conv2d_backward_weight(const Conv2dGeometry& g, const T* gy, const T* x, T* gw, int device);

// Which of cuDNN's two APIs the cuDNN backend draws its f32 algorithms from:
//   Auto   — both: the legacy API's algorithms (cudnnFind) and the backend ("graph")
//            API's engine plans (kernels/cuda/cudnn_graph.h) are timed on the call's
//            buffers, and the fastest is cached (the default);
//   Legacy — the legacy API only (cuDNN 7's cudnnConvolutionForward and its kin);
//   Graph  — the graph API only; an error for a shape it has no plan for.
// f64 always runs on the legacy API: the graph API computes no double convolution.
// From DMIX_CUDNN_API=auto|legacy|graph (read at the first cuDNN convolution) or
// set_cudnn_api(); the choice is part of the cache key, so switching re-chooses.
enum class CudnnApi { Auto, Legacy, Graph };
void set_cudnn_api(CudnnApi api);
CudnnApi cudnn_api();
const char* cudnn_api_name(CudnnApi api);  // "auto", "legacy" or "graph"

// ---- each implementation by name (tests and benchmarks) ----

// cuDNN. The algorithm of each pass is chosen by timing them all (cudnnFind*AlgorithmEx,
// and the graph API's plans, per cudnn_api()) the first time a (pass, geometry, dtype,
// device, TF32, API, pointer alignment) is seen, then cached. Deterministic algorithms
// are preferred (the fastest of them is taken; a non-deterministic one only when none
// works) unless DMIX_CUDNN_DETERMINISTIC=0, which takes the fastest of all, as PyTorch
// does by default. The workspace comes from the caching allocator and is capped by
// DMIX_CUDNN_WORKSPACE_MB (default 1024 MiB): algorithms needing more are not considered.
template <class T>
void conv2d_forward_cudnn(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y, int device);
template <class T>
void conv2d_backward_input_cudnn(const Conv2dGeometry& g, const T* gy, const T* w, T* gx, int device);
template <class T>
void conv2d_backward_weight_cudnn(const Conv2dGeometry& g, const T* gy, const T* x, T* gw, int device);
size_t cudnn_workspace_limit();  // bytes, from DMIX_CUDNN_WORKSPACE_MB
// Algorithm choices cached so far (0 before the first cuDNN convolution), and how many
// of them are graph-API plans.
size_t cudnn_cached_algorithms();
size_t cudnn_cached_graph_plans();

// Handwritten: implicit GEMM, or direct loops when conv2d_uses_direct(g).
bool conv2d_uses_direct(const Conv2dGeometry& g);
template <class T>
void conv2d_forward_handwritten(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y, int device);
template <class T>
void conv2d_backward_input_handwritten(const Conv2dGeometry& g, const T* gy, const T* w, T* gx, int device);
template <class T>
void conv2d_backward_weight_handwritten(const Conv2dGeometry& g, const T* gy, const T* x, T* gw, int device);

// The two handwritten algorithms, whatever the geometry.
template <class T>
void conv2d_forward_implicit_gemm(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y, int device);
template <class T>
void conv2d_backward_input_implicit_gemm(const Conv2dGeometry& g, const T* gy, const T* w, T* gx, int device);
template <class T>
void conv2d_backward_weight_implicit_gemm(const Conv2dGeometry& g, const T* gy, const T* x, T* gw, int device);
template <class T>
void conv2d_forward_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y, int device);
template <class T>
void conv2d_backward_input_direct(const Conv2dGeometry& g, const T* gy, const T* w, T* gx, int device);
template <class T>
void conv2d_backward_weight_direct(const Conv2dGeometry& g, const T* gy, const T* x, T* gw, int device);

}  // namespace dmix::kernels::cuda
