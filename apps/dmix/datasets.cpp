#include "apps/dmix/datasets.h"

#include "engine/error.h"

namespace dmix::app {

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"fashion-mnist", "cifar10", "cifar100", "folder"};
  return names;
}

std::string dataset_names_text() {
  const auto& n = dataset_names();
  std::string s;
  for (size_t i = 0; i < n.size(); ++i) s += (i == 0 ? "" : i + 1 == n.size() ? " or " : ", ") + n[i];
  return s;
}

std::string default_data_dir(const std::string& dataset) {
  if (dataset == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  return "";
}

augment::Dataset load_dataset(const std::string& dataset, const std::string& dir_in, bool train,
                           const std::string& class_index) {
  const std::string dir = dir_in.empty() ? default_data_dir(dataset) : dir_in;
  check(class_index.empty() || dataset == "folder", "data", "--class-index applies to --dataset folder only, not ",
        dataset);
  if (dataset == "fashion-mnist") return augment::load_fashion_mnist(dir, train);
  if (dataset == "folder") {
    check(!dir.empty(), "data",
          "--dataset folder needs --data DIR: a folder of class folders of images (DIR/<class>/*.jpg), or "
          "DIR/train and DIR/val holding them");
    return augment::load_image_folder(dir, train, class_index);
  }
  check(!dir.empty(), "data", dataset, " has no default location: pass --data DIR (the folder with the ", dataset,
        " binary files)");
  if (dataset == "cifar10") return augment::load_cifar10(dir, train);
  if (dataset == "cifar100") return augment::load_cifar100(dir, train);
  fail("data", "unknown dataset '", dataset, "' (expected ", dataset_names_text(), ")");
}

int64_t native_image_size(const std::string& dataset) {
  if (dataset == "fashion-mnist") return 28;
  if (dataset == "cifar10" || dataset == "cifar100") return 32;
  return 0;
}

int64_t preset_image_size(const std::string& dataset, int64_t flag, const std::string& checkpoint_value) {
  const bool resizable = dataset == "folder" || dataset.rfind("imagenet", 0) == 0;
  if (flag > 0) {
    check(resizable, "data", "--image-size applies to image folders, not ", dataset, " (its images have one size)");
    return flag;
  }
  if (!resizable || checkpoint_value.empty()) return 0;
  try {
    const int64_t size = std::stoll(checkpoint_value);
    return size > 0 ? size : 0;
  } catch (const std::exception&) {
    fail("data", "the checkpoint's image_size '", checkpoint_value, "' is not a number");
  }
}

}  // namespace dmix::app
