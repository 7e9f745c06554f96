// The CUDA runtime of a build without the CUDA backend (-DDMIX_CUDA=OFF, or no
// toolkit found). It reports no devices, and everything that would need one throws a
// dmix::Error saying how to get a build that has them — the same entry points exist,
// so code that supports GPUs compiles and links unchanged.
#include <atomic>

#include "engine/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"

namespace dmix::kernels::cuda {
namespace {

[[noreturn]] void unavailable(const char* op) {
  fail(op, "dmix was built without the CUDA backend (configure with -DDMIX_CUDA=ON)");
}

std::atomic<bool> tf32_allowed{false};

}  // namespace

bool built_with_cuda() { return false; }
int device_count() { return 0; }

void* allocate(size_t, int) { unavailable("cuda allocate"); }
void release(void*, int) { unavailable("cuda release"); }
void copy_host_to_device(void*, const void*, size_t, int) { unavailable("copy_host_to_device"); }
void copy_device_to_host(void*, const void*, size_t, int) { unavailable("copy_device_to_host"); }
void copy_device_to_device(void*, const void*, size_t, int) { unavailable("copy_device_to_device"); }
void memset_zero(void*, size_t, int) { unavailable("cuda memset_zero"); }
void synchronize(int) { unavailable("cuda synchronize"); }
MemoryStats memory_stats(int) { unavailable("cuda memory_stats"); }
void empty_cache(int) { unavailable("cuda empty_cache"); }

void gemm_cublas(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                 float*, int64_t, int) {
  unavailable("gemm_cublas");
}
void gemm_tiled(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                float*, int64_t, int) {
  unavailable("gemm_tiled");
}

// A preference, not a request for a device: a program may set it from its options
// whatever the build, and it is simply never consulted here.
void set_allow_tf32(bool allow) { tf32_allowed.store(allow); }
bool allow_tf32() { return tf32_allowed.load(); }

}  // namespace dmix::kernels::cuda
