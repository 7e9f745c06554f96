// The CUDA device runtime seen from the host: memory, copies and synchronisation.
// Allocation goes through a caching allocator (blocks reused by size class), so ops
// never call cudaMalloc on the hot path. In a build without CUDA the same functions
// exist and throw a dmix::Error saying the build has no GPU backend.
#pragma once
#include <cstddef>

namespace dmix::kernels::cuda {

bool built_with_cuda();
int device_count();  // 0 when there is no driver or no GPU

void* allocate(size_t bytes, int device);
void release(void* ptr, int device);

void copy_host_to_device(void* dst, const void* src, size_t bytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t bytes, int device);
void copy_device_to_device(void* dst, const void* src, size_t bytes, int device);
void memset_zero(void* dst, size_t bytes, int device);
void synchronize(int device);

struct MemoryStats {
  size_t current_bytes = 0;  // handed out to tensors now
  size_t peak_bytes = 0;     // most ever handed out at once
  size_t cached_bytes = 0;   // held by the allocator for reuse
};
MemoryStats memory_stats(int device);
void empty_cache(int device);

}  // namespace dmix::kernels::cuda
