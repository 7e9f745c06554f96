#include "engine/host_allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "engine/error.h"

namespace dmix {
namespace {

// Blocks below this go straight to malloc, which serves small sizes well from its arenas.
constexpr size_t kCacheMin = 256 * 1024;
// At most this much is kept for reuse; beyond it, freed blocks go back to the system.
constexpr size_t kCacheMax = size_t(2) << 30;
constexpr size_t kPage = 4096;

struct Cache {
  std::mutex mutex;
  std::map<size_t, std::vector<void*>> free_blocks;  // by rounded size
  HostMemoryStats stats;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may be freed during exit
  return *c;
}

size_t rounded(size_t bytes) {
  if (bytes < kCacheMin) return ((bytes + 63) / 64) * 64;
  return ((bytes + kPage - 1) / kPage) * kPage;
}

}  // namespace

void* host_allocate(size_t bytes) {
  const size_t size = rounded(bytes == 0 ? 1 : bytes);
  if (size >= kCacheMin) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= size;
      ++c.stats.hits;
      return p;
    }
    ++c.stats.misses;
  }
  void* p = std::aligned_alloc(64, size);
  if (!p) fail("allocate", "out of host memory allocating ", bytes, " bytes");
  return p;
}

void host_release(void* ptr, size_t bytes) {
  if (!ptr) return;
  const size_t size = rounded(bytes == 0 ? 1 : bytes);
  if (size >= kCacheMin) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.stats.cached_bytes + size <= kCacheMax) {
      c.free_blocks[size].push_back(ptr);
      c.stats.cached_bytes += size;
      return;
    }
  }
  std::free(ptr);
}

HostMemoryStats host_memory_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void host_empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [size, blocks] : c.free_blocks)
    for (void* p : blocks) std::free(p);
  c.free_blocks.clear();
  c.stats.cached_bytes = 0;
}

}  // namespace dmix
