// Dataset readers: small IDX (gzipped and plain) and CIFAR files made here load with the
// right pixels, labels and names; missing, truncated and corrupt files are one clear
// error naming the file; the real Fashion-MNIST, where installed, has its known shape.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "augment/datasets.h"
#include "engine/error.h"
#include "tests/test_util.h"

using namespace dmix;
using namespace dmix::augment;
namespace fs = std::filesystem;

namespace {

using dmix::testing::contains;
using dmix::testing::error_of;

using dmix::testing::TempDir;

using Bytes = std::string;

Bytes be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols, const std::vector<uint8_t>& pixels) {
  return be32(0x00000803) + be32(count) + be32(rows) + be32(cols) + Bytes(pixels.begin(), pixels.end());
}

Bytes idx_labels(const std::vector<uint8_t>& labels) {
  return be32(0x00000801) + be32(static_cast<uint32_t>(labels.size())) + Bytes(labels.begin(), labels.end());
}

void write_plain(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}



// Pixel p of image i, distinct enough to catch a misplaced byte.
uint8_t pixel(int64_t i, int64_t p) { return static_cast<uint8_t>((i * 37 + p * 11 + 5) % 256); }

std::vector<uint8_t> pixels_of(int64_t n, int64_t per_image, int64_t first = 0) {
  std::vector<uint8_t> v;
  for (int64_t i = first; i < first + n; ++i)
    for (int64_t p = 0; p < per_image; ++p) v.push_back(pixel(i, p));
  return v;
}

// A small Fashion-MNIST in `dir`: 3 test images of 4 x 5 (labels 0, 9, 3), 2 train images.
void make_fashion(const TempDir& dir, bool gz) {
  auto write = [&](const std::string& name, const Bytes& b) { gz ? write_gz(dir.file(name + ".gz"), b) : write_plain(dir.file(name), b); };
  write("t10k-images-idx3-ubyte", idx_images(3, 4, 5, pixels_of(3, 20)));
  write("t10k-labels-idx1-ubyte", idx_labels({0, 9, 3}));
  write("train-images-idx3-ubyte", idx_images(2, 4, 5, pixels_of(2, 20, 100)));
  write("train-labels-idx1-ubyte", idx_labels({7, 7}));
}

void check_small_fashion_test_split(const Dataset& d) {
  CHECK(d.name == "fashion-mnist");
  CHECK(d.num_classes == 10);
  REQUIRE(d.class_names.size() == 10);
  CHECK(d.class_names[0] == "T-shirt/top");
  CHECK(d.class_names[9] == "Ankle boot");
  CHECK(d.images.dtype() == DType::u8);
  CHECK(d.images.shape() == Shape{3, 1, 4, 5});
  CHECK(d.images.to_vector<uint8_t>() == pixels_of(3, 20));
  CHECK(d.labels.dtype() == DType::i64);
  CHECK(d.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 9, 3});
}

}  // namespace

TEST_CASE("fashion-mnist: gzipped and plain IDX files load with the right pixels and labels") {
  TempDir dir;
  SUBCASE("gzipped") { make_fashion(dir, true); }
  SUBCASE("plain") { make_fashion(dir, false); }
  check_small_fashion_test_split(load_fashion_mnist(dir.path, false));
  Dataset train = load_fashion_mnist(dir.path, true);
  CHECK(train.images.shape() == Shape{2, 1, 4, 5});
  CHECK(train.images.to_vector<uint8_t>() == pixels_of(2, 20, 100));
  CHECK(train.labels.to_vector<int64_t>() == std::vector<int64_t>{7, 7});
}

TEST_CASE("fashion-mnist: the .gz file wins over a plain one of the same name") {
  TempDir dir;
  make_fashion(dir, true);
  write_plain(dir.file("t10k-labels-idx1-ubyte"), idx_labels({1, 1, 1}));
  CHECK(load_fashion_mnist(dir.path, false).labels.to_vector<int64_t>() == std::vector<int64_t>{0, 9, 3});
}

