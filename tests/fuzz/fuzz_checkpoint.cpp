// Checkpoints from bytes: nn::load_checkpoint's format and version checks and tensor
// prefixes, then, for a file that reads as a dmix checkpoint, dmix::load_model's metadata
// (model name, class count, input channels against the weights the file holds) up to
// building the model and loading its state dict. load_model reads a path, so such a file
// is written to this process's temporary folder first.
#include <cstddef>
#include <cstdint>

#include <dmix/model_io.h>

#include "nn/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dmix::fuzz::expect_only_dmix_errors([&] {
    const dmix::nn::Checkpoint c = dmix::nn::load_checkpoint_from_memory(data, size, "fuzz");
    const std::string path = dmix::fuzz::temp_dir() + "/checkpoint.safetensors";
    dmix::fuzz::write_file(path, data, size);
    if (c.is_dmix_checkpoint) {
      dmix::load_model(path);
    } else {
      // A plain state dict: the class count and input channels come from its tensors.
      dmix::load_model(path, dmix::ModelSpec{"pyramidnet8_a0_basic"});
    }
  });
  return 0;
}
