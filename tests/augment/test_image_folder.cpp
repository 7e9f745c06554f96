// Image folders: PNG and JPEG files written here decode to the right pixels; classes,
// labels and file order follow the folder layout (and a class-index file when given);
// corrupt, truncated and non-image files are one error naming the file, also through
// the loader's workers; batches of variable-size images are bit-identical for any
// worker count and equal to what the same images give from memory.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "augment/datasets.h"
#include "augment/loader.h"
#include "augment/transforms.h"
#include "engine/error.h"
#include "tests/test_util.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

using namespace dmix;
using namespace dmix::augment;
namespace fs = std::filesystem;
using dmix::testing::TempDir;

namespace {

using dmix::testing::contains;
using dmix::testing::error_of;

// Channel c of pixel (y, x) of test image `id`: distinct enough to catch a swapped axis.
uint8_t value(int64_t id, int64_t c, int64_t y, int64_t x) {
  return static_cast<uint8_t>((id * 53 + c * 71 + y * 13 + x * 7 + (x * y) % 5) % 256);
}

// Interleaved (H, W, C) bytes, as image files store them.
std::vector<uint8_t> hwc(int64_t id, int64_t C, int64_t H, int64_t W) {
  std::vector<uint8_t> v(static_cast<size_t>(H * W * C));
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < C; ++c) v[(y * W + x) * C + c] = value(id, c, y, x);
  return v;
}

void write_png(const std::string& path, int64_t id, int64_t C, int64_t H, int64_t W) {
  fs::create_directories(fs::path(path).parent_path());
  const auto px = hwc(id, C, H, W);
  REQUIRE(stbi_write_png(path.c_str(), int(W), int(H), int(C), px.data(), int(W * C)) != 0);
}

void write_jpg(const std::string& path, const std::vector<uint8_t>& px, int64_t C, int64_t H, int64_t W) {
  fs::create_directories(fs::path(path).parent_path());
  REQUIRE(stbi_write_jpg(path.c_str(), int(W), int(H), int(C), px.data(), 100) != 0);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}



bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

std::vector<Batch> whole_epoch(DataLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

// Three classes of PNGs of different sizes, in the layout the tests below describe.
//   root/cat/a.png (id 0, 9x7), root/cat/b.png (id 1, 5x11), root/cat/z.png (id 2, 6x6),
//   root/cat/more/c.png (id 3, 8x8: in a sub-folder, so after z.png as in torchvision)
//   root/dog/d.png (id 4, 12x10)   root/emu/e.png (id 5, 7x9), root/emu/f.PNG (id 6, 10x4)
// and files that must be skipped: notes.txt, .hidden.png, ._a.png, a .cache/ folder.
struct Layout {
  struct File {
    std::string rel;
    int64_t id, H, W, label;
  };
  std::vector<File> files = {{"cat/a.png", 0, 9, 7, 0},   {"cat/b.png", 1, 5, 11, 0}, {"cat/z.png", 2, 6, 6, 0},
                             {"cat/more/c.png", 3, 8, 8, 0}, {"dog/d.png", 4, 12, 10, 1}, {"emu/e.png", 5, 7, 9, 2},
                             {"emu/f.PNG", 6, 10, 4, 2}};
  void write(const std::string& root) const {
    for (const File& f : files) write_png(root + "/" + f.rel, f.id, 3, f.H, f.W);
    write_bytes(root + "/cat/notes.txt", "not an image");
    write_bytes(root + "/dog/.hidden.png", "not an image either");
    write_bytes(root + "/dog/._d.png", "AppleDouble metadata");
    write_bytes(root + "/emu/.cache/x.png", "skipped with its folder");
  }
};

}  // namespace

