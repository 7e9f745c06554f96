// Host memory for tensors. Large blocks are cached and reused: a training step allocates
// the same activation and gradient sizes every iteration, and handing a freed block back
// avoids the page faults (and kernel page clearing) of fresh mmap'd memory each time.
#pragma once
#include <cstddef>

namespace dmix {

void* host_allocate(size_t bytes);           // 64-byte aligned; never null (throws dmix::Error)
void host_release(void* ptr, size_t bytes);  // bytes as passed to host_allocate

struct HostMemoryStats {
  size_t cached_bytes = 0;  // held for reuse
  size_t hits = 0, misses = 0;
};
HostMemoryStats host_memory_stats();
void host_empty_cache();

}  // namespace dmix
