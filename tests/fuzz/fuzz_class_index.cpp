// Class-index files, text (NAME [description], or INDEX NAME [description]) and JSON
// (imagenet_class_index.json's {"INDEX": ["NAME", "description"]}): indices, duplicates,
// empty names. A file that parses must give as many descriptions as names, none empty.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "augment/datasets.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  dmix::fuzz::expect_only_dmix_errors([&] {
    const dmix::augment::ClassIndex ci = dmix::augment::parse_class_index(text, "fuzz");
    if (ci.names.empty() || ci.names.size() != ci.descriptions.size()) std::abort();
    for (const std::string& name : ci.names)
      if (name.empty()) std::abort();
  });
  return 0;
}