TEST_CASE("image folder: PNG decodes to exact CHW pixels; grey and colour convert to the channels asked for") {
  TempDir tmp;
  write_png(tmp.file("rgb.png"), 3, 3, 5, 7);
  const Tensor rgb = decode_image_file(tmp.file("rgb.png"));
  REQUIRE(rgb.dtype() == DType::u8);
  REQUIRE(rgb.shape() == Shape{3, 5, 7});
  const uint8_t* p = rgb.data<uint8_t>();
  bool exact = true;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 5; ++y)
      for (int64_t x = 0; x < 7; ++x) exact = exact && p[(c * 5 + y) * 7 + x] == value(3, c, y, x);
  CHECK(exact);

  // A grey PNG as RGB repeats its one channel; as grey it is itself.
  write_png(tmp.file("grey.png"), 4, 1, 4, 6);
  const Tensor g3 = decode_image_file(tmp.file("grey.png"), 3);
  const Tensor g1 = decode_image_file(tmp.file("grey.png"), 1);
  REQUIRE(g3.shape() == Shape{3, 4, 6});
  REQUIRE(g1.shape() == Shape{1, 4, 6});
  const uint8_t* a = g3.data<uint8_t>();
  const uint8_t* b = g1.data<uint8_t>();
  bool grey_ok = true;
  for (int64_t i = 0; i < 24; ++i) {
    const uint8_t v = value(4, 0, i / 6, i % 6);
    grey_ok = grey_ok && a[i] == v && a[24 + i] == v && a[48 + i] == v && b[i] == v;
  }
  CHECK(grey_ok);

  // Colour as grey: luma close to 0.299 R + 0.587 G + 0.114 B (stb's integer weights).
  const Tensor y = decode_image_file(tmp.file("rgb.png"), 1);
  REQUIRE(y.shape() == Shape{1, 5, 7});
  double worst = 0;
  for (int64_t i = 0; i < 35; ++i) {
    const double luma = 0.299 * p[i] + 0.587 * p[35 + i] + 0.114 * p[70 + i];
    worst = std::max(worst, std::abs(luma - y.data<uint8_t>()[i]));
  }
  CHECK(worst <= 1.5);

  // RGBA drops alpha.
  write_png(tmp.file("rgba.png"), 5, 4, 3, 3);
  const Tensor rgba = decode_image_file(tmp.file("rgba.png"));
  REQUIRE(rgba.shape() == Shape{3, 3, 3});
  CHECK(rgba.data<uint8_t>()[2 * 9 + 4] == value(5, 2, 1, 1));

  CHECK(contains(error_of([&] { decode_image_file(tmp.file("rgb.png"), 2); }), "channels must be 1 or 3"));
}

TEST_CASE("image folder: JPEG decodes close to the pixels written, flat colours almost exactly") {
  TempDir tmp;
  const int64_t H = 16, W = 24;
  // Smooth content, which JPEG at quality 100 keeps within a few levels.
  std::vector<uint8_t> px(static_cast<size_t>(H * W * 3));
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      px[(y * W + x) * 3 + 0] = static_cast<uint8_t>(40 + 6 * x);
      px[(y * W + x) * 3 + 1] = static_cast<uint8_t>(200 - 8 * y);
      px[(y * W + x) * 3 + 2] = 90;
    }
  write_jpg(tmp.file("smooth.jpg"), px, 3, H, W);
  const Tensor t = decode_image_file(tmp.file("smooth.jpg"));
  REQUIRE(t.shape() == Shape{3, H, W});
  double total = 0;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < H * W; ++i) total += std::abs(double(t.data<uint8_t>()[c * H * W + i]) - px[i * 3 + c]);
  CHECK(total / double(3 * H * W) < 3.0);

  const std::vector<uint8_t> flat(static_cast<size_t>(8 * 8), 173);
  write_jpg(tmp.file("flat.JPEG"), flat, 1, 8, 8);
  const Tensor f = decode_image_file(tmp.file("flat.JPEG"));
  REQUIRE(f.shape() == Shape{3, 8, 8});
  for (int64_t i = 0; i < 3 * 64; ++i) REQUIRE(std::abs(int(f.data<uint8_t>()[i]) - 173) <= 1);
}

