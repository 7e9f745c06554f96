// safetensors: round trips of every dtype, the exact byte layout the format prescribes,
// one clear error for each kind of corrupt file, and atomic writes that leave an earlier
// file intact when a write fails or the writer dies half-way.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "tests/test_util.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

using namespace dmix;
namespace fs = std::filesystem;

namespace {

using dmix::testing::contains;
using dmix::testing::error_of;

using dmix::testing::TempDir;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file made by hand, as another writer might: header length, header text, data.
std::string hand_made(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

std::string float_bytes(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}


bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

Tensor filled_bytes(const Shape& shape, DType dtype, unsigned seed) {
  Tensor t = Tensor::empty(shape, dtype);
  auto* p = static_cast<unsigned char*>(t.raw_data());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>((i * 131 + seed * 17 + 7) & 0xff);
  return t;
}

}  // namespace

TEST_CASE("safetensors: every dtype round trips, including 0-d and empty tensors") {
  TempDir dir;
  std::map<std::string, Tensor> tensors = {
      {"f32", Tensor::from_vector<float>({1.5f, -2.25f, 3e-8f, -0.0f, 7.0f, 1e30f}, {2, 3})},
      {"f64", Tensor::from_vector<double>({0.1, -1e-300, 3.0, 4.5, 1e300}, {5})},
      {"i64", Tensor::from_vector<int64_t>({-1, INT64_MAX, INT64_MIN}, {3, 1})},
      {"u8", Tensor::from_vector<uint8_t>({0, 1, 127, 128, 254, 255, 9}, {7, 1, 1})},
      {"f16", filled_bytes({3, 3}, DType::f16, 1)},
      {"bf16", filled_bytes({5}, DType::bf16, 2)},
      {"scalar", Tensor::scalar(2.5)},
      {"scalar_i64", Tensor::scalar(-7, DType::i64)},
      {"empty_f32", Tensor::empty({0, 3})},
      {"empty_u8", Tensor::empty({0}, DType::u8)},
      {"layer1.0.conv1.weight", Tensor::full({3, 2, 3, 3}, 0.25)},
  };
  const std::string path = dir.file("all.safetensors");
  save_safetensors(path, tensors);
  SafetensorsFile loaded = load_safetensors(path);
  REQUIRE(loaded.tensors.size() == tensors.size());
  // Named references, not a structured binding: C++17 cannot capture one in CAPTURE's lambda.
  for (const auto& entry : tensors) {
    const std::string& name = entry.first;
    const Tensor& t = entry.second;
    CAPTURE(name);
    REQUIRE(loaded.tensors.count(name) == 1);
    const Tensor& u = loaded.tensors.at(name);
    CHECK(u.is_cpu());
    CHECK(same_bytes(t, u));
  }
  CHECK(loaded.tensors.at("scalar").dim() == 0);
  CHECK(loaded.tensors.at("scalar").item() == 2.5);
  CHECK(loaded.tensors.at("empty_f32").shape() == Shape{0, 3});
  CHECK(loaded.metadata.empty());
  CHECK(dir.entries() == std::vector<std::string>{"all.safetensors"});
}

TEST_CASE("safetensors: metadata round trips, odd characters included") {
  TempDir dir;
  const std::map<std::string, std::string> meta = {
      {"model", "resnet50"},
      {"config", R"({"depth": 50, "widths": [64, 128]})"},
      {"epoch", "17"},
      {"rng", "0123456789abcdef\n\"quoted\"\t\\"},
      {"unicode", "\xce\xbb = 0.5, \xe2\x9c\x93"},
      {"empty", ""},
  };
  const std::string path = dir.file("meta.safetensors");
  save_safetensors(path, {{"w", Tensor::ones({2})}}, meta);
  CHECK(load_safetensors(path).metadata == meta);

  save_safetensors(path, {}, meta);  // metadata only, no tensors
  SafetensorsFile only_meta = load_safetensors(path);
  CHECK(only_meta.tensors.empty());
  CHECK(only_meta.metadata == meta);

  CHECK(error_of([&] { save_safetensors(path, {}, {{"bad", "\xff\xfe"}}); }).find("not valid UTF-8") != std::string::npos);
  CHECK(load_safetensors(path).metadata == meta);  // the failed save left the file alone
}

TEST_CASE("safetensors: the bytes on disk follow the format exactly") {
  TempDir dir;
  const std::string path = dir.file("tiny.safetensors");
  save_safetensors(path,
                   {{"a", Tensor::from_vector<float>({1.0f, 2.0f}, {2})},
                    {"b", Tensor::from_vector<uint8_t>({5}, {1})},
                    {"c", Tensor::from_vector<double>({-3.0}, {1, 1})}},
                   {{"k", "v"}});
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK(n % 8 == 0);
  REQUIRE(bytes.size() == 8 + n + 8 + 4 * 2 + 1);  // f64 + 2 f32 + 1 u8
  const std::string header = bytes.substr(8, n);
  CHECK(header.front() == '{');
  const size_t last = header.find_last_not_of(' ');
  CHECK(header[last] == '}');  // only spaces pad the JSON

  const nlohmann::json j = nlohmann::json::parse(header);
  CHECK(j["__metadata__"] == nlohmann::json{{"k", "v"}});
  CHECK(j["a"]["dtype"] == "F32");
  CHECK(j["b"]["dtype"] == "U8");
  CHECK(j["c"]["dtype"] == "F64");
  CHECK(j["a"]["shape"] == nlohmann::json::array({2}));
  CHECK(j["c"]["shape"] == nlohmann::json::array({1, 1}));
  // Larger elements first, so each tensor starts at a multiple of its element size.
  CHECK(j["c"]["data_offsets"] == nlohmann::json::array({0, 8}));
  CHECK(j["a"]["data_offsets"] == nlohmann::json::array({8, 16}));
  CHECK(j["b"]["data_offsets"] == nlohmann::json::array({16, 17}));

  const std::string data = bytes.substr(8 + n);
  double c;
  std::memcpy(&c, data.data(), 8);
  CHECK(c == -3.0);
  CHECK(data.substr(8, 8) == float_bytes({1.0f, 2.0f}));
  CHECK(data[16] == 5);
}

TEST_CASE("safetensors: a file written by another writer loads (no padding, no metadata)") {
  TempDir dir;
  const std::string path = dir.file("foreign.safetensors");
  write_bytes(path, hand_made(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("y":{"dtype":"I64","shape":[],"data_offsets":[8,16]}})",
                              float_bytes({0.5f, -4.0f}) + le64(42)));
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata.empty());
  CHECK(f.tensors.at("x").to_vector<float>() == std::vector<float>{0.5f, -4.0f});
  CHECK(f.tensors.at("y").dim() == 0);
  CHECK(f.tensors.at("y").item() == 42.0);
}

