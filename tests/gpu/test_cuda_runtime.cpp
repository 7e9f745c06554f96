// The CUDA runtime (kernels/cuda/runtime.h): copies, the caching allocator and its
// statistics, and the errors it raises. Runs only where a GPU is present; elsewhere
// each case is reported as skipped. One case checks the opposite: without a GPU, every
// request for one fails with a clear dmix::Error. (This suite exists only in builds with the
// CUDA backend; tests/engine/test_device.cpp covers builds without it.)
#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "engine/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"
#include "tests/gpu/gpu_test_util.h"

namespace cuda = dmix::kernels::cuda;
using dmix::gpu_test::DeviceBuffer;
using dmix::gpu_test::has_gpu;
using dmix::gpu_test::random_bytes;

namespace {

// The allocator's size classes, as documented in kernels/cuda/runtime.cu.
constexpr size_t kSmallGranule = 512;
constexpr size_t kLargeGranule = size_t{2} << 20;

std::string message_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const dmix::Error& e) {
    return e.what();
  }
  return "(no dmix::Error thrown)";
}

}  // namespace

TEST_CASE("cuda runtime: without a GPU every device request fails with a clear error" *
          doctest::skip(has_gpu())) {
  CHECK(cuda::device_count() == 0);
  const std::string expected = "no CUDA device is visible";
  const std::string alloc_error = message_of([] { cuda::allocate(64, 0); });
  INFO("allocate: " << alloc_error);
  CHECK(alloc_error.find(expected) != std::string::npos);
  CHECK(alloc_error.find("cuda allocate") != std::string::npos);
  CHECK(message_of([] { cuda::synchronize(0); }).find(expected) != std::string::npos);
  CHECK(message_of([] { cuda::memory_stats(0); }).find(expected) != std::string::npos);
  float dummy = 0.0f;
  const std::string gemm_error =
      message_of([&] { cuda::gemm_tiled(false, false, 1, 1, 1, 1.0f, &dummy, 1, &dummy, 1, 0.0f, &dummy, 1, 0); });
  INFO("gemm_tiled: " << gemm_error);
  CHECK(gemm_error.find(expected) != std::string::npos);
}

TEST_CASE("cuda runtime: the build has the CUDA backend and sees a device" * doctest::skip(!has_gpu())) {
  CHECK(cuda::device_count() >= 1);
  MESSAGE("CUDA devices visible: " << cuda::device_count());
}

TEST_CASE("cuda runtime: host -> device -> device -> host round trip of odd sizes" * doctest::skip(!has_gpu())) {
  // Sizes straddle the allocator's classes and the 4 MiB staging chunks (9 MiB + 13
  // takes three chunks, the last one partial).
  const size_t sizes[] = {1, 3, 511, 512, 513, 4097, (size_t{1} << 20) + 7, (size_t{4} << 20), (size_t{9} << 20) + 13};
  uint32_t seed = 1;
  for (size_t bytes : sizes) {
    CAPTURE(bytes);
    const std::vector<unsigned char> host = random_bytes(bytes, seed++);
    DeviceBuffer<unsigned char> first(bytes), second(bytes);
    first.upload(host);
    cuda::copy_device_to_device(second.get(), first.get(), bytes, 0);
    // No synchronize in between: the copies are ordered by the device's stream.
    const std::vector<unsigned char> back = second.download();
    CHECK(std::memcmp(back.data(), host.data(), bytes) == 0);
  }
}

TEST_CASE("cuda runtime: a host buffer may be reused as soon as the upload returns" * doctest::skip(!has_gpu())) {
  const size_t bytes = (size_t{6} << 20) + 5;
  std::vector<unsigned char> host = random_bytes(bytes, 7);
  const std::vector<unsigned char> original = host;
  DeviceBuffer<unsigned char> buffer(bytes);
  buffer.upload(host);
  std::memset(host.data(), 0xAB, bytes);  // must not reach the device
  CHECK(buffer.download() == original);
}

TEST_CASE("cuda runtime: memset_zero clears exactly the requested bytes" * doctest::skip(!has_gpu())) {
  const size_t bytes = 1000;
  const std::vector<unsigned char> host = random_bytes(bytes, 3);
  DeviceBuffer<unsigned char> buffer(bytes);
  buffer.upload(host);
  cuda::memset_zero(buffer.get() + 100, 777, 0);
  const std::vector<unsigned char> back = buffer.download();
  for (size_t i = 0; i < bytes; ++i) {
    const bool inside = i >= 100 && i < 877;
    if (back[i] != (inside ? 0 : host[i])) {
      FAIL_CHECK("byte " << i << " is " << int(back[i]));
      break;
    }
  }
}

TEST_CASE("cuda runtime: sizes round to the documented classes and stats follow" * doctest::skip(!has_gpu())) {
  cuda::synchronize(0);
  cuda::empty_cache(0);
  const cuda::MemoryStats before = cuda::memory_stats(0);
  CHECK(before.cached_bytes == 0);
  CHECK(before.peak_bytes >= before.current_bytes);

  struct Case {
    size_t request, block;
  };
  const Case cases[] = {{1, kSmallGranule},
                        {1000, 2 * kSmallGranule},
                        {1 << 20, 1 << 20},
                        {(1 << 20) + 1, kLargeGranule},
                        {(size_t{3} << 20) + 1, 2 * kLargeGranule}};
  for (const Case& c : cases) {
    CAPTURE(c.request);
    void* p = cuda::allocate(c.request, 0);
    REQUIRE(p != nullptr);
    const cuda::MemoryStats held = cuda::memory_stats(0);
    CHECK(held.current_bytes == before.current_bytes + c.block);
    CHECK(held.peak_bytes >= held.current_bytes);
    cuda::release(p, 0);
    const cuda::MemoryStats freed = cuda::memory_stats(0);
    CHECK(freed.current_bytes == before.current_bytes);
    CHECK(freed.cached_bytes == c.block);  // kept for reuse, not given back
    cuda::empty_cache(0);
    CHECK(cuda::memory_stats(0).cached_bytes == 0);
  }
}