TEST_CASE("image folder: corrupt, truncated, empty, missing and non-image files are one error naming the file") {
  TempDir tmp;
  write_png(tmp.file("good.png"), 1, 3, 20, 20);
  std::vector<uint8_t> px = hwc(2, 3, 20, 20);
  write_jpg(tmp.file("good.jpg"), px, 3, 20, 20);
  const std::string png = read_bytes(tmp.file("good.png")), jpg = read_bytes(tmp.file("good.jpg"));
  write_bytes(tmp.file("half.png"), png.substr(0, png.size() / 2));
  write_bytes(tmp.file("half.jpg"), jpg.substr(0, jpg.size() / 2));
  write_bytes(tmp.file("cut.jpg"), jpg.substr(0, jpg.size() - 40));
  write_bytes(tmp.file("text.jpg"), "this is a text file, not a JPEG");
  std::string scrambled = png;
  for (size_t i = 40; i < scrambled.size() - 12; ++i) scrambled[i] = static_cast<char>(scrambled[i] ^ 0x5A);
  write_bytes(tmp.file("scrambled.png"), scrambled);
  write_bytes(tmp.file("empty.png"), "");

  for (const char* name : {"half.png", "half.jpg", "cut.jpg", "text.jpg", "scrambled.png"}) {
    CAPTURE(name);
    const std::string e = error_of([&] { decode_image_file(tmp.file(name)); });
    CHECK(contains(e, tmp.file(name)));
    CHECK(contains(e, "cannot decode the image (stb_image: "));
  }
  CHECK(contains(error_of([&] { decode_image_file(tmp.file("text.jpg")); }), "unknown image type"));
  const std::string empty = error_of([&] { decode_image_file(tmp.file("empty.png")); });
  CHECK(contains(empty, tmp.file("empty.png")));
  CHECK(contains(empty, "empty"));
  const std::string missing = error_of([&] { decode_image_file(tmp.file("nope.png")); });
  CHECK(contains(missing, "cannot open image file '" + tmp.file("nope.png") + "'"));
  CHECK(contains(missing, "No such file"));
  // The intact files still decode.
  CHECK(decode_image_file(tmp.file("good.png")).shape() == Shape{3, 20, 20});
  CHECK(decode_image_file(tmp.file("good.jpg")).shape() == Shape{3, 20, 20});
}

TEST_CASE("image folder: classes are the sorted folder names; files in torchvision's order; labels and pixels match") {
  TempDir tmp;
  Layout layout;
  layout.write(tmp.path);
  for (bool train : {true, false}) {
    CAPTURE(train);
    const Dataset d = load_image_folder(tmp.path, train);  // no train/ or val/: the folder is both splits
    CHECK(d.name == "folder");
    CHECK(d.num_classes == 3);
    CHECK(d.class_names == std::vector<std::string>{"cat", "dog", "emu"});
    CHECK_FALSE(d.images.defined());
    REQUIRE(d.source);
    REQUIRE(d.size() == static_cast<int64_t>(layout.files.size()));
    CHECK(d.channels() == 3);
    const auto labels = d.labels.to_vector<int64_t>();
    for (size_t i = 0; i < layout.files.size(); ++i) {
      const auto& f = layout.files[i];
      CAPTURE(f.rel);
      CHECK(d.source->describe(int64_t(i)) == tmp.path + "/" + f.rel);
      CHECK(labels[i] == f.label);
      const Tensor img = d.source->decode(int64_t(i));
      REQUIRE(img.shape() == Shape{3, f.H, f.W});
      CHECK(img.data<uint8_t>()[(2 * f.H + f.H - 1) * f.W + 1] == value(f.id, 2, f.H - 1, 1));
    }
  }
}

