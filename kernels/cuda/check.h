// Turns the status codes of the CUDA runtime, cuBLAS and cuDNN into dmix::Error.
// Every call into a vendor library is wrapped, so a failure reads as
// "cudaMalloc: out of memory (cudaErrorMemoryAllocation)" instead of a silent
// wrong answer several ops later. Only .cu files of the CUDA backend include this.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels/error.h"

#if DMIX_HAS_CUDNN
#include <cudnn.h>
#endif

namespace dmix::kernels::cuda {

// `call` names what failed, e.g. "cudaMemcpyAsync (device to host)".
inline void check_cuda(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  // Non-sticky errors (out of memory, invalid value) stay in the runtime's
  // "last error" slot; clear it so a later cudaGetLastError() after a kernel launch
  // does not blame that kernel for this failure.
  cudaGetLastError();
  fail(call, cudaGetErrorString(status), " (", cudaGetErrorName(status), ")");
}

// After a <<<...>>> launch: launch failures (bad configuration, no kernel image for
// this GPU's architecture) only show up here.
inline void check_launch(const char* kernel) {
  cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    fail(kernel, "kernel launch failed: ", cudaGetErrorString(status), " (", cudaGetErrorName(status), ")");
}

inline void check_cublas(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail(call, "cuBLAS error ", static_cast<int>(status), " (", cublasGetStatusString(status), ")");
}

#if DMIX_HAS_CUDNN
inline void check_cudnn(cudnnStatus_t status, const char* call) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  fail(call, "cuDNN error ", static_cast<int>(status), " (", cudnnGetErrorString(status), ")");
}
#endif

}  // namespace dmix::kernels::cuda
