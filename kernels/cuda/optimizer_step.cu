// Fused SGD and Adam parameter updates on a CUDA device, and the squared norm used by
// gradient clipping. The twins of kernels/cpu/optimizer_step.cpp.
//
// Algorithm. Updates: one thread per element (grid-stride), the CPU's formula
// expression by expression; scalar factors that depend only on the step (Adam's bias
// corrections) are computed once on the host with the CPU's code, so they are
// bit-identical. Each element's arithmetic is the same; nvcc and the host compiler
// may fuse different multiply-adds, so p can differ from the CPU by an ulp per step.
// sum_of_squares: a deterministic two-pass reduction, no atomics. Pass 1: a fixed number
// of blocks (chosen from n alone) each sum a grid-strided share in double and reduce it
// in shared memory in a fixed tree; pass 2: one block sums the per-block partials the
// same way. The order of additions depends only on n, so the result is the same on
// every run (it differs from the CPU's OpenMP sum in the last bits).
//
// Cost: SGD reads p, g (and buf) and writes p (and buf): 12-16 bytes per element;
// Adam reads p, g, m, v and writes p, m, v: 28 bytes per element. Memory bound.
// sum_of_squares reads 4 bytes per element plus one 8-byte copy to the host.
#include "kernels/cuda/optimizer_step.h"

#include <algorithm>
#include <cmath>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

constexpr int kReduceThreads = 256;
constexpr int64_t kMaxParts = 1024;          // pass-1 blocks at most
constexpr int64_t kValuesPerThread = 16;     // pass-1 work per thread before adding blocks

__global__ void sgd_plain_kernel(float* __restrict__ p, const float* __restrict__ g, int64_t n, float lr, float wd) {
  for (int64_t i : GridStride(n)) p[i] -= lr * (g[i] + wd * p[i]);
}

__global__ void sgd_momentum_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ buf,
                                    int64_t n, float lr, float momentum, float wd, bool nesterov, bool first_step) {
  for (int64_t i : GridStride(n)) {
    const float d = g[i] + wd * p[i];
    const float b = first_step ? d : momentum * buf[i] + d;
    buf[i] = b;
    p[i] -= lr * (nesterov ? d + momentum * b : b);
  }
}

__global__ void adam_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                            float* __restrict__ v, int64_t n, float step, float root_c2, float beta1, float beta2,
                            float eps, float wd) {
  for (int64_t i : GridStride(n)) {
    const float d = g[i] + wd * p[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * d;
    const float vi = beta2 * v[i] + (1.0f - beta2) * d * d;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step * mi / (sqrtf(vi) / root_c2 + eps);
  }
}

// Sums the block's kReduceThreads values of `shared` in a fixed tree; returns the total in thread 0.
__device__ double block_sum(double value, double* shared) {
  const int t = threadIdx.x;
  shared[t] = value;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (t < half) shared[t] += shared[t + half];
    __syncthreads();
  }
  return shared[0];
}

__global__ void __launch_bounds__(kReduceThreads)
    sum_of_squares_parts_kernel(const float* __restrict__ x, int64_t n, double* __restrict__ parts) {
  __shared__ double shared[kReduceThreads];
  double acc = 0.0;
  for (int64_t i : GridStride(n)) acc += double(x[i]) * double(x[i]);
  const double total = block_sum(acc, shared);
  if (threadIdx.x == 0) parts[blockIdx.x] = total;
}

__global__ void __launch_bounds__(kReduceThreads) sum_parts_kernel(const double* __restrict__ parts, int64_t count,
                                                                   double* __restrict__ out) {
  __shared__ double shared[kReduceThreads];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kReduceThreads) acc += parts[i];
  const double total = block_sum(acc, shared);
  if (threadIdx.x == 0) *out = total;
}

void check_count(const char* op, int64_t n) { check(n >= 0, op, "negative element count ", n); }

}  // namespace

void sgd_step(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd, bool nesterov,
              bool first_step, int device) {
  const char* op = "cuda::sgd_step";
  check_device(device, op);
  check_count(op, n);
  if (n == 0) return;
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  if (momentum == 0.0f) {
    sgd_plain_kernel<<<blocks_for(n), kThreads, 0, st>>>(p, g, n, lr, wd);
  } else {
    check(buf != nullptr, op, "momentum ", momentum, " needs a momentum buffer");
    sgd_momentum_kernel<<<blocks_for(n), kThreads, 0, st>>>(p, g, buf, n, lr, momentum, wd, nesterov, first_step);
  }
  check_launch(op);
}

void adam_step(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2, float eps,
               float wd, int64_t t, int device) {
  const char* op = "cuda::adam_step";
  check_device(device, op);
  check_count(op, n);
  check(t >= 1, op, "step t must be >= 1, got ", t);
  if (n == 0) return;
  // The CPU kernel's expressions, so the factors are the same floats.
  const float c1 = 1.0f - std::pow(beta1, float(t)), c2 = 1.0f - std::pow(beta2, float(t));
  const float step = lr / c1, root_c2 = std::sqrt(c2);
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  adam_kernel<<<blocks_for(n), kThreads, 0, st>>>(p, g, m, v, n, step, root_c2, beta1, beta2, eps, wd);
  check_launch(op);
}

double sum_of_squares(const float* x, int64_t n, int device) {
  const char* op = "cuda::sum_of_squares";
  check_device(device, op);
  check_count(op, n);
  if (n == 0) return 0.0;
  const int64_t parts = std::min<int64_t>(kMaxParts, (n + kReduceThreads * kValuesPerThread - 1) /
                                                         (kReduceThreads * kValuesPerThread));
  const DeviceScratch buffer(static_cast<size_t>(parts + 1) * sizeof(double), device);
  double* scratch = buffer.as<double>();
  cudaStream_t st = stream(device);
  {
    DeviceGuard guard(device);
    sum_of_squares_parts_kernel<<<static_cast<unsigned>(parts), kReduceThreads, 0, st>>>(x, n, scratch);
    check_launch(op);
    sum_parts_kernel<<<1, kReduceThreads, 0, st>>>(scratch, parts, scratch + parts);
    check_launch(op);
  }
  double result = 0.0;
  copy_device_to_host(&result, scratch + parts, sizeof(double), device);  // waits for the kernels
  return result;
}

}  // namespace dmix::kernels::cuda
