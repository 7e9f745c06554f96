// The CUDA device runtime seen from the host: memory, copies and synchronisation.
// Allocation goes through a caching allocator (blocks reused by size class), so ops
// never call cudaMalloc on the hot path. Defined only in a build with the CUDA backend
// (kernels/cuda/build_config.h.in says how code above the kernels calls it); the engine's
// cuda_device_count() and check_device() (engine/device.h) answer in every build.
#pragma once
#include <cstddef>

namespace dmix::kernels::cuda {

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

// Device memory from the caching allocator for the length of a scope (a kernel's scratch,
// a cuDNN workspace, a small table), handed back when the scope ends, also when a launch
// in it throws. Handing a block back while kernels that use it are still queued is safe:
// the allocator gives it out again only to work queued behind them on the same stream.
// Zero bytes hold no block (get() is null).
class DeviceScratch {
 public:
  DeviceScratch(size_t bytes, int device)
      : ptr_(bytes ? allocate(bytes, device) : nullptr), bytes_(bytes), device_(device) {}
  ~DeviceScratch() {
    try {
      if (ptr_) release(ptr_, device_);
    } catch (...) {
      // release only throws for a pointer it does not know; a destructor must not throw.
    }
  }
  DeviceScratch(DeviceScratch&& other) noexcept : ptr_(other.ptr_), bytes_(other.bytes_), device_(other.device_) {
    other.ptr_ = nullptr;
  }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  DeviceScratch& operator=(DeviceScratch&&) = delete;

  void* get() const { return ptr_; }
  template <class T> T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_;
  size_t bytes_;
  int device_;
};

}  // namespace dmix::kernels::cuda
