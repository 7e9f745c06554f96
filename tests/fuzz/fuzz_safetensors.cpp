// safetensors from bytes: header length, JSON, dtypes, shapes (products that overflow),
// data offsets (overlapping, out of range, holes) and huge headers. A file that loads
// must give tensors whose byte counts are what their entries claimed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dmix::fuzz::expect_only_dmix_errors([&] {
    const dmix::SafetensorsFile file = dmix::load_safetensors_from_memory(data, size, "fuzz");
    size_t bytes = 0;
    for (const auto& [name, t] : file.tensors) bytes += t.nbytes();
    // The tensors tile the data section, which follows the 8-byte length and the header.
    if (bytes > size) std::abort();
  });
  return 0;
}
