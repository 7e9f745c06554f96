// safetensors reader and writer. The reader treats the file as hostile: every number in
// the header is checked against the file before it is used, so a corrupt or malicious
// file is one clear error, never a read out of bounds or a huge allocation.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"

// Tensor bytes are copied to and from the file as they lie in memory.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dmix's safetensors code assumes a little-endian host"
#endif

namespace dmix {

namespace detail {
std::function<void(size_t)> safetensors_write_hook;
}

namespace {

using json = nlohmann::json;

// The reference implementation refuses larger headers; a real one is a few MB at most.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr const char* kMetadataKey = "__metadata__";

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
  }
  return "?";
}

bool parse_safetensors_dtype(const std::string& name, DType* out) {
  static const std::pair<const char*, DType> known[] = {
      {"F32", DType::f32}, {"F64", DType::f64}, {"I64", DType::i64},
      {"U8", DType::u8},   {"F16", DType::f16}, {"BF16", DType::bf16}};
  for (const auto& [n, t] : known) {
    if (name == n) {
      *out = t;
      return true;
    }
  }
  return false;
}

std::string errno_text() { return std::strerror(errno); }

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// ---- writing ------------------------------------------------------------------------

struct PlannedTensor {
  std::string name;
  Tensor host;  // CPU copy (or the tensor itself when it already lives on the host)
  uint64_t begin = 0, end = 0;
};

// Larger elements first, so that with the header padded to 8 bytes every tensor starts
// at a multiple of its own element size (what the reference writer does too): a reader
// may then map the file and use the data in place.
std::vector<PlannedTensor> plan_layout(const std::string& path, const std::map<std::string, Tensor>& tensors) {
  std::vector<PlannedTensor> plan;
  plan.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    check(!name.empty(), "save_safetensors", path, ": a tensor has an empty name");
    check(name != kMetadataKey, "save_safetensors", path, ": '", kMetadataKey, "' is reserved and cannot name a tensor");
    check(t.defined(), "save_safetensors", path, ": tensor '", name, "' is undefined");
    PlannedTensor p;
    p.name = name;
    p.host = t.is_cpu() ? t : t.detach().to(Device::cpu());
    plan.push_back(std::move(p));
  }
  std::stable_sort(plan.begin(), plan.end(), [](const PlannedTensor& a, const PlannedTensor& b) {
    return dtype_size(a.host.dtype()) > dtype_size(b.host.dtype());
  });
  uint64_t offset = 0;
  for (PlannedTensor& p : plan) {
    p.begin = offset;
    offset += p.host.nbytes();
    p.end = offset;
  }
  return plan;
}

