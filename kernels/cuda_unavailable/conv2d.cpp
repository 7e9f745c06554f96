// kernels/cuda/conv2d.h in a build without the CUDA backend: every convolution throws;
// the backend preference can still be set and read (it is never consulted).
#include "kernels/cuda/conv2d.h"

#include <atomic>

#include "kernels/cuda_unavailable/unavailable.h"

namespace dmix::kernels::cuda {
namespace {
std::atomic<int> chosen_backend{static_cast<int>(ConvBackend::Handwritten)};
}  // namespace

void set_conv_backend(ConvBackend backend) {
  check(backend != ConvBackend::cuDNN, "set_conv_backend",
        "dmix was built without the CUDA backend, so without cuDNN (configure with -DDMIX_CUDA=ON)");
  chosen_backend.store(static_cast<int>(backend));
}
ConvBackend conv_backend() { return static_cast<ConvBackend>(chosen_backend.load()); }
const char* conv_backend_name(ConvBackend backend) {
  return backend == ConvBackend::cuDNN ? "cudnn" : "handwritten";
}
bool cudnn_available() { return false; }
size_t cudnn_workspace_limit() { return 0; }
size_t cudnn_cached_algorithms() { return 0; }
size_t cudnn_cached_graph_plans() { return 0; }
namespace {
std::atomic<int> chosen_api{static_cast<int>(CudnnApi::Auto)};
}  // namespace
void set_cudnn_api(CudnnApi api) { chosen_api.store(static_cast<int>(api)); }
CudnnApi cudnn_api() { return static_cast<CudnnApi>(chosen_api.load()); }
const char* cudnn_api_name(CudnnApi api) {
  return api == CudnnApi::Auto ? "auto" : (api == CudnnApi::Legacy ? "legacy" : "graph");
}
bool conv2d_uses_direct(const Conv2dGeometry& g) { return (g.C / g.groups) * (g.K / g.groups) <= 4; }

template <class T>
void conv2d_forward(const Conv2dGeometry&, const T*, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_forward");
}
template <class T>
void conv2d_backward_input(const Conv2dGeometry&, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_backward_input");
}
template <class T>
void conv2d_backward_weight(const Conv2dGeometry&, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_backward_weight");
}
template <class T>
void conv2d_forward_cudnn(const Conv2dGeometry&, const T*, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_forward_cudnn");
}
template <class T>
void conv2d_backward_input_cudnn(const Conv2dGeometry&, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_backward_input_cudnn");
}
template <class T>
void conv2d_backward_weight_cudnn(const Conv2dGeometry&, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_backward_weight_cudnn");
}
template <class T>
void conv2d_forward_handwritten(const Conv2dGeometry&, const T*, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_forward_handwritten");
}
template <class T>
void conv2d_backward_input_handwritten(const Conv2dGeometry&, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_backward_input_handwritten");
}
template <class T>
void conv2d_backward_weight_handwritten(const Conv2dGeometry&, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_backward_weight_handwritten");
}
template <class T>
void conv2d_forward_implicit_gemm(const Conv2dGeometry&, const T*, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_forward_implicit_gemm");
}
template <class T>
void conv2d_backward_input_implicit_gemm(const Conv2dGeometry&, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_backward_input_implicit_gemm");
}
template <class T>
void conv2d_backward_weight_implicit_gemm(const Conv2dGeometry&, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_backward_weight_implicit_gemm");
}
template <class T>
void conv2d_forward_direct(const Conv2dGeometry&, const T*, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_forward_direct");
}
template <class T>
void conv2d_backward_input_direct(const Conv2dGeometry&, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_backward_input_direct");
}
template <class T>
void conv2d_backward_weight_direct(const Conv2dGeometry&, const T*, const T*, T*, int) {
  unavailable("cuda::conv2d_backward_weight_direct");
}

template void conv2d_forward<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*, int);
template void conv2d_forward_cudnn<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*, int);
template void conv2d_forward_handwritten<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*,
                                                int);
template void conv2d_forward_implicit_gemm<float>(const Conv2dGeometry&, const float*, const float*, const float*,
                                                  float*, int);
template void conv2d_forward_direct<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*,
                                           int);
template void conv2d_backward_input<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_input_cudnn<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_input_handwritten<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_input_implicit_gemm<float>(const Conv2dGeometry&, const float*, const float*, float*,
                                                         int);
template void conv2d_backward_input_direct<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_weight<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_weight_cudnn<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_weight_handwritten<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_weight_implicit_gemm<float>(const Conv2dGeometry&, const float*, const float*, float*,
                                                          int);
template void conv2d_backward_weight_direct<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_forward<double>(const Conv2dGeometry&, const double*, const double*, const double*, double*, int);
template void conv2d_forward_cudnn<double>(const Conv2dGeometry&, const double*, const double*, const double*, double*,
                                           int);
template void conv2d_forward_handwritten<double>(const Conv2dGeometry&, const double*, const double*, const double*,
                                                 double*, int);
template void conv2d_forward_implicit_gemm<double>(const Conv2dGeometry&, const double*, const double*, const double*,
                                                   double*, int);
template void conv2d_forward_direct<double>(const Conv2dGeometry&, const double*, const double*, const double*, double*,
                                            int);
template void conv2d_backward_input<double>(const Conv2dGeometry&, const double*, const double*, double*, int);
template void conv2d_backward_input_cudnn<double>(const Conv2dGeometry&, const double*, const double*, double*, int);
template void conv2d_backward_input_handwritten<double>(const Conv2dGeometry&, const double*, const double*, double*,
                                                        int);
template void conv2d_backward_input_implicit_gemm<double>(const Conv2dGeometry&, const double*, const double*, double*,
                                                          int);
template void conv2d_backward_input_direct<double>(const Conv2dGeometry&, const double*, const double*, double*, int);
template void conv2d_backward_weight<double>(const Conv2dGeometry&, const double*, const double*, double*, int);
template void conv2d_backward_weight_cudnn<double>(const Conv2dGeometry&, const double*, const double*, double*, int);
template void conv2d_backward_weight_handwritten<double>(const Conv2dGeometry&, const double*, const double*, double*,
                                                         int);
template void conv2d_backward_weight_implicit_gemm<double>(const Conv2dGeometry&, const double*, const double*, double*,
                                                           int);
template void conv2d_backward_weight_direct<double>(const Conv2dGeometry&, const double*, const double*, double*, int);

}  // namespace dmix::kernels::cuda
