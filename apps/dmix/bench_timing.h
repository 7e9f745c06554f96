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

namespace dmix::app {

// Where the workloads run (RunOptions::resolve in options.h checks the device); on a GPU,
// sync() waits for the queued work.
struct Target {
  Device device = Device::cpu();
  void sync() const {
    synchronize(device);
  }
};

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
