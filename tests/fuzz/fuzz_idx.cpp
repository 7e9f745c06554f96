// Fashion-MNIST's IDX files, gzipped or raw (zlib's gzread reads both): magic numbers,
// dimension sizes against the data that follows, trailing bytes, gzip streams and
// trailers, label ranges. One input holds both files (fuzz_util.h: split_in_two), written
// as t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte.
#include <cstddef>
#include <cstdint>

#include "augment/datasets.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const dmix::fuzz::TwoParts parts = dmix::fuzz::split_in_two(data, size);
  const std::string& dir = dmix::fuzz::temp_dir();
  dmix::fuzz::write_file(dir + "/t10k-images-idx3-ubyte", parts.first, parts.first_size);
  dmix::fuzz::write_file(dir + "/t10k-labels-idx1-ubyte", parts.second, parts.second_size);
  dmix::fuzz::expect_only_dmix_errors([&] { dmix::augment::load_fashion_mnist(dir, /*train=*/false); });
  return 0;
}
