// IDX files (the MNIST family's format) and Fashion-MNIST.
//
// An IDX file is a big-endian magic number 0x0000TTDD (TT = element type, 0x08 for
// unsigned bytes; DD = number of dimensions), DD big-endian 32-bit sizes, then the
// elements row-major. Images are 0x00000803 (count, rows, cols), labels 0x00000801
// (count). zlib's gzread reads gzipped and plain files alike, so one reader serves both.
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "augment/datasets.h"
#include "engine/error.h"

namespace dmix::augment {

namespace {

constexpr uint32_t kIdxImagesMagic = 0x00000803;
constexpr uint32_t kIdxLabelsMagic = 0x00000801;

bool is_regular_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

class IdxReader {
 public:
  explicit IdxReader(std::string path) : path_(std::move(path)) {
    file_ = ::gzopen(path_.c_str(), "rb");
    if (!file_) bad("cannot open: ", std::strerror(errno));
    ::gzbuffer(file_, 1 << 17);
  }
  ~IdxReader() {
    if (file_) ::gzclose(file_);
  }
  IdxReader(const IdxReader&) = delete;
  IdxReader& operator=(const IdxReader&) = delete;

  // Reads the magic number and the sizes; checks the magic names unsigned bytes in
  // `dims` dimensions.
  std::vector<uint32_t> read_header(uint32_t magic_expected, const char* what) {
    const uint32_t magic = read_be32("the magic number");
    if (magic != magic_expected)
      bad("bad magic number ", hex32(magic), " (expected ", hex32(magic_expected), ", an IDX file of ", what,
          "; is this the right file?)");
    std::vector<uint32_t> sizes(magic_expected & 0xff);
    for (uint32_t& s : sizes) s = read_be32("the dimension sizes");
    return sizes;
  }

  // Reads exactly `bytes` payload bytes. The buffer grows as data arrives, so a header
  // that claims far more data than the file holds fails as truncated instead of
  // allocating what it claims.
  std::vector<uint8_t> read_payload(uint64_t bytes, const char* what) {
    std::vector<uint8_t> out;
    constexpr uint64_t kChunk = uint64_t(1) << 24;
    while (out.size() < bytes) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, bytes - out.size()));
      const size_t have = out.size();
      out.resize(have + want);
      const size_t got = read_some(out.data() + have, want, what);
      out.resize(have + got);
      if (got < want) break;
    }
    if (out.size() < bytes) bad("truncated: ", what, " need ", bytes, " bytes after the header, the file holds ", out.size());
    return out;
  }

  // A file longer than its header says is as suspect as a shorter one. Reading to the
  // end also makes zlib check the gzip trailer (CRC and length).
  void expect_end() {
    unsigned char extra;
    if (read_some(&extra, 1, "the end of the file") != 0)
      bad("holds more data than its header declares (corrupt file?)");
  }

  template <class... Parts>
  [[noreturn]] void bad(const Parts&... parts) const {
    fail("load_fashion_mnist", path_, ": ", parts...);
  }

 private:
  size_t read_some(void* dst, size_t bytes, const char* what) {
    const int n = ::gzread(file_, dst, static_cast<unsigned>(bytes));
    int code = Z_OK;
    const std::string message = zlib_message(&code);
    if (n < 0) bad("reading ", what, ": ", code == Z_ERRNO ? std::strerror(errno) : message, " (corrupt gzip data?)");
    // A gzip stream cut short reads as a short count with Z_BUF_ERROR set; the caller
    // reports that as truncation.
    if (code != Z_OK && code != Z_BUF_ERROR) bad("reading ", what, ": ", message);
    return static_cast<size_t>(n);
  }

  // zlib's error text without the "<path>: " it puts in front.
  std::string zlib_message(int* code) const {
    std::string message = ::gzerror(file_, code);
    const std::string prefix = path_ + ": ";
    if (message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());
    return message;
  }

  uint32_t read_be32(const char* what) {
    unsigned char b[4];
    if (read_some(b, 4, what) != 4) bad("truncated: the file ends inside ", what);
    return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
  }

  std::string path_;
  gzFile file_ = nullptr;
};

// dir/name.gz, else dir/name; a clear error saying where it looked when neither exists.
std::string find_idx_file(const std::string& dir, const std::string& name) {
  std::string gz = dir + "/" + name + ".gz";  // not const: returned, so moved
  std::string plain = dir + "/" + name;
  if (is_regular_file(gz)) return gz;
  if (is_regular_file(plain)) return plain;
  fail("load_fashion_mnist", "no ", name, " in ", dir, is_directory(dir) ? "" : " (no such directory)",
       ": looked for ", gz, " and ", plain,
       "; install the Debian package dataset-fashion-mnist or pass --data with the folder holding the IDX files");
}

}  // namespace

Dataset load_fashion_mnist(const std::string& dir, bool train) {
  constexpr int64_t kClasses = 10;
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");

  IdxReader images_file(images_path);
  const std::vector<uint32_t> dims = images_file.read_header(kIdxImagesMagic, "unsigned-byte images in 3 dimensions");
  const uint64_t count = dims[0], rows = dims[1], cols = dims[2];
  if (count == 0) images_file.bad("holds no images");
  if (rows == 0 || cols == 0 || rows > 65536 || cols > 65536)
    images_file.bad("implausible image size ", rows, " x ", cols);
  uint64_t pixel_bytes = 0;
  if (__builtin_mul_overflow(count * rows, cols, &pixel_bytes))
    images_file.bad("implausible size: ", count, " images of ", rows, " x ", cols);
  std::vector<uint8_t> pixels = images_file.read_payload(pixel_bytes, "the pixels");
  images_file.expect_end();

  IdxReader labels_file(labels_path);
  const uint64_t label_count = labels_file.read_header(kIdxLabelsMagic, "unsigned-byte labels in 1 dimension")[0];
  if (label_count != count)
    labels_file.bad("holds ", label_count, " labels but ", images_path, " holds ", count, " images");
  std::vector<uint8_t> label_bytes = labels_file.read_payload(count, "the labels");
  labels_file.expect_end();

  Dataset d;
  d.name = "fashion-mnist";
  d.num_classes = kClasses;
  d.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  const int64_t n = static_cast<int64_t>(count);
  d.images = Tensor::empty({n, 1, static_cast<int64_t>(rows), static_cast<int64_t>(cols)}, DType::u8);
  std::memcpy(d.images.raw_data(), pixels.data(), pixels.size());
  d.labels = Tensor::empty({n}, DType::i64);
  int64_t* labels = d.labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t label = label_bytes[static_cast<size_t>(i)];
    if (label >= kClasses)
      labels_file.bad("label ", int(label), " of sample ", i, " is outside 0..", kClasses - 1);
    labels[i] = label;
  }
  return d;
}

}  // namespace dmix::augment