std::string build_header(const std::string& path, const std::vector<PlannedTensor>& plan,
                         const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[kMetadataKey] = std::move(meta);
  }
  for (const PlannedTensor& p : plan) {
    json entry = json::object();
    entry["dtype"] = safetensors_dtype_name(p.host.dtype());
    entry["shape"] = p.host.shape();
    entry["data_offsets"] = {p.begin, p.end};
    header[p.name] = std::move(entry);
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    // dump() refuses strings that are not valid UTF-8, which JSON cannot carry.
    fail("save_safetensors", path, ": a tensor name or metadata string is not valid UTF-8 (", e.what(), ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void write_all(int fd, const char* data, size_t bytes, size_t* written, const std::string& tmp) {
  constexpr size_t kChunk = size_t(64) << 20;
  while (bytes > 0) {
    if (detail::safetensors_write_hook) detail::safetensors_write_hook(*written);
    const ssize_t n = ::write(fd, data, std::min(bytes, kChunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error("writing " + tmp + ": " + errno_text());
    }
    data += n;
    bytes -= static_cast<size_t>(n);
    *written += static_cast<size_t>(n);
  }
}

// Makes the rename itself durable. Some file systems cannot fsync a directory (EINVAL);
// there the rename is as durable as that file system makes it.
void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error("opening directory " + dir + " to sync it: " + errno_text());
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0 && saved != EINVAL && saved != EROFS)
    throw Error("syncing directory " + dir + ": " + std::strerror(saved));
}

// ---- reading ------------------------------------------------------------------------

struct Entry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

// Reads a file through pread, or a buffer in memory: the same checks either way.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}
  Reader(const void* data, size_t size, std::string what)
      : path_(std::move(what)), in_memory_(true), memory_(static_cast<const char*>(data)), file_bytes_(size) {}
  ~Reader() {
    if (fd_ >= 0) ::close(fd_);
  }

  SafetensorsFile read() {
    if (!in_memory_) open_file();
    if (file_bytes_ < 8) bad("file is ", file_bytes_, " bytes, too short to hold the 8-byte header length");
    const uint64_t header_bytes = read_header_length();
    const json header = parse_header(header_bytes);
    data_start_ = 8 + header_bytes;
    data_bytes_ = file_bytes_ - data_start_;

    SafetensorsFile out;
    std::vector<Entry> entries;
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == kMetadataKey) {
        out.metadata = parse_metadata(it.value());
      } else {
        entries.push_back(parse_entry(it.key(), it.value()));
      }
    }
    check_ranges_tile_data(entries);
    for (const Entry& e : entries) out.tensors.emplace(e.name, read_tensor(e));
    return out;
  }

 private:
  template <class... Parts>
  [[noreturn]] void bad(const Parts&... parts) const {
    fail("load_safetensors", path_, ": ", parts...);
  }

  void open_file() {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) bad("cannot open: ", errno_text());
    struct stat st;
    if (::fstat(fd_, &st) != 0) bad("cannot stat: ", errno_text());
    if (!S_ISREG(st.st_mode)) bad("not a regular file");
    file_bytes_ = static_cast<uint64_t>(st.st_size);
  }

  void read_exact(void* dst, uint64_t bytes, uint64_t offset, const char* what) const {
    char* p = static_cast<char*>(dst);
    if (in_memory_) {
      if (offset > file_bytes_ || bytes > file_bytes_ - offset)
        bad("data ends at byte ", file_bytes_, " while reading ", what, " at byte ", offset);
      if (bytes > 0) std::memcpy(p, memory_ + offset, static_cast<size_t>(bytes));
      return;
    }
    while (bytes > 0) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(bytes, uint64_t(1) << 30));
      const ssize_t n = ::pread(fd_, p, want, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        bad("reading ", what, " at byte ", offset, ": ", errno_text());
      }
      if (n == 0) bad("file ends at byte ", offset, " while reading ", what, " (it changed while being read?)");
      p += n;
      bytes -= static_cast<uint64_t>(n);
      offset += static_cast<uint64_t>(n);
    }
  }

  uint64_t read_header_length() const {
    unsigned char b[8];
    read_exact(b, 8, 0, "the header length");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
    if (n > kMaxHeaderBytes) bad("header length ", n, " bytes exceeds the 100 MB limit (not a safetensors file?)");
    if (n > file_bytes_ - 8)
      bad("header length ", n, " bytes is larger than the ", file_bytes_ - 8, " bytes that follow it (truncated file?)");
    return n;
  }

  json parse_header(uint64_t header_bytes) const {
    std::string text(static_cast<size_t>(header_bytes), '\0');
    read_exact(text.data(), header_bytes, 8, "the header");
    if (text.empty() || text[0] != '{') bad("header does not start with '{' (not a safetensors file?)");
    // JSON parsers keep one of two duplicate keys silently; the format forbids them, and
    // letting one through would let a file say two things about one tensor.
    std::vector<std::set<std::string>> open_objects;
    std::string duplicate;
    auto watch_keys = [&](int, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::object_start) {
        open_objects.emplace_back();
      } else if (event == json::parse_event_t::object_end) {
        open_objects.pop_back();
      } else if (event == json::parse_event_t::key && !open_objects.empty()) {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
      }
      return true;
    };
    json header;
    try {
      header = json::parse(text, watch_keys);
    } catch (const json::exception& e) {
      bad("header is not valid JSON: ", e.what());
    }
    if (!duplicate.empty()) bad("header names '", duplicate, "' twice");
    if (!header.is_object()) bad("header is not a JSON object");
    return header;
  }

  std::map<std::string, std::string> parse_metadata(const json& meta) const {
    if (!meta.is_object()) bad("'", kMetadataKey, "' is not a JSON object");
    std::map<std::string, std::string> out;
    for (auto it = meta.begin(); it != meta.end(); ++it) {
      if (!it.value().is_string()) bad("metadata value for '", it.key(), "' is not a string");
      out.emplace(it.key(), it.value().get<std::string>());
    }
    return out;
  }

  uint64_t non_negative(const json& v, const std::string& name, const char* field) const {
    if (v.is_number_unsigned()) {
      const uint64_t x = v.get<uint64_t>();
      if (x <= static_cast<uint64_t>(INT64_MAX)) return x;
    }
    bad("tensor '", name, "': ", field, " holds ", v.dump(), ", not a non-negative integer");
  }

  Entry parse_entry(const std::string& name, const json& j) const {
    if (name.empty()) bad("a tensor has an empty name");
    if (!j.is_object()) bad("tensor '", name, "': entry is not a JSON object");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!j.contains(field)) bad("tensor '", name, "': entry lacks \"", field, "\"");

    Entry e;
    e.name = name;
    const json& dtype = j["dtype"];
    if (!dtype.is_string()) bad("tensor '", name, "': dtype is not a string");
    const std::string dtype_text = dtype.get<std::string>();
    if (!parse_safetensors_dtype(dtype_text, &e.dtype))
      bad("tensor '", name, "' has dtype ", dtype_text, ", which dmix does not support (F32, F64, I64, U8, F16, BF16)");

    const json& shape = j["shape"];
    if (!shape.is_array()) bad("tensor '", name, "': shape is not an array");
    uint64_t numel = 1;
    bool overflow = false;
    for (const json& d : shape) {
      const uint64_t size = non_negative(d, name, "shape");
      e.shape.push_back(static_cast<int64_t>(size));
      overflow = overflow || __builtin_mul_overflow(numel, size, &numel);
    }
    uint64_t bytes = 0;
    overflow = overflow || numel > static_cast<uint64_t>(INT64_MAX) ||
               __builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(e.dtype)), &bytes);
    if (overflow) bad("tensor '", name, "': shape ", shape.dump(), " is too large");

    const json& offsets = j["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2) bad("tensor '", name, "': data_offsets is not [begin, end]");
    e.begin = non_negative(offsets[0], name, "data_offsets");
    e.end = non_negative(offsets[1], name, "data_offsets");
    if (e.end < e.begin) bad("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] end before they begin");
    if (e.end > data_bytes_)
      bad("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] run past the end of the ", data_bytes_,
          "-byte data section (truncated file?)");
    if (e.end - e.begin != bytes)
      bad("tensor '", name, "': dtype ", dtype_text, " and shape ", shape_str(e.shape), " need ", bytes,
          " bytes but data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin);
    return e;
  }

  // The ranges must cover the data section exactly once: an overlap would alias two
  // tensors, and bytes no tensor owns could smuggle another file format inside this one.
  void check_ranges_tile_data(std::vector<Entry>& entries) const {
    std::vector<const Entry*> sorted;
    sorted.reserve(entries.size());
    for (const Entry& e : entries) sorted.push_back(&e);
    std::sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    uint64_t covered = 0;
    const Entry* previous = nullptr;
    for (const Entry* e : sorted) {
      if (e->begin < covered)
        bad("tensors '", previous->name, "' [", previous->begin, ", ", previous->end, "] and '", e->name, "' [",
            e->begin, ", ", e->end, "] overlap");
      if (e->begin > covered) bad("data bytes [", covered, ", ", e->begin, ") belong to no tensor");
      covered = e->end;
      previous = e;
    }
    if (covered != data_bytes_)
      bad("data section holds ", data_bytes_, " bytes but the tensors account for only ", covered);
  }

  Tensor read_tensor(const Entry& e) const {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    const std::string what = "tensor '" + e.name + "'";
    read_exact(t.raw_data(), e.end - e.begin, data_start_ + e.begin, what.c_str());
    return t;
  }

  std::string path_;
  int fd_ = -1;
  bool in_memory_ = false;
  const char* memory_ = nullptr;
  uint64_t file_bytes_ = 0;
  uint64_t data_start_ = 0;
  uint64_t data_bytes_ = 0;
};

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  check(!path.empty(), "save_safetensors", "empty path");
  std::vector<PlannedTensor> plan = plan_layout(path, tensors);
  const std::string header = build_header(path, plan, metadata);

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("save_safetensors", path, ": cannot create temporary file ", tmp, ": ", errno_text());
  bool renamed = false;
  try {
    unsigned char length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(uint64_t(header.size()) >> (8 * i));
    size_t written = 0;
    write_all(fd, reinterpret_cast<const char*>(length), 8, &written, tmp);
    write_all(fd, header.data(), header.size(), &written, tmp);
    for (const PlannedTensor& p : plan)
      write_all(fd, static_cast<const char*>(p.host.raw_data()), p.host.nbytes(), &written, tmp);
    if (::fsync(fd) != 0) throw Error("syncing " + tmp + ": " + errno_text());
    const int rc = ::close(fd);
    fd = -1;
    if (rc != 0) throw Error("closing " + tmp + ": " + errno_text());
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw Error("renaming " + tmp + " over it: " + errno_text());
    renamed = true;
    sync_directory(directory_of(path));
  } catch (const std::exception& e) {
    if (fd >= 0) ::close(fd);
    if (!renamed) ::unlink(tmp.c_str());
    fail("save_safetensors", path, ": ", e.what());
  }
}

SafetensorsFile load_safetensors(const std::string& path) { return Reader(path).read(); }

SafetensorsFile load_safetensors_from_memory(const void* data, size_t size, const std::string& what) {
  check(data != nullptr || size == 0, "load_safetensors", what, ": null data pointer");
  return Reader(data, size, what).read();
}

}  // namespace dmix
