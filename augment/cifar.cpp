// CIFAR-10 and CIFAR-100, "binary version".
//
// A batch file is a sequence of fixed-size records with no header: the label byte(s),
// then 3072 pixel bytes, the red, green and blue 32 x 32 planes in turn, each row-major.
// That is already CHW, so a record's pixels are copied as they are. CIFAR-10 records
// hold one label byte; CIFAR-100 records hold the coarse (superclass) label, then the
// fine label, which is the class dmix trains on.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "augment/datasets.h"
#include "engine/error.h"

namespace dmix::augment {

namespace {

constexpr int64_t kPixelsPerImage = 3 * 32 * 32;

struct CifarFormat {
  const char* op;             // for error messages: "load_cifar10"
  const char* name;           // Dataset::name
  const char* subdir;         // the folder the archive unpacks to
  int64_t label_bytes;        // label bytes before the pixels of a record
  int64_t class_label_index;  // which label byte is the class
  int64_t num_classes;
  int64_t coarse_classes;     // CIFAR-100's superclasses; 0 when there are none
  std::vector<std::string> files;
  const char* names_file;
  int64_t record_bytes() const { return label_bytes + kPixelsPerImage; }
};

CifarFormat cifar10_format(bool train) {
  CifarFormat f{"load_cifar10", "cifar10", "cifar-10-batches-bin", 1, 0, 10, 0, {}, "batches.meta.txt"};
  if (train) {
    for (int i = 1; i <= 5; ++i) f.files.push_back("data_batch_" + std::to_string(i) + ".bin");
  } else {
    f.files = {"test_batch.bin"};
  }
  return f;
}

CifarFormat cifar100_format(bool train) {
  return {"load_cifar100", "cifar100", "cifar-100-binary", 2, 1, 100, 20, {train ? "train.bin" : "test.bin"},
          "fine_label_names.txt"};
}

bool stat_file(const std::string& path, struct stat* st) { return ::stat(path.c_str(), st) == 0; }

bool is_regular_file(const std::string& path) {
  struct stat st;
  return stat_file(path, &st) && S_ISREG(st.st_mode);
}

// The folder holding the batch files: `dir` itself, or the folder the archive unpacks to
// inside it.
std::string find_batch_dir(const CifarFormat& f, const std::string& dir) {
  const std::string first = f.files.front();
  if (is_regular_file(dir + "/" + first)) return dir;
  std::string nested = dir + "/" + f.subdir;  // not const: returned, so moved
  if (is_regular_file(nested + "/" + first)) return nested;
  fail(f.op, "no ", first, " in ", dir, " or ", nested,
       ": pass --data with the folder of the CIFAR binary version (the one from "
       "https://www.cs.toronto.edu/~kriz/cifar.html, unpacked)");
}

std::vector<uint8_t> read_whole_file(const CifarFormat& f, const std::string& path, uint64_t bytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) fail(f.op, path, ": cannot open: ", std::strerror(errno));
  std::vector<uint8_t> data(static_cast<size_t>(bytes));
  const size_t got = std::fread(data.data(), 1, data.size(), file.get());
  if (got != data.size())
    fail(f.op, path, ": read ", got, " of its ", bytes, " bytes", std::ferror(file.get()) ? ": read error" : " (file shrank?)");
  return data;
}

// One name per line; blank lines (the files end with some) are skipped. A names file that
// is present but does not list every class means the folder is not what it seems.
std::vector<std::string> read_class_names(const CifarFormat& f, const std::string& batch_dir) {
  const std::string path = batch_dir + "/" + f.names_file;
  std::vector<std::string> names;
  std::ifstream in(path);
  if (!in) {
    for (int64_t c = 0; c < f.num_classes; ++c) names.push_back(std::to_string(c));
    return names;
  }
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (static_cast<int64_t>(names.size()) != f.num_classes)
    fail(f.op, path, ": lists ", names.size(), " class names, expected ", f.num_classes);
  return names;
}

Dataset load_cifar(const CifarFormat& f, const std::string& dir) {
  const std::string batch_dir = find_batch_dir(f, dir);
  const int64_t record = f.record_bytes();

  // Sizes first, so the whole set is validated before anything big is allocated.
  std::vector<std::string> paths;
  std::vector<uint64_t> sizes;
  int64_t total = 0;
  for (const std::string& name : f.files) {
    const std::string path = batch_dir + "/" + name;
    struct stat st;
    if (!stat_file(path, &st)) fail(f.op, path, ": missing (", std::strerror(errno), ")");
    if (!S_ISREG(st.st_mode)) fail(f.op, path, ": not a regular file");
    const uint64_t bytes = static_cast<uint64_t>(st.st_size);
    if (bytes == 0 || bytes % static_cast<uint64_t>(record) != 0)
      fail(f.op, path, ": size ", bytes, " bytes is not a whole number of ", record, "-byte records (truncated, or not a ",
           f.name, " binary batch?)");
    paths.push_back(path);
    sizes.push_back(bytes);
    total += static_cast<int64_t>(bytes / static_cast<uint64_t>(record));
  }

  Dataset d;
  d.name = f.name;
  d.num_classes = f.num_classes;
  d.class_names = read_class_names(f, batch_dir);
  d.images = Tensor::empty({total, 3, 32, 32}, DType::u8);
  d.labels = Tensor::empty({total}, DType::i64);
  uint8_t* images = d.images.data<uint8_t>();
  int64_t* labels = d.labels.data<int64_t>();

  int64_t sample = 0;
  for (size_t k = 0; k < paths.size(); ++k) {
    const std::vector<uint8_t> data = read_whole_file(f, paths[k], sizes[k]);
    const int64_t records = static_cast<int64_t>(sizes[k] / static_cast<uint64_t>(record));
    for (int64_t r = 0; r < records; ++r, ++sample) {
      const uint8_t* rec = data.data() + r * record;
      if (f.coarse_classes > 0 && rec[0] >= f.coarse_classes)
        fail(f.op, paths[k], ": record ", r, " has coarse label ", int(rec[0]), ", outside 0..", f.coarse_classes - 1);
      const uint8_t label = rec[f.class_label_index];
      if (label >= f.num_classes)
        fail(f.op, paths[k], ": record ", r, " has label ", int(label), ", outside 0..", f.num_classes - 1,
             " (not a ", f.name, " batch?)");
      labels[sample] = label;
      std::memcpy(images + sample * kPixelsPerImage, rec + f.label_bytes, kPixelsPerImage);
    }
  }
  return d;
}

}  // namespace

Dataset load_cifar10(const std::string& dir, bool train) { return load_cifar(cifar10_format(train), dir); }

Dataset load_cifar100(const std::string& dir, bool train) { return load_cifar(cifar100_format(train), dir); }

}  // namespace dmix::augment
