#include "engine/device.h"

#include "engine/error.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/runtime.h"

namespace dmix {

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    const std::string idx = s.substr(5);
    if (!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos) return cuda(std::stoi(idx));
  }
  fail("device", "unknown device '", s, "' (expected cpu, cuda or cuda:N)");
}

bool cuda_available() { return cuda_device_count() > 0; }

int cuda_device_count() {
  if constexpr (kernels::cuda::kBuilt) return kernels::cuda::device_count();
  return 0;
}

void check_device(const char* op, Device device) {
  if (device.is_cpu()) return;
  check(device.index < cuda_device_count(), op, "asked for ", device, " but ",
        kernels::cuda::kBuilt ? "no such GPU is present" : "dmix was built without CUDA");
}

void synchronize(Device device) {
  check_device("synchronize", device);
  if constexpr (kernels::cuda::kBuilt) {
    if (device.is_cuda()) kernels::cuda::synchronize(device.index);
  }
}

}  // namespace dmix
