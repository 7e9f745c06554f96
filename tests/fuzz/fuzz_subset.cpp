// Subset files (`dmix train --subset`, written by `dmix subsample`): the header's counts,
// one index per line, ranges and repeats, for a dataset of 1000 images. A file that loads
// must give distinct indices inside the dataset.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "augment/loader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr int64_t kDatasetSize = 1000;
  const std::string path = dmix::fuzz::temp_dir() + "/subset.txt";
  dmix::fuzz::write_file(path, data, size);
  dmix::fuzz::expect_only_dmix_errors([&] {
    const std::vector<int64_t> subset = dmix::augment::load_subset_file(path, kDatasetSize);
    std::vector<bool> seen(kDatasetSize, false);
    for (int64_t i : subset) {
      if (i < 0 || i >= kDatasetSize || seen[i]) std::abort();
      seen[i] = true;
    }
  });
  return 0;
}