TEST_CASE("safetensors: bytes in memory load as the file holding them does") {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  save_safetensors(path, {{"w", Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3})},
                          {"i", Tensor::from_vector(std::vector<int64_t>{7, -8}, {2})}},
                   {{"k", "v"}});
  const std::string bytes = read_bytes(path);
  const SafetensorsFile f = load_safetensors_from_memory(bytes.data(), bytes.size());
  CHECK(f.metadata == std::map<std::string, std::string>{{"k", "v"}});
  REQUIRE(f.tensors.size() == 2);
  CHECK(f.tensors.at("w").shape() == Shape{2, 3});
  CHECK(f.tensors.at("w").to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(f.tensors.at("i").to_vector<int64_t>() == std::vector<int64_t>{7, -8});
  CHECK(error_of([&] { load_safetensors_from_memory(nullptr, 0); }) ==
        "load_safetensors: <memory>: file is 0 bytes, too short to hold the 8-byte header length");
}

TEST_CASE("safetensors: every kind of corrupt file is one clear error naming the file") {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  const std::string prefix = "load_safetensors: " + path + ": ";
  auto rejects = [&](const std::string& bytes, const std::string& expected) {
    write_bytes(path, bytes);
    const std::string message = error_of([&] { load_safetensors(path); });
    CAPTURE(message);
    CHECK(message.rfind(prefix, 0) == 0);
    CHECK(message.find(expected) != std::string::npos);
    // The same bytes from memory are the same error, naming what the caller called them.
    CHECK(error_of([&] { load_safetensors_from_memory(bytes.data(), bytes.size(), path); }) == message);
  };
  const std::string x8 = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string two = float_bytes({1, 2});

  SUBCASE("truncated data") {
    save_safetensors(path, {{"w", Tensor::ones({4, 4})}, {"b", Tensor::ones({4})}});
    std::string bytes = read_bytes(path);
    rejects(bytes.substr(0, bytes.size() - 3), "run past the end");
  }
  SUBCASE("truncated inside the header") {
    save_safetensors(path, {{"w", Tensor::ones({4, 4})}});
    rejects(read_bytes(path).substr(0, 20), "larger than the 12 bytes that follow");
  }
  SUBCASE("too short for the length") { rejects("abc", "too short"); }
  SUBCASE("empty file") { rejects("", "too short"); }
  SUBCASE("header length larger than the file") { rejects(le64(1000) + x8 + two, "larger than"); }
  SUBCASE("absurd header length") { rejects(le64(uint64_t(1) << 40) + x8, "100 MB"); }
  SUBCASE("not JSON") { rejects(hand_made(R"({"x": {"dtype": "F32",)", two), "not valid JSON"); }
  SUBCASE("trailing garbage after the JSON") { rejects(hand_made(x8 + "xyz", two), "not valid JSON"); }
  SUBCASE("header is not an object") { rejects(hand_made("[1, 2, 3]", ""), "does not start with '{'"); }
  SUBCASE("unknown dtype") {
    rejects(hand_made(R"({"x":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", two), "dtype I32");
  }
  SUBCASE("dtype not a string") {
    rejects(hand_made(R"({"x":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", two), "dtype is not a string");
  }
  SUBCASE("missing shape") { rejects(hand_made(R"({"x":{"dtype":"F32","data_offsets":[0,8]}})", two), "lacks \"shape\""); }
  SUBCASE("entry not an object") { rejects(hand_made(R"({"x":[1,2]})", ""), "not a JSON object"); }
  SUBCASE("negative size") {
    rejects(hand_made(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", two), "non-negative");
  }
  SUBCASE("fractional size") {
    rejects(hand_made(R"({"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", two), "non-negative integer");
  }
  SUBCASE("overflowing shape") {
    rejects(hand_made(R"({"x":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", two),
            "too large");
  }
  SUBCASE("offsets out of range") {
    rejects(hand_made(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", two), "run past the end");
  }
  SUBCASE("offsets reversed") {
    rejects(hand_made(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", two), "end before they begin");
  }
  SUBCASE("offsets not a pair") {
    rejects(hand_made(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", two), "not [begin, end]");
  }
  SUBCASE("shape and size disagree") {
    rejects(hand_made(R"({"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,8]}})", two), "need 24 bytes");
  }
  SUBCASE("overlapping offsets") {
    rejects(hand_made(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                      two),
            "overlap");
  }
  SUBCASE("bytes no tensor owns between tensors") {
    rejects(hand_made(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("y":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                      two + float_bytes({3})),
            "belong to no tensor");
  }
  SUBCASE("bytes no tensor owns at the end") { rejects(hand_made(x8, two + "junk"), "account for only 8"); }
  SUBCASE("duplicate tensor name") {
    rejects(hand_made(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                      two),
            "names 'x' twice");
  }
  SUBCASE("metadata value not a string") {
    rejects(hand_made(R"({"__metadata__":{"epoch":3},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", two),
            "metadata value for 'epoch' is not a string");
  }
  SUBCASE("metadata not an object") { rejects(hand_made(R"({"__metadata__":"v"})", ""), "not a JSON object"); }
  SUBCASE("missing file") {
    const std::string missing = dir.file("nope.safetensors");
    const std::string message = error_of([&] { load_safetensors(missing); });
    CHECK(message == "load_safetensors: " + missing + ": cannot open: No such file or directory");
  }
  SUBCASE("a directory") {
    CHECK(error_of([&] { load_safetensors(dir.path); }).find("not a regular file") != std::string::npos);
  }
}

TEST_CASE("safetensors: names the writer refuses") {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  CHECK(error_of([&] { save_safetensors(path, {{"", Tensor::ones({1})}}); }).find("empty name") != std::string::npos);
  CHECK(error_of([&] { save_safetensors(path, {{"__metadata__", Tensor::ones({1})}}); }).find("reserved") !=
        std::string::npos);
  CHECK(error_of([&] { save_safetensors(path, {{"x", Tensor()}}); }).find("undefined") != std::string::npos);
  CHECK(dir.entries().empty());
}

TEST_CASE("safetensors: a failed write leaves the earlier file untouched and no temporary file") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const Tensor old_weights = Tensor::full({64, 64}, 1.0);
  save_safetensors(path, {{"w", old_weights}}, {{"epoch", "1"}});
  const std::string old_bytes = read_bytes(path);

  SUBCASE("the writer fails half-way through the data") {
    detail::safetensors_write_hook = [](size_t written) {
      if (written > 8) throw Error("simulated disk failure");
    };
    const std::string message =
        error_of([&] { save_safetensors(path, {{"w", Tensor::full({64, 64}, 2.0)}}, {{"epoch", "2"}}); });
    detail::safetensors_write_hook = nullptr;
    CHECK(message == "save_safetensors: " + path + ": simulated disk failure");
  }
  SUBCASE("the rename fails (a directory is in the way)") {
    const std::string blocked = dir.file("blocked");
    fs::create_directory(blocked);
    fs::create_directory(blocked + "/inside");  // a non-empty directory cannot be replaced
    const std::string message = error_of([&] { save_safetensors(blocked, {{"w", old_weights}}); });
    CHECK(message.rfind("save_safetensors: " + blocked + ": renaming", 0) == 0);
    CHECK(fs::is_directory(blocked + "/inside"));
    fs::remove_all(blocked);
  }
  SUBCASE("the directory does not exist") {
    const std::string nowhere = dir.file("no/such/dir/ckpt.safetensors");
    const std::string message = error_of([&] { save_safetensors(nowhere, {{"w", old_weights}}); });
    CHECK(message.rfind("save_safetensors: " + nowhere + ": cannot create temporary file", 0) == 0);
  }
  CHECK(read_bytes(path) == old_bytes);
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata.at("epoch") == "1");
  CHECK(same_bytes(f.tensors.at("w"), old_weights));
}

TEST_CASE("safetensors: a writer that dies mid-write leaves the earlier file loadable") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  save_safetensors(path, {{"w", Tensor::full({32, 32}, 1.0)}}, {{"epoch", "1"}});
  const std::string old_bytes = read_bytes(path);

  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child dies abruptly after the header is on disk, as a killed process would.
    detail::safetensors_write_hook = [](size_t written) {
      if (written > 8) ::_exit(42);
    };
    try {
      save_safetensors(path, {{"w", Tensor::full({32, 32}, 2.0)}}, {{"epoch", "2"}});
    } catch (...) {
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 42);

  CHECK(read_bytes(path) == old_bytes);
  CHECK(load_safetensors(path).metadata.at("epoch") == "1");
  // Only a dead process's half-written temporary file remains beside it, never in its place.
  const std::string leftover = path + ".tmp." + std::to_string(child);
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors", "ckpt.safetensors.tmp." + std::to_string(child)});
  CHECK(!error_of([&] { load_safetensors(leftover); }).empty());

  // The next save replaces the file whole.
  save_safetensors(path, {{"w", Tensor::full({32, 32}, 3.0)}}, {{"epoch", "3"}});
  CHECK(load_safetensors(path).tensors.at("w").to_vector<float>() == std::vector<float>(32 * 32, 3.0f));
}
