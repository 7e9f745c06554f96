// What the libFuzzer harnesses share. A harness hands its bytes to one parser; an expected
// rejection is a dmix::Error, which the harness swallows. Anything else is a finding that
// libFuzzer reports and stops on: a crash or sanitizer report, an allocation above its
// -malloc_limit_mb, and any other exception (std::bad_alloc from an unbounded allocation,
// std::out_of_range from a library call), which escapes LLVMFuzzerTestOneInput and aborts.
#pragma once
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "engine/error.h"

namespace dmix::fuzz {

template <class Parse>
void expect_only_dmix_errors(Parse&& parse) {
  try {
    parse();
  } catch (const dmix::Error&) {
  }
}

// A folder of this process's own for parsers that read files, removed when it exits.
// libFuzzer runs one input at a time per process, so one folder per process suffices.
inline const std::string& temp_dir() {
  struct Dir {
    std::string path;
    Dir() {
      const char* base = std::getenv("TMPDIR");
      std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/dmix-fuzz-XXXXXX";
      if (::mkdtemp(pattern.data()) == nullptr) {
        std::perror("dmix fuzz: mkdtemp");
        std::abort();
      }
      path = pattern;
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(("dmix fuzz: writing " + path).c_str());
    std::abort();
  }
}

// Splits one input into two parts for a parser that reads two files: the first 4 bytes
// (little-endian) give the first part's length, clamped to what follows.
struct TwoParts {
  const uint8_t* first;
  size_t first_size;
  const uint8_t* second;
  size_t second_size;
};
inline TwoParts split_in_two(const uint8_t* data, size_t size) {
  if (size < 4) return {data, 0, data, 0};
  const size_t declared = size_t(data[0]) | size_t(data[1]) << 8 | size_t(data[2]) << 16 | size_t(data[3]) << 24;
  const size_t rest = size - 4;
  const size_t n = declared < rest ? declared : rest;
  return {data + 4, n, data + 4 + n, rest - n};
}

}  // namespace dmix::fuzz
