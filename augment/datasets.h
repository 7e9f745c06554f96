// Image classification datasets read into memory from their distribution formats:
//   Fashion-MNIST  IDX files (gzipped as Debian's dataset-fashion-mnist ships them, or plain)
//   CIFAR-10/100   the "binary version" batches from the CIFAR site
// Every reader validates the file before trusting it (magic numbers, dimensions, counts,
// file sizes, label ranges): a missing, truncated or corrupt file is one dmix::Error that
// names the file and what is wrong with it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace dmix::data {

struct Dataset {
  Tensor images;                         // u8 (N, C, H, W), raw pixel values
  Tensor labels;                         // i64 (N), in [0, num_classes)
  int64_t num_classes = 0;
  std::vector<std::string> class_names;  // num_classes entries
  std::string name;                      // "fashion-mnist", "cifar10", "cifar100"
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

}  // namespace dmix::data
