// Batch normalisation of a contiguous (N, C, S) buffer: channel c normalises its N*S
// values x[n, c, s] (S = H*W for NCHW, S = 1 for (N, C)). See batchnorm.cpp.
#pragma once
#include <cstdint>

namespace dmix::kernels::cpu {

// Training forward. Per channel: mean, biased variance var, invstd = 1/sqrt(var + eps),
// then y = (x - mean) * invstd * weight + bias. weight/bias may be null (1 and 0).
// mean, invstd and var (biased) receive C values each; var may be null.
template <class T>
void batch_norm_forward_train(const T* x, int64_t N, int64_t C, int64_t S, const T* weight, const T* bias, double eps,
                              T* y, T* mean, T* invstd, T* var);

// y = (x - mean[c]) * invstd[c] * weight[c] + bias[c] with given statistics (eval mode).
template <class T>
void batch_norm_apply(const T* x, int64_t N, int64_t C, int64_t S, const T* mean, const T* invstd, const T* weight,
                      const T* bias, T* y);

// Training backward, with mean/invstd from the forward and xhat = (x - mean) * invstd:
//   gbias[c]   = sum g
//   gweight[c] = sum g * xhat
//   gx = weight * invstd * (g - gbias/M - xhat * gweight/M),  M = N*S.
// weight may be null (1). gx, gweight, gbias may each be null (not wanted).
template <class T>
void batch_norm_backward_train(const T* g, const T* x, int64_t N, int64_t C, int64_t S, const T* mean,
                               const T* invstd, const T* weight, T* gx, T* gweight, T* gbias);

}  // namespace dmix::kernels::cpu
