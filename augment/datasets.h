// Image classification datasets from their distribution formats:
//   Fashion-MNIST  IDX files (gzipped as Debian's dataset-fashion-mnist ships them, or plain)
//   CIFAR-10/100   the "binary version" batches from the CIFAR site
//   image folders  ImageNet-style DIR/<class>/<image files>, JPEG/PNG decoded with stb_image
// The first two are read into memory whole. An image folder is only listed: its images
// differ in size and can be far larger than memory, so the loader's workers decode each
// sample when a batch needs it (Dataset::source).
// Every reader validates the file before trusting it (magic numbers, dimensions, counts,
// file sizes, label ranges): a missing, truncated or corrupt file is one dmix::Error that
// names the file and what is wrong with it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace dmix::augment {

// Images decoded one at a time, on demand. Every image has channels() channels; height
// and width are each image's own. decode() is called from several loader threads at once.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual int64_t size() const = 0;
  virtual int64_t channels() const = 0;
  // Image i as u8 (C, H, W) on the CPU; a file that cannot be read or decoded is a
  // dmix::Error naming it.
  virtual Tensor decode(int64_t i) const = 0;
  // What image i is, for messages (its file path).
  virtual std::string describe(int64_t i) const = 0;
};

// A dataset holds its pixels in exactly one of two ways: `images` in memory (all images
// one size), or `source`, decoded per sample by the loader. Labels are always in memory.
struct Dataset {
  Tensor images;                         // u8 (N, C, H, W), raw pixel values; undefined with a source
  Tensor labels;                         // i64 (N), in [0, num_classes)
  int64_t num_classes = 0;
  std::vector<std::string> class_names;  // num_classes entries
  std::string name;                      // "fashion-mnist", "cifar10", "cifar100", "folder"
  std::shared_ptr<const ImageSource> source;

  int64_t size() const { return source ? source->size() : images.defined() ? images.size(0) : 0; }
  int64_t channels() const { return source ? source->channels() : images.defined() ? images.size(1) : 0; }
};

// Where Debian's dataset-fashion-mnist package puts the files.
inline constexpr const char* kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";

// {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in `dir`; the .gz name is tried first.
// 60000 (train) or 10000 (test) images of 1 x 28 x 28, 10 classes.
Dataset load_fashion_mnist(const std::string& dir, bool train);

// data_batch_1.bin .. data_batch_5.bin (train) or test_batch.bin (test), records of one
// label byte and 3 x 32 x 32 pixel bytes. `dir` may also be the folder that holds
// cifar-10-batches-bin/. Class names come from batches.meta.txt when it is there.
Dataset load_cifar10(const std::string& dir, bool train);

// train.bin or test.bin, records of a coarse label byte, a fine label byte and 3 x 32 x 32
// pixel bytes; the 100 fine labels are the classes. `dir` may also be the folder that
// holds cifar-100-binary/. Class names come from fine_label_names.txt when it is there.
Dataset load_cifar100(const std::string& dir, bool train);

// ---- image folders ----

// Decodes a JPEG, PNG, BMP, PPM/PGM, TGA or GIF (first frame) file or buffer with
// stb_image into u8 (channels, H, W): channels 3 gives RGB (a grey image repeated, alpha
// dropped), 1 gives grey (ITU-R 601 luma of a colour image). A file that cannot be read,
// or data stb_image rejects (corrupt, truncated, not an image), is a dmix::Error naming
// `what` (the path) and stb_image's reason.
Tensor decode_image_file(const std::string& path, int64_t channels = 3);
Tensor decode_image(const uint8_t* data, size_t size, const std::string& what, int64_t channels = 3);
// Whether a file name has one of the extensions image folders list (case-insensitive):
// .jpg .jpeg .png .bmp .ppm .pgm.
bool is_image_file_name(const std::string& name);

// A class-index file fixes the class numbering, so that a folder holding only some of
// a label space's classes (ImageNet-A and ImageNet-O have 200 of ImageNet's 1000 wnid
// folders) gets the labels of the full space. Accepted forms:
//   text, one entry per line (blank lines and lines starting with '#' skipped):
//     NAME [description...]          the class index is the entry's number, from 0
//                                    (a list of wnids; LOC_synset_mapping.txt)
//     INDEX NAME [description...]    when every entry starts with an integer followed
//                                    by a name; the indices must be 0..K-1, each once
//   JSON, {"INDEX": ["NAME", "description"], ...} or {"INDEX": "NAME", ...}
//     (imagenet_class_index.json)
// NAME is a class folder's name; names must be unique. Errors name the file and line.
struct ClassIndex {
  std::vector<std::string> names;         // K folder names; the class index is the position
  std::vector<std::string> descriptions;  // K entries, "" where the file gives none
};
ClassIndex load_class_index(const std::string& path);

// An ImageNet-style folder: one sub-folder per class, holding that class's image files
// (found recursively; names without an image extension and names starting with '.' are
// skipped). The split: DIR/train (train) or DIR/val (test) when DIR has a train/ or a
// val/ folder, otherwise DIR itself for both splits (a folder holding just the class
// folders, as ImageNet-A/-O unpack to).
// Classes: without a class-index file, the sorted class-folder names are classes
// 0..K-1 (those of DIR/train for both splits, so a class missing from DIR/val does not
// renumber the others; every val/ class folder must have a twin in train/); with one,
// its numbering (every class folder must be in it, and num_classes is the file's class
// count, so labels keep their meaning across subsets).
// Images are listed, sorted by class and then path, and decoded lazily through
// Dataset::source as RGB. A missing or empty folder, a class folder without images or
// one the class-index file does not name is a dmix::Error. Dataset::name is "folder".
Dataset load_image_folder(const std::string& dir, bool train, const std::string& class_index_path = "");

}  // namespace dmix::augment
