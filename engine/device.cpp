#include "engine/device.h"

#include "engine/error.h"
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
int cuda_device_count() { return kernels::cuda::built_with_cuda() ? kernels::cuda::device_count() : 0; }

}  // namespace dmix