TEST_CASE("image folder: DIR/train and DIR/val are the splits when present") {
  TempDir tmp;
  write_png(tmp.file("train/a/1.png"), 0, 3, 4, 4);
  write_png(tmp.file("train/a/2.png"), 1, 3, 4, 4);
  write_png(tmp.file("train/b/3.png"), 2, 3, 4, 4);
  write_png(tmp.file("val/b/4.png"), 3, 3, 5, 5);
  const Dataset tr = load_image_folder(tmp.path, true);
  const Dataset va = load_image_folder(tmp.path, false);
  CHECK(tr.size() == 3);
  CHECK(tr.num_classes == 2);
  CHECK(tr.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1});
  // The training folders number the classes of both splits: val has only b, still class 1.
  CHECK(va.size() == 1);
  CHECK(va.source->describe(0) == tmp.path + "/val/b/4.png");
  CHECK(va.num_classes == 2);
  CHECK(va.class_names == std::vector<std::string>{"a", "b"});
  CHECK(va.labels.to_vector<int64_t>() == std::vector<int64_t>{1});
  write_png(tmp.file("val/c/5.png"), 4, 3, 5, 5);
  CHECK(contains(error_of([&] { load_image_folder(tmp.path, false); }),
                 "class folder 'c' of '" + tmp.path + "/val' has no twin in '" + tmp.path + "/train'"));

  TempDir only_train;
  write_png(only_train.file("train/a/1.png"), 0, 3, 4, 4);
  CHECK(load_image_folder(only_train.path, true).size() == 1);
  const std::string e = error_of([&] { load_image_folder(only_train.path, false); });
  CHECK(contains(e, "has a train/ folder but no val/ folder"));
}

TEST_CASE("image folder: a class-index file maps a subset of the classes onto the full numbering") {
  TempDir tmp;
  // ImageNet-A-like: 2 of 5 wnid folders.
  write_png(tmp.file("data/n003/x.png"), 0, 3, 4, 4);
  write_png(tmp.file("data/n001/y.png"), 1, 3, 4, 4);
  write_png(tmp.file("data/n001/z.png"), 2, 3, 4, 4);
  const std::vector<int64_t> expect = {1, 1, 3};  // n001 files first (sorted folders), then n003

  SUBCASE("one name per line, with descriptions and comments") {
    write_bytes(tmp.file("classes.txt"),
                "# ImageNet-style synsets\nn000 zero\nn001 tench, Tinca tinca\n\nn002\nn003 goldfish\nn004 four\n");
    const Dataset d = load_image_folder(tmp.file("data"), false, tmp.file("classes.txt"));
    CHECK(d.num_classes == 5);
    CHECK(d.labels.to_vector<int64_t>() == expect);
    CHECK(d.class_names == std::vector<std::string>{"zero", "tench, Tinca tinca", "n002", "goldfish", "four"});
  }
  SUBCASE("index name lines, in any order") {
    write_bytes(tmp.file("classes.txt"), "3 n003 goldfish\n0 n000\n4 n004\n1 n001\n2 n002\n");
    const Dataset d = load_image_folder(tmp.file("data"), true, tmp.file("classes.txt"));
    CHECK(d.num_classes == 5);
    CHECK(d.labels.to_vector<int64_t>() == expect);
    CHECK(d.class_names[3] == "goldfish");
    CHECK(d.class_names[1] == "n001");
  }
  SUBCASE("imagenet_class_index.json") {
    write_bytes(tmp.file("classes.json"),
                R"({"0": ["n000", "zero"], "1": ["n001", "tench"], "2": ["n002", "two"], "3": ["n003", "goldfish"],
                    "4": ["n004", "four"]})");
    const Dataset d = load_image_folder(tmp.file("data"), true, tmp.file("classes.json"));
    CHECK(d.labels.to_vector<int64_t>() == expect);
    CHECK(d.class_names[1] == "tench");
  }
  SUBCASE("a folder the file does not name") {
    write_bytes(tmp.file("classes.txt"), "n000\nn001\nn002\n");
    const std::string e = error_of([&] { load_image_folder(tmp.file("data"), true, tmp.file("classes.txt")); });
    CHECK(contains(e, "class folder 'n003'"));
    CHECK(contains(e, "is not in the class-index file '" + tmp.file("classes.txt") + "' (3 classes"));
  }
  SUBCASE("bad class-index files") {
    write_bytes(tmp.file("dup.txt"), "n000\nn001\n# c\nn000\n");
    CHECK(contains(error_of([&] { load_class_index(tmp.file("dup.txt")); }),
                   tmp.file("dup.txt") + ":4: class name 'n000' repeats line 1"));
    write_bytes(tmp.file("gap.txt"), "0 n000\n2 n002\n");
    CHECK(contains(error_of([&] { load_class_index(tmp.file("gap.txt")); }),
                   tmp.file("gap.txt") + ":2: class index 2 is outside [0, 2)"));
    write_bytes(tmp.file("twice.txt"), "0 n000\n0 n001\n");
    CHECK(contains(error_of([&] { load_class_index(tmp.file("twice.txt")); }), ":2: class index 0 repeats line 1"));
    write_bytes(tmp.file("empty.txt"), "# nothing\n\n");
    CHECK(contains(error_of([&] { load_class_index(tmp.file("empty.txt")); }), "holds no class"));
    write_bytes(tmp.file("bad.json"), R"({"0": ["n000"], "x": "n001"})");
    CHECK(contains(error_of([&] { load_class_index(tmp.file("bad.json")); }), "key \"x\" is not a class index"));
    write_bytes(tmp.file("broken.json"), R"({"0": ["n000"],)");
    CHECK(contains(error_of([&] { load_class_index(tmp.file("broken.json")); }), "not valid JSON"));
    CHECK(contains(error_of([&] { load_class_index(tmp.file("none.txt")); }),
                   "cannot open class-index file '" + tmp.file("none.txt") + "'"));
  }
}

