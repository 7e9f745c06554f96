// Where a program runs: device selection as `dmix train --device` reads it, the CPU
// thread count as `--threads` sets it, and the CPU's denormal mode as `dmix` sets it.
#pragma once
#include <string>

#include "engine/device.h"
#include "engine/error.h"
#include "kernels/cpu/threads.h"

namespace dmix {

// "cpu", "cuda", "cuda:N", or "auto": the first GPU where this build has the CUDA backend
// and a GPU is visible, the CPU otherwise. A GPU asked for by name that this machine or
// this build cannot give is a dmix::Error saying so (never a silent fall-back to the CPU).
inline Device select_device(const std::string& spec = "auto") {
  if (spec == "auto") return cuda_available() ? Device::cuda(0) : Device::cpu();
  const Device device = Device::parse(spec);
  if (device.is_cuda()) {
    check(cuda_available(), "select_device", spec, " requested, but no GPU is usable here",
          " (the GPU backend needs a CUDA build of dmix and a visible GPU)");
    check(device.index < cuda_device_count(), "select_device", spec, " requested, but only ", cuda_device_count(),
          " GPU(s) are visible");
  }
  return device;
}

// Threads of the CPU kernels and of OpenBLAS (n >= 1); the default is every core.
inline void set_num_threads(int n) { kernels::cpu::set_num_threads(n); }
inline int num_threads() { return kernels::cpu::num_threads(); }

// Flushes denormal floats to zero on the CPU (the calling thread, the kernels' OpenMP
// threads and threads started later from the calling thread), as the dmix program does at
// start-up. Gradients that shrink towards 1e-38 otherwise make every operation on them
// about 100x slower (DCutMix training ran 2.5x faster with it); results change only below
// 1e-38. Call it once at the start of a training program. False where unsupported.
inline bool set_flush_denormal(bool on = true) { return kernels::cpu::set_flush_denormal(on); }

}  // namespace dmix
