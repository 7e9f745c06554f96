// What a CUDA kernel file needs from the runtime beyond runtime.h: the device's one
// stream and its lazily created library handles. Every kernel of the backend is
// launched on stream(device), so work on one device runs in issue order and a block
// freed to the caching allocator can be handed out again at once (the next user's
// work is queued behind the last user's). Only .cu files include this header.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#if DMIX_HAS_CUDNN
#include <cudnn.h>
#endif

namespace dmix::kernels::cuda {

// Throws dmix::Error naming `op` unless 0 <= device < device_count().
void check_device(int device, const char* op);

// The device's stream, created on first use. A launch goes to the thread's current
// device, so launch under a DeviceGuard for the same device:
//   DeviceGuard guard(device);
//   my_kernel<<<grid, block, 0, stream(device)>>>(...);
//   check_launch("my_kernel");
cudaStream_t stream(int device);

// The device's cuBLAS handle, created on first use and bound to stream(device).
cublasHandle_t cublas_handle(int device);

#if DMIX_HAS_CUDNN
// The device's cuDNN handle, created on first use and bound to stream(device).
cudnnHandle_t cudnn_handle(int device);
#endif

// Makes `device` current for the lifetime of the guard and restores the caller's
// device afterwards, so calling into dmix does not change a host thread's CUDA state.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace dmix::kernels::cuda