TEST_CASE("fashion-mnist: missing, truncated and corrupt files are one clear error") {
  TempDir dir;
  make_fashion(dir, true);
  const std::string images = dir.file("t10k-images-idx3-ubyte.gz");
  const std::string labels = dir.file("t10k-labels-idx1-ubyte.gz");
  auto rejects = [&](const std::string& file, const std::string& expected) {
    const std::string message = error_of([&] { load_fashion_mnist(dir.path, false); });
    CAPTURE(message);
    CHECK(message.rfind("load_fashion_mnist: " + file + ": ", 0) == 0);
    CHECK(contains(message, expected));
  };

  SUBCASE("no such directory") {
    const std::string nowhere = dir.file("absent");
    const std::string message = error_of([&] { load_fashion_mnist(nowhere, true); });
    CHECK(contains(message, "no such directory"));
    CHECK(contains(message, "looked for " + nowhere + "/train-images-idx3-ubyte.gz and " + nowhere +
                                "/train-images-idx3-ubyte"));
    CHECK(contains(message, "install the Debian package dataset-fashion-mnist or pass --data"));
  }
  SUBCASE("labels file missing") {
    fs::remove(labels);
    const std::string message = error_of([&] { load_fashion_mnist(dir.path, false); });
    CHECK(contains(message, "no t10k-labels-idx1-ubyte in " + dir.path + ": looked for"));
  }
  SUBCASE("images and labels swapped (bad magic)") {
    write_gz(images, idx_labels({0, 9, 3}));
    rejects(images, "bad magic number 0x00000801 (expected 0x00000803");
  }
  SUBCASE("not IDX at all") {
    write_gz(images, "<html>404 Not Found</html>");
    rejects(images, "bad magic number");
  }
  SUBCASE("pixels truncated") {
    write_gz(images, idx_images(3, 4, 5, pixels_of(2, 20)));
    rejects(images, "truncated: the pixels need 60 bytes after the header, the file holds 40");
  }
  SUBCASE("header truncated") {
    write_gz(images, be32(0x00000803) + be32(3) + std::string("\x00\x00", 2));  // 2 of the 4 bytes of a size
    rejects(images, "truncated: the file ends inside the dimension sizes");
  }
  SUBCASE("empty file") {
    write_plain(images, "");
    rejects(images, "ends inside the magic number");
  }
  SUBCASE("more data than declared") {
    write_gz(images, idx_images(3, 4, 5, pixels_of(4, 20)));
    rejects(images, "more data than its header declares");
  }
  SUBCASE("no images") {
    write_gz(images, idx_images(0, 4, 5, {}));
    rejects(images, "holds no images");
  }
  SUBCASE("a header claiming huge images") {
    write_gz(images, idx_images(3, 100000, 5, pixels_of(3, 20)));
    rejects(images, "implausible image size 100000 x 5");
  }
  SUBCASE("a header claiming far more images than the file holds") {
    write_gz(images, idx_images(4000000000u, 28, 28, pixels_of(3, 20)));
    rejects(images, "truncated");
  }
  SUBCASE("label and image counts differ") {
    write_gz(labels, idx_labels({0, 9}));
    rejects(labels, "holds 2 labels but " + images + " holds 3 images");
  }
  SUBCASE("label out of range") {
    write_gz(labels, idx_labels({0, 10, 3}));
    rejects(labels, "label 10 of sample 1 is outside 0..9");
  }
  SUBCASE("gzip stream cut short") {
    const Bytes gz = read_bytes(images);
    write_plain(images, gz.substr(0, gz.size() - 20));
    rejects(images, "truncated");
  }
  SUBCASE("gzip checksum wrong") {
    Bytes gz = read_bytes(images);
    gz[gz.size() - 8] ^= 0x5a;  // the CRC-32 in the trailer
    write_plain(images, gz);
    rejects(images, "corrupt gzip data");
  }
}

