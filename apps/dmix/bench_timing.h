// How `dmix bench` times things, shared by its subcommands: the device a workload runs
// on, and the median wall time of repeated runs (the PyTorch reference script's method).
#pragma once
#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/error.h"
#include "kernels/cuda/runtime.h"

namespace dmix::app {

// Where the workloads run; on a GPU, sync() waits for the queued work.
struct Target {
  Device device = Device::cpu();
  void sync() const {
    if (device.is_cuda()) kernels::cuda::synchronize(device.index);
  }
};

// "cpu" or "cuda[:N]", checked: a GPU that is not there is one clear error.
inline Target parse_target(const std::string& text) {
  Target t;
  t.device = Device::parse(text);
  if (t.device.is_cuda()) {
    check(kernels::cuda::built_with_cuda(), "bench", "--device ", text,
          ": dmix was built without the CUDA backend (configure with -DDMIX_CUDA=ON)");
    const int count = kernels::cuda::device_count();
    check(count > 0, "bench", "--device ", text, ": no CUDA device is visible (no GPU, or no driver)");
    check(t.device.index < count, "bench", "--device ", text, ": only ", count, " CUDA device(s) are visible");
  }
  return t;
}

// Median wall time of fn over reps runs after warmup runs; on a GPU each run ends with a
// synchronize, so a run is timed until its work is done.
inline double median_seconds(const Target& t, const std::function<void()>& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  t.sync();
  std::vector<double> ts;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.sync();
    ts.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ts.begin(), ts.end());
  return reps % 2 ? ts[reps / 2] : 0.5 * (ts[reps / 2 - 1] + ts[reps / 2]);
}

inline double median_seconds(const std::function<void()>& fn, int warmup, int reps) {
  return median_seconds(Target{}, fn, warmup, reps);
}

}  // namespace dmix::app
