#include "apps/dmix/datasets.h"

#include "engine/error.h"

namespace dmix::app {

std::string default_data_dir(const std::string& dataset) {
  if (dataset == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  return "";
}

data::Dataset load_dataset(const std::string& dataset, const std::string& dir_in, bool train) {
  const std::string dir = dir_in.empty() ? default_data_dir(dataset) : dir_in;
  if (dataset == "fashion-mnist") return data::load_fashion_mnist(dir, train);
  check(!dir.empty(), "data", dataset, " has no default location: pass --data DIR (the folder with the ", dataset,
        " binary files)");
  if (dataset == "cifar10") return data::load_cifar10(dir, train);
  if (dataset == "cifar100") return data::load_cifar100(dir, train);
  fail("data", "unknown dataset '", dataset, "' (expected fashion-mnist, cifar10 or cifar100)");
}

}  // namespace dmix::app