TEST_CASE("cuda runtime: repeated alloc/free of one size reuses the cached block" * doctest::skip(!has_gpu())) {
  const size_t bytes = (size_t{5} << 20) + 123;
  cuda::release(cuda::allocate(bytes, 0), 0);  // warm-up: the only cudaMalloc
  const cuda::MemoryStats warm = cuda::memory_stats(0);
  void* first = cuda::allocate(bytes, 0);
  cuda::release(first, 0);
  for (int i = 0; i < 200; ++i) {
    void* p = cuda::allocate(bytes, 0);
    CHECK(p == first);  // the same block every time
    const cuda::MemoryStats held = cuda::memory_stats(0);
    // Nothing new was reserved from the driver: in use + cached stays constant.
    CHECK(held.current_bytes + held.cached_bytes == warm.current_bytes + warm.cached_bytes);
    cuda::release(p, 0);
  }
  const cuda::MemoryStats after = cuda::memory_stats(0);
  CHECK(after.peak_bytes == warm.peak_bytes);
  CHECK(after.current_bytes == warm.current_bytes);
  CHECK(after.cached_bytes == warm.cached_bytes);
}

TEST_CASE("cuda runtime: zero bytes and null pointers" * doctest::skip(!has_gpu())) {
  const cuda::MemoryStats before = cuda::memory_stats(0);
  CHECK(cuda::allocate(0, 0) == nullptr);
  CHECK_NOTHROW(cuda::release(nullptr, 0));
  CHECK_NOTHROW(cuda::copy_host_to_device(nullptr, nullptr, 0, 0));
  CHECK_NOTHROW(cuda::copy_device_to_host(nullptr, nullptr, 0, 0));
  CHECK(cuda::memory_stats(0).current_bytes == before.current_bytes);
  unsigned char host = 0;
  CHECK_THROWS_AS(cuda::copy_host_to_device(nullptr, &host, 1, 0), dmix::Error);
}

TEST_CASE("cuda runtime: an impossible allocation throws with the size and stats, then the allocator still works" *
          doctest::skip(!has_gpu())) {
  const size_t huge = size_t{1} << 50;  // 1 PiB
  const cuda::MemoryStats before = cuda::memory_stats(0);
  const std::string error = message_of([&] { cuda::allocate(huge, 0); });
  INFO(error);
  CHECK(error.find("cannot allocate") != std::string::npos);
  CHECK(error.find(std::to_string(huge)) != std::string::npos);
  CHECK(error.find("cached") != std::string::npos);
  CHECK(cuda::memory_stats(0).current_bytes == before.current_bytes);
  // The failed cudaMalloc must not linger as the runtime's last error.
  const std::vector<unsigned char> host = random_bytes(4096, 11);
  DeviceBuffer<unsigned char> buffer(host.size());
  buffer.upload(host);
  CHECK(buffer.download() == host);
  std::vector<float> a{2.0f}, c{0.0f};
  DeviceBuffer<float> da(1), dc(1);
  da.upload(a);
  CHECK_NOTHROW(cuda::gemm_tiled(false, false, 1, 1, 1, 1.0f, da.get(), 1, da.get(), 1, 0.0f, dc.get(), 1, 0));
  CHECK(dc.download()[0] == 4.0f);
}

TEST_CASE("cuda runtime: bad device indices and foreign pointers are errors" * doctest::skip(!has_gpu())) {
  const int missing = cuda::device_count();
  const std::string error = message_of([&] { cuda::allocate(16, missing); });
  INFO(error);
  CHECK(error.find("cuda:" + std::to_string(missing)) != std::string::npos);
  CHECK_THROWS_AS(cuda::allocate(16, -1), dmix::Error);
  CHECK_THROWS_AS(cuda::synchronize(missing), dmix::Error);

  int not_from_dmix = 0;
  CHECK_THROWS_AS(cuda::release(&not_from_dmix, 0), dmix::Error);
  void* p = cuda::allocate(64, 0);
  cuda::release(p, 0);
  const std::string twice = message_of([&] { cuda::release(p, 0); });
  CHECK(twice.find("released twice") != std::string::npos);
}

TEST_CASE("cuda runtime: allocation from several threads at once" * doctest::skip(!has_gpu())) {
  cuda::synchronize(0);
  const cuda::MemoryStats before = cuda::memory_stats(0);
  std::vector<std::thread> threads;
  std::vector<int> errors(4, 0);
  threads.reserve(errors.size());
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &errors] {
      try {
        std::vector<void*> held;
        for (int i = 0; i < 300; ++i) {
          held.push_back(cuda::allocate(static_cast<size_t>(1 + (i * 37 + t * 1001) % 5000), 0));
          if (i % 3 == 2) {
            cuda::release(held.front(), 0);
            held.erase(held.begin());
          }
        }
        for (void* p : held) cuda::release(p, 0);
      } catch (...) {
        ++errors[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int e : errors) CHECK(e == 0);
  const cuda::MemoryStats after = cuda::memory_stats(0);
  CHECK(after.current_bytes == before.current_bytes);
  CHECK(after.peak_bytes >= before.peak_bytes);
}
