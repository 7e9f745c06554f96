// CIFAR-10/100 binary batches: record sizes, label ranges (coarse and fine), and the class
// names file. The first byte picks CIFAR-100 (bit 0) and whether a names file is written
// (bit 1); with one, the rest is split in two (fuzz_util.h: split_in_two), names first.
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "augment/datasets.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool cifar100 = (data[0] & 1) != 0, with_names = (data[0] & 2) != 0;
  dmix::fuzz::TwoParts parts{nullptr, 0, data + 1, size - 1};
  if (with_names) parts = dmix::fuzz::split_in_two(data + 1, size - 1);
  const std::string& dir = dmix::fuzz::temp_dir();
  const std::string batch = dir + (cifar100 ? "/test.bin" : "/test_batch.bin");
  const std::string names = dir + (cifar100 ? "/fine_label_names.txt" : "/batches.meta.txt");
  for (const char* f : {"/test.bin", "/test_batch.bin", "/fine_label_names.txt", "/batches.meta.txt"})
    ::unlink((dir + f).c_str());
  dmix::fuzz::write_file(batch, parts.second, parts.second_size);
  if (with_names) dmix::fuzz::write_file(names, parts.first, parts.first_size);
  dmix::fuzz::expect_only_dmix_errors([&] {
    if (cifar100) {
      dmix::augment::load_cifar100(dir, /*train=*/false);
    } else {
      dmix::augment::load_cifar10(dir, /*train=*/false);
    }
  });
  return 0;
}
