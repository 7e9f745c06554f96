// Dataset selection by name for the CLI: fashion-mnist (the embedded default), cifar10, cifar100.
#pragma once
#include <string>

#include "augment/datasets.h"

namespace dmix::app {

// Default directory for a dataset name ("" when it has none and --data is required).
std::string default_data_dir(const std::string& dataset);
// Loads the train or test split; dir "" means the default directory.
data::Dataset load_dataset(const std::string& dataset, const std::string& dir, bool train);

}  // namespace dmix::app
