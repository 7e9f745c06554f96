// Devices in every build, with or without the CUDA backend: how many GPUs this process can
// use, the one error for a GPU it cannot use (saying whether the GPU or the backend is
// missing), and synchronize.
#include <doctest/doctest.h>

#include <string>

#include "engine/device.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "kernels/cuda/build_config.h"

using namespace dmix;

TEST_CASE("device: a GPU this process cannot use is one error saying what is missing") {
  const Device missing = Device::cuda(cuda_device_count());  // one past the last usable GPU
  const std::string asked = "asked for " + missing.str() + " but " +
                            (kernels::cuda::kBuilt ? "no such GPU is present" : "dmix was built without CUDA");
  CHECK_THROWS_WITH_AS(check_device("op", missing), ("op: " + asked).c_str(), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({2}, DType::f32, missing), ("empty: " + asked).c_str(), Error);
  CHECK_THROWS_WITH_AS(synchronize(missing), ("synchronize: " + asked).c_str(), Error);
  CHECK_NOTHROW(check_device("op", Device::cpu()));
  CHECK_NOTHROW(synchronize(Device::cpu()));
  CHECK(cuda_available() == (cuda_device_count() > 0));
}

TEST_CASE("device: a build without the CUDA backend sees no GPU and allocates no GPU memory" *
          doctest::skip(kernels::cuda::kBuilt)) {
  CHECK(cuda_device_count() == 0);
  CHECK_FALSE(cuda_available());
  CHECK_THROWS_WITH_AS(Storage(64, Device::cuda(0)), "Storage: asked for cuda:0 but dmix was built without CUDA",
                       Error);
}
