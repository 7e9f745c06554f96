// safetensors files: named tensors plus string metadata, in the format Hugging Face defined
// so that checkpoints move between dmix and PyTorch both ways.
//
// Layout: 8 bytes N (unsigned, little-endian), then N bytes of UTF-8 JSON
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// padded with spaces so that N is a multiple of 8, then the raw little-endian, row-major
// tensor bytes. data_offsets count from the first byte after the header; the ranges tile
// the data section exactly (no overlaps, no holes).
//
// dtypes: F32, F64, I64, U8, F16 and BF16 (the engine's reserved half types). Anything
// else is rejected by name when loading.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <string>

#include "engine/tensor.h"

namespace dmix {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;          // CPU tensors, ordered by name
  std::map<std::string, std::string> metadata;    // the "__metadata__" object
};

// Writes atomically: the bytes go to `path + ".tmp.<pid>"`, which is flushed, fsynced and
// renamed over `path`, and then the directory is fsynced. An existing file at `path` is
// untouched until the rename, so a crash or an error leaves either the old file or the
// new one, never a mix. On failure the temporary file is removed and a dmix::Error naming
// the path is thrown. CUDA tensors are copied to the host first.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads and validates the whole file: every problem (short file, header length, JSON,
// unknown dtype, shape/size mismatch, offsets outside the data or overlapping, bytes no
// tensor owns) is one dmix::Error "load_safetensors: <path>: <what is wrong>".
SafetensorsFile load_safetensors(const std::string& path);
// The same from bytes in memory (a file read or mapped by the caller, a network buffer);
// `what` stands for the path in the messages.
SafetensorsFile load_safetensors_from_memory(const void* data, size_t size, const std::string& what = "<memory>");

namespace detail {
// Test hook: when set, save_safetensors calls it before writing each chunk to the
// temporary file, with the number of bytes already written. Throwing from it simulates
// a failure half-way through a write; tests reset it to nullptr afterwards.
extern std::function<void(size_t bytes_written)> safetensors_write_hook;
}  // namespace detail

}  // namespace dmix
