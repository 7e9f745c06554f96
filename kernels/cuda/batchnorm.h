// Batch normalisation of a contiguous (N, C, S) device buffer on the GPU: the CUDA twins
// of kernels/cpu/batchnorm.h (same arguments plus the device, same formulas), and the two
// small per-channel maps the engine does on the host for CPU tensors. Every pointer is
// device memory of `device`; the work is queued on that device's stream.
#pragma once
#include <cstdint>

namespace dmix::kernels::cuda {

// Training forward. Per channel: mean, biased variance var, invstd = 1/sqrt(var + eps),
// then y = (x - mean) * invstd * weight + bias. weight/bias may be null (1 and 0).
// mean, invstd and var (biased) receive C values each; var may be null.
void batch_norm_forward_train(const float* x, int64_t N, int64_t C, int64_t S, const float* weight, const float* bias,
                              double eps, float* y, float* mean, float* invstd, float* var, int device);
void batch_norm_forward_train(const double* x, int64_t N, int64_t C, int64_t S, const double* weight,
                              const double* bias, double eps, double* y, double* mean, double* invstd, double* var,
                              int device);

// y = (x - mean[c]) * invstd[c] * weight[c] + bias[c] with given statistics (eval mode).
void batch_norm_apply(const float* x, int64_t N, int64_t C, int64_t S, const float* mean, const float* invstd,
                      const float* weight, const float* bias, float* y, int device);
void batch_norm_apply(const double* x, int64_t N, int64_t C, int64_t S, const double* mean, const double* invstd,
                      const double* weight, const double* bias, double* y, int device);

// Training backward, with mean/invstd from the forward and xhat = (x - mean) * invstd:
//   gbias[c]   = sum g
//   gweight[c] = sum g * xhat
//   gx = weight * invstd * (g - gbias/M - xhat * gweight/M),  M = N*S.
// weight may be null (1). gx, gweight, gbias may each be null (not wanted).
void batch_norm_backward_train(const float* g, const float* x, int64_t N, int64_t C, int64_t S, const float* mean,
                               const float* invstd, const float* weight, float* gx, float* gweight, float* gbias,
                               int device);
void batch_norm_backward_train(const double* g, const double* x, int64_t N, int64_t C, int64_t S, const double* mean,
                               const double* invstd, const double* weight, double* gx, double* gweight,
                               double* gbias, int device);

// invstd[c] = 1 / sqrt(var[c] + eps), computed in double (eval mode's statistics).
void batch_norm_invstd(const float* var, int64_t C, double eps, float* invstd, int device);
void batch_norm_invstd(const double* var, int64_t C, double eps, double* invstd, int device);

// The running-statistics update of training mode, in the order and precision the CPU path
// uses (Tensor::mul_ then Tensor::add_):
//   running_mean = running_mean * (1 - momentum);  running_mean += momentum * mean
//   running_var  = running_var  * (1 - momentum);  running_var  += momentum * M/(M-1) * var
// with M = count (values per channel), so running_var tracks the unbiased variance.
// Either running buffer may be null (not tracked).
void batch_norm_update_running(float* running_mean, float* running_var, const float* mean, const float* var,
                               int64_t C, double momentum, int64_t count, int device);
void batch_norm_update_running(double* running_mean, double* running_var, const double* mean, const double* var,
                               int64_t C, double momentum, int64_t count, int device);

}  // namespace dmix::kernels::cuda
