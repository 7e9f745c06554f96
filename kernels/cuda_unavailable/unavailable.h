// For builds without the CUDA backend: every kernels::cuda function exists and throws
// this one error, so engine code can dispatch on the device without #ifdefs.
#pragma once
#include "engine/error.h"

namespace dmix::kernels::cuda {

[[noreturn]] inline void unavailable(const char* function) {
  fail(function, "dmix was built without the CUDA backend (configure with -DDMIX_CUDA=ON)");
}

}  // namespace dmix::kernels::cuda
