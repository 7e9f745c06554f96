// Dataset selection by name for the CLI: fashion-mnist (the embedded default), cifar10,
// cifar100, and folder (an ImageNet-style image folder: --data DIR [--class-index FILE]).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "augment/datasets.h"
#include "augment/transforms.h"

namespace dmix::app {

// The names --dataset accepts, for CLI11's IsMember and help texts.
const std::vector<std::string>& dataset_names();
// "fashion-mnist, cifar10, cifar100 or folder".
std::string dataset_names_text();

// Default directory for a dataset name ("" when it has none and --data is required).
std::string default_data_dir(const std::string& dataset);
// Loads the train or test split; dir "" means the default directory. class_index is a
// class-index file for folder datasets (augment/datasets.h: load_class_index) and must be
// "" for the others.
augment::Dataset load_dataset(const std::string& dataset, const std::string& dir, bool train,
                           const std::string& class_index = "");

// The --image-size the transform presets get for a dataset: the flag when given (> 0),
// else the size a checkpoint recorded (its "image_size" metadata, "" when absent), else
// 0 (the preset's own size: 224 for folders). Datasets of a fixed image size
// (fashion-mnist, cifar*) take none: a size given for them is an error.
// The one image size of a fixed-size dataset (28 for fashion-mnist, 32 for cifar*), 0
// for image folders, whose images come in any size.
int64_t native_image_size(const std::string& dataset);

int64_t preset_image_size(const std::string& dataset, int64_t flag, const std::string& checkpoint_value = "");

// The evaluation pipeline of `dataset` for images of any size: a fixed-size dataset's
// (fashion-mnist, cifar*) gets a resize and centre crop to its one size in front of its
// normalisation; image folders resize and crop anyway.
augment::Pipeline any_size_eval_pipeline(const std::string& dataset, int64_t image_size);

// Out-of-distribution images for `dmix eval --ood SPEC`: SPEC is a folder of image files
// (class folders of them, as ImageNet-O unpacks to, or the files directly; found
// recursively, sorted, decoded with `channels` channels, all labelled 0), or DATASET:DIR,
// the test split of a dataset by name (mnist:DIR reads MNIST's IDX files, which have
// Fashion-MNIST's names and format), whose images must have `channels` channels. A missing
// folder or one without image files is a dmix::Error.
augment::Dataset load_ood_dataset(const std::string& spec, int64_t channels);

}  // namespace dmix::app