TEST_CASE("fashion-mnist: the installed dataset has its known shape and class balance") {
  const std::string dir = kFashionMnistDefaultDir;
  if (!fs::exists(dir + "/t10k-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: " << dir << " is not installed (Debian package dataset-fashion-mnist)");
    return;
  }
  const Dataset test = load_fashion_mnist(dir, false);
  CHECK(test.images.shape() == Shape{10000, 1, 28, 28});
  CHECK(test.labels.shape() == Shape{10000});
  std::vector<int64_t> per_class(10, 0);
  for (int64_t label : test.labels.to_vector<int64_t>()) per_class.at(static_cast<size_t>(label)) += 1;
  CHECK(per_class == std::vector<int64_t>(10, 1000));
  CHECK(test.labels.to_vector<int64_t>()[0] == 9);  // the first test image is an ankle boot

  const Dataset train = load_fashion_mnist(dir, true);
  CHECK(train.images.shape() == Shape{60000, 1, 28, 28});
  std::vector<int64_t> train_per_class(10, 0);
  for (int64_t label : train.labels.to_vector<int64_t>()) train_per_class.at(static_cast<size_t>(label)) += 1;
  CHECK(train_per_class == std::vector<int64_t>(10, 6000));
}

// ---- CIFAR ----

namespace {

constexpr int64_t kImage = 3 * 32 * 32;

// Records for images first .. first + labels.size() - 1 with these label bytes (one or
// two per record).
Bytes cifar_records(const std::vector<std::vector<uint8_t>>& labels, int64_t first) {
  Bytes out;
  for (size_t r = 0; r < labels.size(); ++r) {
    for (uint8_t l : labels[r]) out.push_back(static_cast<char>(l));
    for (int64_t p = 0; p < kImage; ++p) out.push_back(static_cast<char>(pixel(first + static_cast<int64_t>(r), p)));
  }
  return out;
}

// data_batch_k.bin holds images 2(k-1), 2(k-1)+1 with labels k-1 and 9-(k-1); test_batch.bin
// holds images 100..102 with labels 3, 4, 5.
void make_cifar10(const std::string& dir) {
  fs::create_directories(dir);
  for (int k = 1; k <= 5; ++k) {
    const uint8_t a = static_cast<uint8_t>(k - 1), b = static_cast<uint8_t>(10 - k);
    write_plain(dir + "/data_batch_" + std::to_string(k) + ".bin", cifar_records({{a}, {b}}, 2 * (k - 1)));
  }
  write_plain(dir + "/test_batch.bin", cifar_records({{3}, {4}, {5}}, 100));
}

}  // namespace

TEST_CASE("cifar10: batches load in order with pixels as CHW and names from batches.meta.txt") {
  TempDir dir;
  make_cifar10(dir.path);
  Dataset train = load_cifar10(dir.path, true);
  CHECK(train.name == "cifar10");
  CHECK(train.num_classes == 10);
  CHECK(train.images.shape() == Shape{10, 3, 32, 32});
  CHECK(train.images.to_vector<uint8_t>() == pixels_of(10, kImage));
  CHECK(train.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 9, 1, 8, 2, 7, 3, 6, 4, 5});
  REQUIRE(train.class_names.size() == 10);
  CHECK(train.class_names[0] == "0");  // no names file: numbers

  write_plain(dir.file("batches.meta.txt"),
              "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
  Dataset test = load_cifar10(dir.path, false);
  CHECK(test.images.shape() == Shape{3, 3, 32, 32});
  CHECK(test.images.to_vector<uint8_t>() == pixels_of(3, kImage, 100));
  CHECK(test.labels.to_vector<int64_t>() == std::vector<int64_t>{3, 4, 5});
  CHECK(test.class_names[1] == "automobile");
  CHECK(test.class_names[9] == "truck");
}

TEST_CASE("cifar10: the folder the archive unpacks to is found inside the given one") {
  TempDir dir;
  make_cifar10(dir.file("cifar-10-batches-bin"));
  CHECK(load_cifar10(dir.path, false).labels.to_vector<int64_t>() == std::vector<int64_t>{3, 4, 5});
}