TEST_CASE("image folder: missing, empty and malformed folders are clear errors") {
  TempDir tmp;
  CHECK(contains(error_of([&] { load_image_folder(tmp.file("nope"), true); }),
                 "image folder '" + tmp.file("nope") + "' does not exist"));
  write_bytes(tmp.file("file.txt"), "x");
  CHECK(contains(error_of([&] { load_image_folder(tmp.file("file.txt"), true); }), "is not a folder"));
  fs::create_directories(tmp.file("empty"));
  CHECK(contains(error_of([&] { load_image_folder(tmp.file("empty"), true); }),
                 "'" + tmp.file("empty") + "' holds no class folder"));
  write_png(tmp.file("flat/a.png"), 0, 3, 4, 4);
  CHECK(contains(error_of([&] { load_image_folder(tmp.file("flat"), true); }), "it holds image files directly"));
  write_png(tmp.file("some/a/1.png"), 0, 3, 4, 4);
  write_bytes(tmp.file("some/b/readme.txt"), "no images here");
  CHECK(contains(error_of([&] { load_image_folder(tmp.file("some"), true); }),
                 "class folder '" + tmp.file("some") + "/b' holds no image file"));
  write_png(tmp.file("tiff/a/1.png"), 0, 3, 4, 4);
  write_bytes(tmp.file("tiff/a/2.tif"), "II*");
  CHECK(contains(error_of([&] { load_image_folder(tmp.file("tiff"), true); }), "2.tif' is a TIFF or WebP image"));
}

TEST_CASE("image folder: the loader decodes per sample; batches of variable-size images match for any worker count") {
  TempDir tmp;
  Layout layout;
  layout.write(tmp.path);
  const Dataset d = load_image_folder(tmp.path, true);

  LoaderOptions o;
  o.batch_size = 3;
  o.seed = 11;
  o.pipeline = train_pipeline("folder", 8);  // RandomResizedCrop(8), flip, jitter, lighting, normalize
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3}) {
    o.num_workers = workers;
    DataLoader loader(d, o);
    CHECK(loader.image_hw() == std::pair<int64_t, int64_t>{8, 8});
    runs.push_back(whole_epoch(loader, 1));
  }
  REQUIRE(runs[0].size() == 3);
  CHECK(runs[0][2].images.shape() == Shape{1, 3, 8, 8});
  for (size_t r = 1; r < runs.size(); ++r) {
    REQUIRE(runs[r].size() == runs[0].size());
    for (size_t b = 0; b < runs[0].size(); ++b) {
      CHECK(same_bytes(runs[r][b].images, runs[0][b].images));
      CHECK(same_bytes(runs[r][b].labels, runs[0][b].labels));
      CHECK(same_bytes(runs[r][b].indices, runs[0][b].indices));
    }
  }
  // Each sample is what the pipeline makes of its decoded image with its own rng.
  const Batch& first = runs[0][0];
  const int64_t i = first.indices.to_vector<int64_t>()[0];
  const Tensor img = d.source->decode(i);
  std::vector<float> expect(3 * 8 * 8);
  SampleRng rng(11, 1, static_cast<uint64_t>(i));
  apply(o.pipeline, img.data<uint8_t>(), 3, img.size(1), img.size(2), expect.data(), 8, 8, rng);
  CHECK(std::memcmp(expect.data(), first.images.data<float>(), expect.size() * sizeof(float)) == 0);
  CHECK(first.labels.to_vector<int64_t>()[0] == d.labels.to_vector<int64_t>()[i]);
}

