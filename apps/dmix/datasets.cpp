#include "apps/dmix/datasets.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <utility>

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

augment::Pipeline any_size_eval_pipeline(const std::string& dataset, int64_t image_size) {
  augment::Pipeline p = augment::eval_pipeline(dataset, image_size);
  if (!p.random_resized_crop.enabled && !p.resize_center_crop.enabled) {
    const int64_t side = native_image_size(dataset);
    check(side > 0, "data", "no image size known for dataset ", dataset);
    p.resize_center_crop.enabled = true;
    p.resize_center_crop.resize = side;
    p.resize_center_crop.crop = side;
  }
  return p;
}

namespace {

// Image files decoded on demand with a fixed channel count (grey for a Fashion-MNIST model,
// whatever the files hold).
class ImageFileSource final : public augment::ImageSource {
 public:
  ImageFileSource(std::vector<std::string> files, int64_t channels) : files_(std::move(files)), channels_(channels) {}
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int64_t channels() const override { return channels_; }
  Tensor decode(int64_t i) const override { return augment::decode_image_file(describe(i), channels_); }
  std::string describe(int64_t i) const override {
    check(i >= 0 && i < size(), "ood images", "image ", i, " is outside [0, ", size(), ")");
    return files_[static_cast<size_t>(i)];
  }

 private:
  std::vector<std::string> files_;
  int64_t channels_;
};

// Every image file under dir, hidden names (and what is under them) left out, sorted by path.
std::vector<std::string> image_files_under(const std::string& dir) {
  namespace fs = std::filesystem;
  const char* op = "ood";
  std::error_code ec;
  check(fs::is_directory(dir, ec), op, "--ood folder '", dir, "' ",
        fs::exists(dir, ec) ? "is not a folder" : "does not exist");
  std::vector<std::string> files;
  fs::recursive_directory_iterator walk(dir, fs::directory_options::follow_directory_symlink, ec);
  check(!ec, op, "cannot list '", dir, "': ", ec.message());
  for (; walk != fs::recursive_directory_iterator(); walk.increment(ec)) {
    check(!ec, op, "cannot list '", dir, "': ", ec.message());
    const std::string name = walk->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (walk->is_directory(ec)) walk.disable_recursion_pending();
      continue;
    }
    if (walk->is_regular_file(ec) && augment::is_image_file_name(name)) files.push_back(walk->path().string());
  }
  std::sort(files.begin(), files.end());
  check(!files.empty(), op, "--ood folder '", dir, "' holds no image file (.jpg .jpeg .png .bmp .ppm .pgm)");
  return files;
}

}  // namespace

augment::Dataset load_ood_dataset(const std::string& spec, int64_t channels) {
  const char* op = "ood";
  const size_t colon = spec.find(':');
  const std::string prefix = colon == std::string::npos ? "" : spec.substr(0, colon);
  const auto& names = dataset_names();
  if (prefix == "mnist" || (prefix != "folder" && std::find(names.begin(), names.end(), prefix) != names.end())) {
    const std::string dir = spec.substr(colon + 1);
    check(!dir.empty(), op, "--ood ", spec, " names no folder (expected ", prefix, ":DIR)");
    augment::Dataset d = load_dataset(prefix == "mnist" ? "fashion-mnist" : prefix, dir, /*train=*/false);
    check(d.channels() == channels, op, "--ood ", spec, ": its images have ", d.channels(),
          " channels but the model takes ", channels);
    return d;
  }
  check(channels == 1 || channels == 3, op, "image files need a model of 1 or 3 input channels, this one takes ",
        channels);
  const std::string dir = prefix == "folder" ? spec.substr(colon + 1) : spec;
  std::vector<std::string> files = image_files_under(dir);
  const int64_t n = static_cast<int64_t>(files.size());
  augment::Dataset d;
  d.name = "folder";
  d.num_classes = 1;
  d.class_names = {"ood"};
  d.labels = Tensor::zeros({n}, DType::i64);
  d.source = std::make_shared<ImageFileSource>(std::move(files), channels);
  return d;
}

}  // namespace dmix::app