TEST_CASE("cifar10: missing, truncated and corrupt batches are one clear error") {
  TempDir dir;
  make_cifar10(dir.path);
  const std::string batch3 = dir.file("data_batch_3.bin");
  auto rejects = [&](const std::string& expected) {
    const std::string message = error_of([&] { load_cifar10(dir.path, true); });
    CAPTURE(message);
    CHECK(message.rfind("load_cifar10: ", 0) == 0);
    CHECK(contains(message, expected));
  };
  SUBCASE("no batches at all") {
    const std::string nowhere = dir.file("absent");
    const std::string message = error_of([&] { load_cifar10(nowhere, true); });
    CHECK(contains(message, "no data_batch_1.bin in " + nowhere + " or " + nowhere + "/cifar-10-batches-bin"));
  }
  SUBCASE("one batch missing") {
    fs::remove(batch3);
    rejects(batch3 + ": missing");
  }
  SUBCASE("a truncated batch") {
    const Bytes b = read_bytes(batch3);
    write_plain(batch3, b.substr(0, b.size() - 100));
    rejects(batch3 + ": size 6046 bytes is not a whole number of 3073-byte records");
  }
  SUBCASE("an empty batch") {
    write_plain(batch3, "");
    rejects(batch3 + ": size 0 bytes");
  }
  SUBCASE("a CIFAR-100 file where a CIFAR-10 batch belongs") {
    write_plain(batch3, cifar_records({{1, 50}, {2, 60}}, 0));
    rejects(batch3 + ": size 6148 bytes is not a whole number of 3073-byte records");
  }
  SUBCASE("label out of range") {
    write_plain(batch3, cifar_records({{2}, {10}}, 4));
    rejects(batch3 + ": record 1 has label 10, outside 0..9");
  }
  SUBCASE("names file with the wrong number of names") {
    write_plain(dir.file("batches.meta.txt"), "airplane\nautomobile\nbird\n");
    rejects(dir.file("batches.meta.txt") + ": lists 3 class names, expected 10");
  }
}

TEST_CASE("cifar100: fine labels are the classes; both label bytes are checked") {
  TempDir dir;
  write_plain(dir.file("train.bin"), cifar_records({{0, 99}, {19, 0}, {7, 42}}, 0));
  write_plain(dir.file("test.bin"), cifar_records({{3, 11}}, 50));
  Dataset train = load_cifar100(dir.path, true);
  CHECK(train.name == "cifar100");
  CHECK(train.num_classes == 100);
  CHECK(train.images.shape() == Shape{3, 3, 32, 32});
  CHECK(train.images.to_vector<uint8_t>() == pixels_of(3, kImage));
  CHECK(train.labels.to_vector<int64_t>() == std::vector<int64_t>{99, 0, 42});
  CHECK(train.class_names.size() == 100);
  CHECK(train.class_names[42] == "42");

  std::string names;
  for (int c = 0; c < 100; ++c) names += "class_" + std::to_string(c) + "\r\n";
  write_plain(dir.file("fine_label_names.txt"), names);
  Dataset test = load_cifar100(dir.path, false);
  CHECK(test.labels.to_vector<int64_t>() == std::vector<int64_t>{11});
  CHECK(test.images.to_vector<uint8_t>() == pixels_of(1, kImage, 50));
  CHECK(test.class_names[11] == "class_11");

  const std::string train_bin = dir.file("train.bin");
  auto rejects = [&](const std::string& expected) {
    const std::string message = error_of([&] { load_cifar100(dir.path, true); });
    CAPTURE(message);
    CHECK(message.rfind("load_cifar100: " + train_bin + ": ", 0) == 0);
    CHECK(contains(message, expected));
  };
  SUBCASE("fine label out of range") {
    write_plain(train_bin, cifar_records({{0, 1}, {1, 100}}, 0));
    rejects("record 1 has label 100, outside 0..99");
  }
  SUBCASE("coarse label out of range") {
    write_plain(train_bin, cifar_records({{20, 1}}, 0));
    rejects("record 0 has coarse label 20, outside 0..19");
  }
  SUBCASE("a CIFAR-10 batch where a CIFAR-100 file belongs") {
    write_plain(train_bin, cifar_records({{1}, {2}}, 0));
    rejects("size 6146 bytes is not a whole number of 3074-byte records");
  }
}
