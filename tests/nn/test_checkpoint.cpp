// Checkpoints read from hostile bytes: nn::load_checkpoint from memory runs the file
// reader's checks, and the format version is parsed without undefined behaviour.
// dmix::load_model's metadata checks (include/dmix/, above this layer) are replayed by the
// fuzz harness tests/fuzz/fuzz_checkpoint.cpp from its corpus.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "engine/safetensors.h"
#include "nn/checkpoint.h"
#include "tests/test_util.h"

using namespace dmix;
using dmix::testing::contains;
using dmix::testing::error_of;
using dmix::testing::TempDir;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::map<std::string, std::string> checkpoint_meta() {
  return {{"format", nn::kCheckpointFormat}, {"format_version", "1.0"}, {"model", "pyramidnet8_a0_basic"},
          {"num_classes", "2"},              {"in_channels", "1"}};
}

}  // namespace

TEST_CASE("checkpoint: from memory reads what the file holds and names `what` in its errors") {
  TempDir tmp;
  const std::map<std::string, Tensor> tensors{{"model.fc.weight", Tensor::zeros({2, 16})},
                                              {"optim.fc.weight.momentum", Tensor::ones({2, 16})}};
  save_safetensors(tmp.file("c.safetensors"), tensors, checkpoint_meta());
  const std::string bytes = read_bytes(tmp.file("c.safetensors"));
  const nn::Checkpoint c = nn::load_checkpoint_from_memory(bytes.data(), bytes.size(), "buffer");
  CHECK(c.is_dmix_checkpoint);
  REQUIRE(c.model.count("fc.weight") == 1);
  REQUIRE(c.optimizer.count("fc.weight.momentum") == 1);
  CHECK(c.optimizer.at("fc.weight.momentum").data<float>()[31] == 1.0f);
  CHECK(c.meta("model") == "pyramidnet8_a0_basic");
  const std::string e = error_of([&] { nn::load_checkpoint_from_memory(bytes.data(), bytes.size() - 1, "buffer"); });
  CHECK(contains(e, "load_safetensors: buffer: "));
}

TEST_CASE("checkpoint: a format version of any length is read without overflow") {
  TempDir tmp;
  for (const std::string& version : {std::string(40, '9'), std::string("2.0"), std::string("x"), std::string("")}) {
    CAPTURE(version);
    auto meta = checkpoint_meta();
    meta["format_version"] = version;
    save_safetensors(tmp.file("v.safetensors"), {}, meta);
    CHECK(contains(error_of([&] { nn::load_checkpoint(tmp.file("v.safetensors")); }),
                   "checkpoint format version " + version + " is not readable"));
  }
  auto meta = checkpoint_meta();
  meta["format_version"] = "1.7";
  save_safetensors(tmp.file("v.safetensors"), {}, meta);
  CHECK(nn::load_checkpoint(tmp.file("v.safetensors")).is_dmix_checkpoint);
}
