// Which convolution runs on the GPU: the process-wide backend (cuDNN or handwritten, from
// DMIX_CUDA_CONV or set_conv_backend), cuDNN's API (DMIX_CUDNN_API or set_cudnn_api), and
// within the handwritten path, implicit GEMM or direct loops by the shape. No arithmetic
// here; see conv2d.h for the overview.
#include <atomic>
#include <cstdlib>
#include <string>

#include "kernels/cuda/conv2d.h"
#include "kernels/error.h"

namespace dmix::kernels::cuda {
namespace {

constexpr int kUnset = -1;
std::atomic<int> chosen_backend{kUnset};
std::atomic<int> chosen_cudnn_api{kUnset};

// A process-wide choice: the first caller reads the environment, unless a setter came first.
template <class Choice, class FromEnvironment>
Choice choice_at_first_use(std::atomic<int>& slot, FromEnvironment from_environment) {
  int v = slot.load();
  if (v == kUnset) {
    int expected = kUnset;
    slot.compare_exchange_strong(expected, static_cast<int>(from_environment()));
    v = slot.load();
  }
  return static_cast<Choice>(v);
}

std::string environment(const char* name) {
  const char* env = std::getenv(name);
  return env ? env : "";
}

ConvBackend backend_from_environment() {
  const std::string choice = environment("DMIX_CUDA_CONV");
  if (choice.empty()) return cudnn_available() ? ConvBackend::cuDNN : ConvBackend::Handwritten;
  if (choice == "handwritten") return ConvBackend::Handwritten;
  if (choice == "cudnn") {
    check(cudnn_available(), "conv2d",
          "DMIX_CUDA_CONV=cudnn, but dmix was built without cuDNN; use DMIX_CUDA_CONV=handwritten or unset it");
    return ConvBackend::cuDNN;
  }
  fail("conv2d", "environment variable DMIX_CUDA_CONV must be 'cudnn' or 'handwritten', got '", choice, "'");
}

CudnnApi cudnn_api_from_environment() {
  const std::string choice = environment("DMIX_CUDNN_API");
  for (CudnnApi api : {CudnnApi::Auto, CudnnApi::Legacy, CudnnApi::Graph})
    if (choice == cudnn_api_name(api)) return api;
  check(choice.empty(), "conv2d", "environment variable DMIX_CUDNN_API must be 'auto', 'legacy' or 'graph', got '",
        choice, "'");
  return CudnnApi::Auto;
}

}  // namespace

void set_conv_backend(ConvBackend backend) {
  check(backend != ConvBackend::cuDNN || cudnn_available(), "set_conv_backend",
        "dmix was built without cuDNN; only the handwritten convolution is available");
  chosen_backend.store(static_cast<int>(backend));
}

ConvBackend conv_backend() { return choice_at_first_use<ConvBackend>(chosen_backend, backend_from_environment); }

const char* conv_backend_name(ConvBackend backend) {
  return backend == ConvBackend::cuDNN ? "cudnn" : "handwritten";
}

void set_cudnn_api(CudnnApi api) { chosen_cudnn_api.store(static_cast<int>(api)); }

CudnnApi cudnn_api() { return choice_at_first_use<CudnnApi>(chosen_cudnn_api, cudnn_api_from_environment); }

const char* cudnn_api_name(CudnnApi api) {
  return api == CudnnApi::Auto ? "auto" : (api == CudnnApi::Legacy ? "legacy" : "graph");
}

// A GEMM tile is at least 16 wide; with one or two channels per group on both sides
// (depthwise) almost all of it would be padding, and the direct loops do less work.
bool conv2d_uses_direct(const Conv2dGeometry& g) {
  const int64_t cg = g.C / g.groups, kg = g.K / g.groups;
  return cg * kg <= 4;
}

namespace {

// Each entry point below runs the implementation picked by one of these two choices.
template <class Pass>
Pass by_shape(const Conv2dGeometry& g, Pass direct, Pass implicit_gemm) {
  return conv2d_uses_direct(g) ? direct : implicit_gemm;
}
template <class Pass>
Pass by_backend(Pass cudnn, Pass handwritten) {
  return conv_backend() == ConvBackend::cuDNN ? cudnn : handwritten;
}

}  // namespace

template <class T>
void conv2d_forward_handwritten(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y, int device) {
  by_shape(g, conv2d_forward_direct<T>, conv2d_forward_implicit_gemm<T>)(g, x, w, bias, y, device);
}
template <class T>
void conv2d_backward_input_handwritten(const Conv2dGeometry& g, const T* gy, const T* w, T* gx, int device) {
  by_shape(g, conv2d_backward_input_direct<T>, conv2d_backward_input_implicit_gemm<T>)(g, gy, w, gx, device);
}
template <class T>
void conv2d_backward_weight_handwritten(const Conv2dGeometry& g, const T* gy, const T* x, T* gw, int device) {
  by_shape(g, conv2d_backward_weight_direct<T>, conv2d_backward_weight_implicit_gemm<T>)(g, gy, x, gw, device);
}

template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y, int device) {
  by_backend(conv2d_forward_cudnn<T>, conv2d_forward_handwritten<T>)(g, x, w, bias, y, device);
}
template <class T>
void conv2d_backward_input(const Conv2dGeometry& g, const T* gy, const T* w, T* gx, int device) {
  by_backend(conv2d_backward_input_cudnn<T>, conv2d_backward_input_handwritten<T>)(g, gy, w, gx, device);
}
template <class T>
void conv2d_backward_weight(const Conv2dGeometry& g, const T* gy, const T* x, T* gw, int device) {
  by_backend(conv2d_backward_weight_cudnn<T>, conv2d_backward_weight_handwritten<T>)(g, gy, x, gw, device);
}

template void conv2d_forward<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*, int);
template void conv2d_backward_input<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_weight<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_forward_handwritten<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*,
                                                int);
template void conv2d_backward_input_handwritten<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_weight_handwritten<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_forward<double>(const Conv2dGeometry&, const double*, const double*, const double*, double*, int);
template void conv2d_backward_input<double>(const Conv2dGeometry&, const double*, const double*, double*, int);
template void conv2d_backward_weight<double>(const Conv2dGeometry&, const double*, const double*, double*, int);
template void conv2d_forward_handwritten<double>(const Conv2dGeometry&, const double*, const double*, const double*,
                                                 double*, int);
template void conv2d_backward_input_handwritten<double>(const Conv2dGeometry&, const double*, const double*, double*,
                                                        int);
template void conv2d_backward_weight_handwritten<double>(const Conv2dGeometry&, const double*, const double*, double*,
                                                         int);

}  // namespace dmix::kernels::cuda