TEST_CASE("image folder: decoded lazily or held in memory, the same images give bit-identical batches") {
  TempDir tmp;
  const int64_t n = 5, H = 10, W = 13;
  std::vector<uint8_t> all;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    const std::string cls = i < 2 ? "a" : "b";
    write_png(tmp.file(cls + "/img" + std::to_string(i) + ".png"), i, 3, H, W);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) all.push_back(value(i, c, y, x));
    labels.push_back(i < 2 ? 0 : 1);
  }
  const Dataset lazy = load_image_folder(tmp.path, true);
  Dataset memory;
  memory.images = Tensor::from_vector(all, {n, 3, H, W});
  memory.labels = Tensor::from_vector(labels, {n});
  memory.num_classes = 2;
  memory.name = "folder";
  for (const Pipeline& p : {train_pipeline("folder", 6), eval_pipeline("folder", 6)}) {
    CAPTURE(p.str());
    LoaderOptions o;
    o.batch_size = 2;
    o.seed = 5;
    o.num_workers = 2;
    o.pipeline = p;
    DataLoader a(lazy, o), b(memory, o);
    const auto ba = whole_epoch(a, 0), bb = whole_epoch(b, 0);
    REQUIRE(ba.size() == bb.size());
    for (size_t k = 0; k < ba.size(); ++k) {
      CHECK(same_bytes(ba[k].images, bb[k].images));
      CHECK(same_bytes(ba[k].labels, bb[k].labels));
      CHECK(same_bytes(ba[k].indices, bb[k].indices));
    }
  }
}

TEST_CASE("image folder: a bad file fails its batch through the loader, naming the file; pipelines must resize") {
  TempDir tmp;
  for (int i = 0; i < 6; ++i) write_png(tmp.file("a/" + std::to_string(i) + ".png"), i, 3, 6 + i, 9 - i);
  const std::string good = read_bytes(tmp.file("a/4.png"));
  write_bytes(tmp.file("a/4.png"), good.substr(0, good.size() / 2));  // truncated: sample 4, batch 2
  const Dataset d = load_image_folder(tmp.path, true);

  LoaderOptions o;
  o.batch_size = 2;
  o.shuffle = false;
  o.pipeline = eval_pipeline("folder", 4);
  for (int workers : {0, 2}) {
    CAPTURE(workers);
    o.num_workers = workers;
    DataLoader loader(d, o);
    loader.start_epoch(0);
    Batch b;
    REQUIRE(loader.next(b));
    REQUIRE(loader.next(b));
    const std::string e = error_of([&] { loader.next(b); });
    CHECK(contains(e, "DataLoader: epoch 0, batch 2: "));
    CHECK(contains(e, tmp.file("a/4.png")));
    CHECK(contains(e, "stb_image"));
    CHECK(error_of([&] { loader.next(b); }) == e);  // sticky until the next epoch
  }

  // Images of many sizes cannot be batched without a resize.
  o.pipeline = Pipeline{};
  const std::string e = error_of([&] { DataLoader loader(d, o); });
  CHECK(contains(e, "differ in size, so the pipeline must resize them"));
  o.pipeline = eval_pipeline("folder", 4);
  o.pipeline.resize_center_crop.crop = 9;  // larger than resize 5
  CHECK(contains(error_of([&] { DataLoader loader(d, o); }), "centre crop 9 is larger"));
}
