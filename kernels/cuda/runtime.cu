// The CUDA runtime of dmix: device discovery, a caching allocator, one stream per
// device with its library handles, and host<->device copies through pinned staging
// buffers.
//
// Caching allocator. cudaMalloc and cudaFree are slow (they synchronise the device and
// take driver locks), and a training step allocates and frees the same sizes over and
// over. So a request is rounded up to a size class — 512 B steps up to 1 MiB, 2 MiB
// steps above — and a released block goes onto its device's free list for that class
// instead of back to the driver. After the first step every request is a free-list
// pop: O(1), no driver call. The cost is memory: up to 511 B per small block and up to
// 2 MiB per large block of rounding, plus whatever the cache holds; empty_cache() gives
// cached blocks back, and a failing cudaMalloc does so itself before its one retry.
//
// Reuse without waiting is safe because all of dmix's work on a device goes to that
// device's one stream: the next owner's kernels are queued behind the last owner's.
//
// Host copies. The DMA engine reads only page-locked (pinned) host memory; from
// ordinary memory the driver copies through its own bounce buffer and blocks. Here two
// pinned 4 MiB buffers per device alternate: while the GPU transfers one chunk, the
// host fills (or drains) the other, so a copy runs at close to the bus bandwidth.
// Host to device returns once the last chunk is queued (the source may be reused at
// once: the data already sits in a staging buffer); device to host returns when the
// data is in the destination.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"

namespace dmix::kernels::cuda {
namespace {

constexpr size_t kSmallRequestLimit = size_t{1} << 20;
constexpr size_t kSmallGranule = 512;
constexpr size_t kLargeGranule = size_t{2} << 20;
constexpr size_t kStagingBytes = size_t{4} << 20;

size_t round_up(size_t bytes, size_t granule) { return (bytes + granule - 1) / granule * granule; }

size_t size_class(size_t bytes) {
  return bytes <= kSmallRequestLimit ? round_up(bytes, kSmallGranule) : round_up(bytes, kLargeGranule);
}

struct ByteCount {
  size_t bytes;
};
std::ostream& operator<<(std::ostream& os, ByteCount b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(b.bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 6) {
    value /= 1024.0;
    ++unit;
  }
  std::ostringstream text;
  text.precision(unit == 0 ? 0 : 2);
  text << std::fixed << value << ' ' << units[unit];
  return os << text.str();
}

struct StagingBuffer {
  void* host = nullptr;
  cudaEvent_t free_again = nullptr;  // recorded after the last transfer that uses `host`
};

struct DeviceState {
  std::mutex mutex;  // guards everything below except the staging buffers
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
#if DMIX_HAS_CUDNN
  cudnnHandle_t cudnn = nullptr;
#endif
  std::unordered_map<size_t, std::vector<void*>> cached_blocks;  // size class -> free blocks
  std::unordered_map<void*, size_t> live_blocks;                 // handed out -> size class
  MemoryStats stats;

