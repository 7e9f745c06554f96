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

// The table on the device: one block of the caching allocator holding a copy of `host`,
// queued on the device's stream ahead of the kernels that read it.
inline DeviceScratch upload_table(const std::vector<int32_t>& host, int device) {
  DeviceScratch table(host.size() * sizeof(int32_t), device);
  copy_host_to_device(table.get(), host.data(), table.bytes(), device);
  return table;
}

}  // namespace dmix::kernels::cuda
