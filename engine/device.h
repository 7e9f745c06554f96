// Where a tensor's storage lives: the host ("cpu") or one CUDA device ("cuda:N").
#pragma once
#include <cstdint>
#include <ostream>
#include <string>

namespace dmix {

struct Device {
  enum Kind : uint8_t { CPU, CUDA };
  Kind kind = CPU;
  int index = 0;

  static Device cpu() { return {CPU, 0}; }
  static Device cuda(int i = 0) { return {CUDA, i}; }
  static Device parse(const std::string& s);  // "cpu", "cuda", "cuda:1"; throws on anything else

  bool is_cpu() const { return kind == CPU; }
  bool is_cuda() const { return kind == CUDA; }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
  bool operator==(const Device& o) const { return kind == o.kind && (kind == CPU || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

inline std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

// True when this build has the CUDA backend and a GPU is visible.
bool cuda_available();
// GPUs this process can use: 0 without a driver or a GPU, and in a build without the CUDA
// backend (kernels::cuda::kBuilt, kernels/cuda/build_config.h.in).
int cuda_device_count();
// Throws a dmix::Error naming op unless `device` is the CPU or a GPU this process can use,
// saying what is missing: "asked for cuda:1 but no such GPU is present", or "... but dmix
// was built without CUDA". Every CUDA allocation passes it, so a build without the CUDA
// backend never holds a CUDA tensor.
void check_device(const char* op, Device device);
// Waits until the work queued on `device` is done (a GPU runs kernels asynchronously);
// returns at once for the CPU.
void synchronize(Device device);

}  // namespace dmix