  // Held for a whole host transfer, so one transfer owns both buffers; allocation
  // does not wait for a long copy to finish.
  std::mutex staging_mutex;
  StagingBuffer staging[2];
};

// Never destroyed: at exit the driver tears the context down with the process, and a
// static destructor calling cudaFree may run after the driver has already unloaded.
std::vector<std::unique_ptr<DeviceState>>& device_states() {
  static auto* states = [] {
    auto* v = new std::vector<std::unique_ptr<DeviceState>>();
    for (int d = 0; d < device_count(); ++d) v->push_back(std::make_unique<DeviceState>());
    return v;
  }();
  return *states;
}

DeviceState& state_of(int device, const char* op) {
  check_device(device, op);
  return *device_states()[device];
}

// The caller holds s.mutex.
cudaStream_t stream_locked(DeviceState& s, int device) {
  if (!s.stream) {
    DeviceGuard guard(device);
    // A blocking stream (not cudaStreamNonBlocking) also orders itself with the legacy
    // default stream, so code that forgets to pass stream(device) is still correct.
    check_cuda(cudaStreamCreateWithFlags(&s.stream, cudaStreamDefault), "cudaStreamCreateWithFlags");
  }
  return s.stream;
}

// The caller holds s.mutex.
void free_cached_blocks_locked(DeviceState& s, int device) {
  if (s.cached_blocks.empty()) return;
  DeviceGuard guard(device);
  // A cached block may still be read by queued kernels of its last owner.
  if (s.stream) check_cuda(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize (empty_cache)");
  for (auto& [size, blocks] : s.cached_blocks) {
    while (!blocks.empty()) {  // one block at a time, so the stats stay true if a cudaFree throws
      void* block = blocks.back();
      blocks.pop_back();
      s.stats.cached_bytes -= size;
      check_cuda(cudaFree(block), "cudaFree (empty_cache)");
    }
  }
  s.cached_blocks.clear();
}

// The caller holds s.staging_mutex.
void ensure_staging_locked(DeviceState& s) {
  for (StagingBuffer& buffer : s.staging) {
    if (!buffer.host)
      check_cuda(cudaHostAlloc(&buffer.host, kStagingBytes, cudaHostAllocDefault), "cudaHostAlloc (staging buffer)");
    if (!buffer.free_again)
      check_cuda(cudaEventCreateWithFlags(&buffer.free_again, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  }
}

void check_pointers(const char* op, const void* dst, const void* src, size_t bytes) {
  check(dst != nullptr && src != nullptr, op, "null pointer for a copy of ", bytes, " bytes");
}

}  // namespace

int device_count() {
  // Asked once: without a driver cudaGetDeviceCount fails (no driver, driver too old,
  // no device), and this build must then behave like a machine without GPUs.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

void check_device(int device, const char* op) {
  const int count = device_count();
  if (count == 0) fail(op, "cuda:", device, " requested but no CUDA device is visible (no GPU, or no driver)");
  check(device >= 0 && device < count, op, "no device cuda:", device, " (", count, " CUDA device",
        count == 1 ? "" : "s", " visible)");
}

DeviceGuard::DeviceGuard(int device) {
  int current = 0;
  check_cuda(cudaGetDevice(&current), "cudaGetDevice");
  if (current != device) {
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    previous_ = current;
  }
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);  // destructors must not throw; nothing to recover
}

cudaStream_t stream(int device) {
  DeviceState& s = state_of(device, "cuda stream");
  std::lock_guard<std::mutex> lock(s.mutex);
  return stream_locked(s, device);
}

cublasHandle_t cublas_handle(int device) {
  DeviceState& s = state_of(device, "cublas handle");
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.cublas) {
    DeviceGuard guard(device);
    cudaStream_t st = stream_locked(s, device);
    check_cublas(cublasCreate(&s.cublas), "cublasCreate");
    check_cublas(cublasSetStream(s.cublas, st), "cublasSetStream");
  }
  return s.cublas;
}

#if DMIX_HAS_CUDNN
cudnnHandle_t cudnn_handle(int device) {
  DeviceState& s = state_of(device, "cudnn handle");
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.cudnn) {
    DeviceGuard guard(device);
    cudaStream_t st = stream_locked(s, device);
    check_cudnn(cudnnCreate(&s.cudnn), "cudnnCreate");
    check_cudnn(cudnnSetStream(s.cudnn, st), "cudnnSetStream");
  }
  return s.cudnn;
}
#endif

void* allocate(size_t bytes, int device) {
  const char* op = "cuda allocate";
  DeviceState& s = state_of(device, op);
  if (bytes == 0) return nullptr;
  check(bytes <= SIZE_MAX - kLargeGranule, op, "request of ", bytes, " bytes is too large");
  const size_t block_bytes = size_class(bytes);

  std::lock_guard<std::mutex> lock(s.mutex);
  void* block = nullptr;
  auto cached = s.cached_blocks.find(block_bytes);
  if (cached != s.cached_blocks.end() && !cached->second.empty()) {
    block = cached->second.back();
    cached->second.pop_back();
    s.stats.cached_bytes -= block_bytes;
  } else {
    DeviceGuard guard(device);
    cudaError_t status = cudaMalloc(&block, block_bytes);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      free_cached_blocks_locked(s, device);  // blocks of other size classes may fit the request once freed
      status = cudaMalloc(&block, block_bytes);
    }
    if (status != cudaSuccess) {
      cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) cudaGetLastError();
      fail(op, "cannot allocate ", ByteCount{bytes}, " (", bytes, " bytes, block of ", ByteCount{block_bytes},
           ") on cuda:", device, ": ", cudaGetErrorString(status), "; dmix holds ", ByteCount{s.stats.current_bytes},
           " in use (peak ", ByteCount{s.stats.peak_bytes}, ") and ", ByteCount{s.stats.cached_bytes},
           " cached; the device has ", ByteCount{free_bytes}, " free of ", ByteCount{total_bytes});
    }
  }
  s.live_blocks.emplace(block, block_bytes);
  s.stats.current_bytes += block_bytes;
  s.stats.peak_bytes = std::max(s.stats.peak_bytes, s.stats.current_bytes);
  return block;
}

