// Shared by the mixing kernels (mixing_blend.cu, mixing_paste.cu): the per-sample table
// of a mixing call, copied to the device in one small host-to-device transfer and held in
// a block of the caching allocator until the call returns. Releasing right after the
// launch is safe: the block can only be handed out again to work queued behind the
// kernel on the same stream.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cuda/runtime.h"

namespace dmix::kernels::cuda {

class DeviceTable {
 public:
  DeviceTable(const std::vector<int32_t>& host, int device)
      : bytes_(host.size() * sizeof(int32_t)), ptr_(bytes_ ? allocate(bytes_, device) : nullptr), device_(device) {
    try {
      copy_host_to_device(ptr_, host.data(), bytes_, device);
    } catch (...) {
      release(ptr_, device_);
      throw;
    }
  }
  ~DeviceTable() {
    try {
      release(ptr_, device_);
    } catch (...) {
      // Only a corrupted allocator fails here; a destructor must not throw.
    }
  }
  DeviceTable(const DeviceTable&) = delete;
  DeviceTable& operator=(const DeviceTable&) = delete;
  const int32_t* get() const { return static_cast<const int32_t*>(ptr_); }

 private:
  size_t bytes_;
  void* ptr_;
  int device_;
};

}  // namespace dmix::kernels::cuda
