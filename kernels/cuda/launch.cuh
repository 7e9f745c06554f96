// Launch helpers for elementwise-style CUDA kernels: a grid-stride loop and a launch
// size that covers n elements without oversubscribing the GPU. The kernel body is then
// just the math:
//
//   template <class T> __global__ void relu_kernel(const T* x, T* y, int64_t n) {
//     for (int64_t i : GridStride(n)) y[i] = x[i] > T(0) ? x[i] : T(0);
//   }
//   DeviceGuard guard(device);
//   relu_kernel<<<blocks_for(n), kThreads, 0, stream(device)>>>(x, y, n);
//   check_launch("relu");
#pragma once
#include <cstdint>

namespace dmix::kernels::cuda {

constexpr int kThreads = 256;

// Enough blocks for n elements at kThreads per block, capped so a grid-stride loop
// does the rest (the cap keeps every SM busy several times over on any current GPU).
inline unsigned blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 ? 65535 : blocks));
}

// for (int64_t i : GridStride(n)) visits this thread's share of [0, n).
class GridStride {
 public:
  struct Iterator {
    int64_t i, step;
    __device__ int64_t operator*() const { return i; }
    __device__ Iterator& operator++() {
      i += step;
      return *this;
    }
    __device__ bool operator!=(const Iterator& end) const { return i < end.i; }
  };
  __device__ explicit GridStride(int64_t n)
      : begin_(int64_t(blockIdx.x) * blockDim.x + threadIdx.x), step_(int64_t(gridDim.x) * blockDim.x), n_(n) {}
  __device__ Iterator begin() const { return {begin_, step_}; }
  __device__ Iterator end() const { return {n_, step_}; }

 private:
  int64_t begin_, step_, n_;
};

}  // namespace dmix::kernels::cuda