void release(void* ptr, int device) {
  if (!ptr) return;
  const char* op = "cuda release";
  DeviceState& s = state_of(device, op);
  std::lock_guard<std::mutex> lock(s.mutex);
  auto live = s.live_blocks.find(ptr);
  check(live != s.live_blocks.end(), op, "pointer ", ptr, " was not allocated by dmix on cuda:", device,
        " (or was released twice)");
  const size_t block_bytes = live->second;
  s.live_blocks.erase(live);
  s.cached_blocks[block_bytes].push_back(ptr);
  s.stats.current_bytes -= block_bytes;
  s.stats.cached_bytes += block_bytes;
}

MemoryStats memory_stats(int device) {
  DeviceState& s = state_of(device, "cuda memory_stats");
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.stats;
}

void empty_cache(int device) {
  DeviceState& s = state_of(device, "cuda empty_cache");
  std::lock_guard<std::mutex> lock(s.mutex);
  free_cached_blocks_locked(s, device);
}

void copy_host_to_device(void* dst, const void* src, size_t bytes, int device) {
  const char* op = "copy_host_to_device";
  DeviceState& s = state_of(device, op);
  if (bytes == 0) return;
  check_pointers(op, dst, src, bytes);
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  std::lock_guard<std::mutex> lock(s.staging_mutex);
  ensure_staging_locked(s);
  size_t chunk_index = 0;
  for (size_t offset = 0; offset < bytes; offset += kStagingBytes, ++chunk_index) {
    const size_t n = std::min(kStagingBytes, bytes - offset);
    StagingBuffer& buffer = s.staging[chunk_index % 2];
    check_cuda(cudaEventSynchronize(buffer.free_again), "cudaEventSynchronize (staging buffer)");
    std::memcpy(buffer.host, static_cast<const char*>(src) + offset, n);
    check_cuda(cudaMemcpyAsync(static_cast<char*>(dst) + offset, buffer.host, n, cudaMemcpyHostToDevice, st),
               "cudaMemcpyAsync (host to device)");
    check_cuda(cudaEventRecord(buffer.free_again, st), "cudaEventRecord");
  }
}

void copy_device_to_host(void* dst, const void* src, size_t bytes, int device) {
  const char* op = "copy_device_to_host";
  DeviceState& s = state_of(device, op);
  if (bytes == 0) return;
  check_pointers(op, dst, src, bytes);
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  std::lock_guard<std::mutex> lock(s.staging_mutex);
  ensure_staging_locked(s);
  const size_t chunks = (bytes + kStagingBytes - 1) / kStagingBytes;
  auto enqueue = [&](size_t chunk) {
    const size_t offset = chunk * kStagingBytes;
    StagingBuffer& buffer = s.staging[chunk % 2];
    check_cuda(cudaMemcpyAsync(buffer.host, static_cast<const char*>(src) + offset,
                               std::min(kStagingBytes, bytes - offset), cudaMemcpyDeviceToHost, st),
               "cudaMemcpyAsync (device to host)");
    check_cuda(cudaEventRecord(buffer.free_again, st), "cudaEventRecord");
  };
  enqueue(0);
  for (size_t chunk = 0; chunk < chunks; ++chunk) {
    // Queue the next chunk into the other buffer before draining this one: the GPU
    // transfers while the host copies out.
    if (chunk + 1 < chunks) enqueue(chunk + 1);
    const size_t offset = chunk * kStagingBytes;
    StagingBuffer& buffer = s.staging[chunk % 2];
    check_cuda(cudaEventSynchronize(buffer.free_again), "cudaEventSynchronize (device to host)");
    std::memcpy(static_cast<char*>(dst) + offset, buffer.host, std::min(kStagingBytes, bytes - offset));
  }
}

void copy_device_to_device(void* dst, const void* src, size_t bytes, int device) {
  const char* op = "copy_device_to_device";
  check_device(device, op);
  if (bytes == 0) return;
  check_pointers(op, dst, src, bytes);
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st), "cudaMemcpyAsync (device to device)");
}

void memset_zero(void* dst, size_t bytes, int device) {
  const char* op = "cuda memset_zero";
  check_device(device, op);
  if (bytes == 0) return;
  check(dst != nullptr, op, "null pointer for ", bytes, " bytes");
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  check_cuda(cudaMemsetAsync(dst, 0, bytes, st), "cudaMemsetAsync");
}

void synchronize(int device) {
  cudaStream_t st = stream(device);
  DeviceGuard guard(device);
  check_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize");
}

}  // namespace dmix::kernels::cuda
