// DataLoader: coverage and order of epochs, reproducibility across worker counts,
// drop_last, subsets (in memory and from files) with their errors, error propagation
// from workers, and cancelling an epoch mid-way.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "augment/loader.h"
#include "engine/error.h"

using namespace dmix;
using namespace dmix::augment;

namespace {

// Sample i: every pixel a function of (i, pixel), label i % classes.
Dataset synthetic(int64_t n, int64_t C, int64_t H, int64_t W, int64_t classes = 10) {
  std::vector<uint8_t> pixels(static_cast<size_t>(n * C * H * W));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < C * H * W; ++p)
      pixels[static_cast<size_t>(i * C * H * W + p)] = static_cast<uint8_t>((i * 31 + p * 7 + (p * p) % 13) % 256);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = i % classes;
  Dataset d;
  d.images = Tensor::from_vector(pixels, {n, C, H, W});
  d.labels = Tensor::from_vector(labels, {n});
  d.num_classes = classes;
  d.name = "synthetic";
  return d;
}

std::vector<Batch> whole_epoch(DataLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

std::vector<int64_t> indices_of(const std::vector<Batch>& batches) {
  std::vector<int64_t> all;
  for (const Batch& b : batches) {
    const auto v = b.indices.to_vector<int64_t>();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// An augmenting pipeline that exercises every random stage a 3-channel image allows.
Pipeline heavy_pipeline() {
  Pipeline p;
  p.pad_crop = 2;
  p.hflip = true;
  p.color_jitter.enabled = true;
  p.lighting.enabled = true;
  p.mean = {0.5f, 0.4f, 0.3f};
  p.std = {0.2f, 0.25f, 0.3f};
  return p;
}

std::string temp_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("dmix_test_loader_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(path) << text;
  return path.string();
}

}  // namespace

TEST_CASE("loader: every index once per epoch; labels, indices and images match the dataset") {
  const Dataset d = synthetic(103, 1, 3, 4);
  LoaderOptions o;
  o.batch_size = 10;
  o.num_workers = 2;
  o.seed = 42;
  DataLoader loader(d, o);
  CHECK(loader.size() == 103);
  CHECK(loader.batches_per_epoch() == 11);
  const auto batches = whole_epoch(loader, 0);
  REQUIRE(batches.size() == 11);
  for (size_t b = 0; b < batches.size(); ++b) {
    CHECK(batches[b].batch_index == static_cast<int64_t>(b));
    CHECK(batches[b].images.shape() == Shape{b + 1 < batches.size() ? 10 : 3, 1, 3, 4});
    CHECK(batches[b].labels.dtype() == DType::i64);
  }
  const auto all = indices_of(batches);
  CHECK(std::set<int64_t>(all.begin(), all.end()).size() == 103);
  CHECK(*std::min_element(all.begin(), all.end()) == 0);
  CHECK(*std::max_element(all.begin(), all.end()) == 102);
  CHECK(all == loader.epoch_order(0));

  const auto pixels = d.images.to_vector<uint8_t>();
  for (const Batch& b : batches) {
    const auto idx = b.indices.to_vector<int64_t>();
    const auto lab = b.labels.to_vector<int64_t>();
    const auto img = b.images.to_vector<float>();
    for (size_t k = 0; k < idx.size(); ++k) {
      CHECK(lab[k] == idx[k] % 10);
      // The default pipeline is ToTensor alone: pixel / 255.
      for (int64_t p = 0; p < 12; ++p) REQUIRE(img[k * 12 + p] == pixels[idx[k] * 12 + p] / 255.0f);
    }
  }
}

TEST_CASE("loader: orders differ between epochs and seeds, repeat for the same seed, and follow the data without shuffle") {
  const Dataset d = synthetic(200, 1, 2, 2);
  LoaderOptions o;
  o.batch_size = 32;
  o.num_workers = 1;
  o.seed = 7;
  DataLoader a(d, o), b(d, o);
  const auto e0 = indices_of(whole_epoch(a, 0));
  const auto e1 = indices_of(whole_epoch(a, 1));
  CHECK(e0 != e1);
  CHECK(std::multiset<int64_t>(e0.begin(), e0.end()) == std::multiset<int64_t>(e1.begin(), e1.end()));
  CHECK(indices_of(whole_epoch(b, 1)) == e1);
  CHECK(indices_of(whole_epoch(b, 0)) == e0);

  o.seed = 8;
  DataLoader c(d, o);
  CHECK(indices_of(whole_epoch(c, 0)) != e0);

  o.shuffle = false;
  DataLoader s(d, o);
  std::vector<int64_t> identity(200);
  for (int64_t i = 0; i < 200; ++i) identity[i] = i;
  CHECK(indices_of(whole_epoch(s, 3)) == identity);
}

TEST_CASE("loader: batches are bit-identical for 0, 1, 2 and 4 workers with augmentation on") {
  const Dataset d = synthetic(150, 3, 6, 5);
  LoaderOptions o;
  o.batch_size = 16;
  o.seed = 2024;
  o.pipeline = heavy_pipeline();
  o.num_workers = 0;
  DataLoader reference(d, o);
  const auto want0 = whole_epoch(reference, 0);
  const auto want1 = whole_epoch(reference, 1);
  REQUIRE(want0.size() == 10);
  // Augmentation differs between epochs even for the same sample.
  CHECK_FALSE(same_bytes(want0[0].images, want1[0].images));

  for (int workers : {1, 2, 4}) {
    for (int prefetch : {1, 3}) {
      CAPTURE(workers);
      CAPTURE(prefetch);
      o.num_workers = workers;
      o.prefetch = prefetch;
      DataLoader loader(d, o);
      for (int64_t epoch : {0, 1}) {
        const auto got = whole_epoch(loader, epoch);
        const auto& want = epoch == 0 ? want0 : want1;
        REQUIRE(got.size() == want.size());
        for (size_t b = 0; b < got.size(); ++b) {
          CHECK(same_bytes(got[b].images, want[b].images));
          CHECK(same_bytes(got[b].labels, want[b].labels));
          CHECK(same_bytes(got[b].indices, want[b].indices));
        }
      }
    }
  }
}

TEST_CASE("loader: the train preset's augmentation is a function of (seed, epoch, sample), not of its batch") {
  const Dataset d = synthetic(40, 1, 28, 28);
  LoaderOptions o;
  o.batch_size = 8;
  o.pipeline = train_pipeline("fashion-mnist");
  o.seed = 5;
  o.num_workers = 2;
  DataLoader shuffled(d, o);
  o.shuffle = false;
  o.batch_size = 40;
  DataLoader sequential(d, o);
  const auto a = whole_epoch(shuffled, 4);
  const auto all = whole_epoch(sequential, 4);
  REQUIRE(all.size() == 1);
  const auto ref = all[0].images.to_vector<float>();
  const int64_t stride = 28 * 28;
  for (const Batch& b : a) {
    const auto idx = b.indices.to_vector<int64_t>();
    const auto img = b.images.to_vector<float>();
    // Bit for bit: the loader copies images, it computes nothing.
    for (size_t k = 0; k < idx.size(); ++k)
      // NOLINTNEXTLINE(bugprone-suspicious-memory-comparison)
      CHECK(std::memcmp(&img[k * stride], &ref[idx[k] * stride], stride * sizeof(float)) == 0);
  }
}

TEST_CASE("loader: drop_last leaves out the short last batch") {
  const Dataset d = synthetic(103, 1, 2, 2);
  LoaderOptions o;
  o.batch_size = 10;
  o.drop_last = true;
  for (int workers : {0, 2}) {
    o.num_workers = workers;
    DataLoader loader(d, o);
    CHECK(loader.batches_per_epoch() == 10);
    const auto batches = whole_epoch(loader, 0);
    REQUIRE(batches.size() == 10);
    for (const Batch& b : batches) CHECK(b.images.size(0) == 10);
    const auto all = indices_of(batches);
    CHECK(std::set<int64_t>(all.begin(), all.end()).size() == 100);
  }
  o.batch_size = 200;  // one short batch, dropped: an empty epoch
  DataLoader empty(d, o);
  CHECK(empty.batches_per_epoch() == 0);
  CHECK(whole_epoch(empty, 0).empty());
}

TEST_CASE("loader: a subset restricts the epoch to its indices") {
  const Dataset d = synthetic(50, 1, 2, 2);
  LoaderOptions o;
  o.batch_size = 4;
  o.subset = std::vector<int64_t>{5, 17, 42, 3, 9, 30};
  o.num_workers = 2;
  DataLoader loader(d, o);
  CHECK(loader.size() == 6);
  CHECK(loader.batches_per_epoch() == 2);
  for (int64_t epoch : {0, 1, 2}) {
    const auto all = indices_of(whole_epoch(loader, epoch));
    CHECK(std::set<int64_t>(all.begin(), all.end()) == std::set<int64_t>{3, 5, 9, 17, 30, 42});
    CHECK(all.size() == 6);
  }
  o.shuffle = false;
  DataLoader in_order(d, o);
  CHECK(indices_of(whole_epoch(in_order, 0)) == *o.subset);

  o.subset = std::vector<int64_t>{1, 50};
  CHECK_THROWS_WITH_AS(DataLoader(d, o), doctest::Contains("index 50, outside [0, 50)"), dmix::Error);
  o.subset = std::vector<int64_t>{4, 2, 4};
  CHECK_THROWS_WITH_AS(DataLoader(d, o), doctest::Contains("index 4 appears twice"), dmix::Error);
  o.subset = std::vector<int64_t>{};
  CHECK_THROWS_WITH_AS(DataLoader(d, o), doctest::Contains("holds no index"), dmix::Error);
}

TEST_CASE("loader: subset files are read and validated line by line") {
  const std::string good = temp_file("good.txt", "# kept samples\n7\n  3 \n\n12\r\n0\n");
  CHECK(load_subset_file(good, 20) == std::vector<int64_t>{7, 3, 12, 0});

  const std::string missing = temp_file("gone.txt", "");
  std::remove(missing.c_str());
  CHECK_THROWS_WITH_AS(load_subset_file(missing, 20), doctest::Contains("cannot open subset file"), dmix::Error);

  const std::string word = temp_file("word.txt", "1\n2\n3x\n");
  CHECK_THROWS_WITH_AS(load_subset_file(word, 20), doctest::Contains(":3: '3x' is not an integer"), dmix::Error);
  const std::string real = temp_file("real.txt", "1.5\n");
  CHECK_THROWS_WITH_AS(load_subset_file(real, 20), doctest::Contains("is not an integer"), dmix::Error);
  const std::string huge = temp_file("huge.txt", "99999999999999999999999\n");
  CHECK_THROWS_WITH_AS(load_subset_file(huge, 20), doctest::Contains("does not fit"), dmix::Error);
  const std::string high = temp_file("high.txt", "4\n20\n");
  CHECK_THROWS_WITH_AS(load_subset_file(high, 20), doctest::Contains(":2: index 20 is outside [0, 20)"),
                       dmix::Error);
  const std::string negative = temp_file("negative.txt", "-1\n");
  CHECK_THROWS_WITH_AS(load_subset_file(negative, 20), doctest::Contains("index -1 is outside"), dmix::Error);
  const std::string twice = temp_file("twice.txt", "4\n8\n4\n");
  CHECK_THROWS_WITH_AS(load_subset_file(twice, 20), doctest::Contains(":3: index 4 repeats line 1"), dmix::Error);
  const std::string empty = temp_file("empty.txt", "# nothing\n\n");
  CHECK_THROWS_WITH_AS(load_subset_file(empty, 20), doctest::Contains("holds no index"), dmix::Error);

  // A file's subset drives a loader.
  const Dataset d = synthetic(20, 1, 1, 1);
  LoaderOptions o;
  o.subset = load_subset_file(good, 20);
  o.batch_size = 3;
  DataLoader loader(d, o);
  const auto all = indices_of(whole_epoch(loader, 0));
  CHECK(std::set<int64_t>(all.begin(), all.end()) == std::set<int64_t>{0, 3, 7, 12});

  for (const auto& f : {good, word, real, huge, high, negative, twice, empty}) std::remove(f.c_str());
}

TEST_CASE("loader: a failure in a worker reaches next() as dmix::Error, batch by batch in order") {
  Dataset d = synthetic(30, 1, 2, 2);
  d.labels.data<int64_t>()[17] = 10;  // num_classes is 10
  LoaderOptions o;
  o.batch_size = 5;
  o.shuffle = false;
  for (int workers : {0, 1, 3}) {
    CAPTURE(workers);
    o.num_workers = workers;
    DataLoader loader(d, o);
    loader.start_epoch(0);
    Batch b;
    for (int i = 0; i < 3; ++i) REQUIRE(loader.next(b));  // samples 0..14
    CHECK_THROWS_WITH_AS(loader.next(b), doctest::Contains("batch 3: labels: sample 17"), dmix::Error);
    CHECK_THROWS_AS(loader.next(b), dmix::Error);  // sticky until the next epoch
    loader.start_epoch(1);
    CHECK(loader.next(b));
  }
}

TEST_CASE("loader: starting an epoch mid-way cancels the old one; destruction mid-epoch joins cleanly") {
  const Dataset d = synthetic(300, 3, 8, 8);
  LoaderOptions o;
  o.batch_size = 8;
  o.pipeline = heavy_pipeline();
  o.num_workers = 3;
  o.prefetch = 2;
  DataLoader fresh(d, o);
  const auto want = whole_epoch(fresh, 1);

  DataLoader loader(d, o);
  loader.start_epoch(0);
  Batch b;
  REQUIRE(loader.next(b));
  REQUIRE(loader.next(b));
  const auto got = whole_epoch(loader, 1);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(same_bytes(got[i].images, want[i].images));

  {
    DataLoader abandoned(d, o);
    abandoned.start_epoch(0);
    REQUIRE(abandoned.next(b));
  }  // workers blocked on a full queue must still be joined
  {
    DataLoader never_read(d, o);
    never_read.start_epoch(5);
  }

  // next() with no start_epoch() runs epoch 0.
  DataLoader implicit(d, o);
  REQUIRE(implicit.next(b));
  CHECK(implicit.epoch() == 0);
  const auto order0 = fresh.epoch_order(0);
  CHECK(b.indices.to_vector<int64_t>() == std::vector<int64_t>(order0.begin(), order0.begin() + 8));
}

TEST_CASE("loader: bad datasets and options are refused up front") {
  const Dataset d = synthetic(10, 1, 4, 4);
  LoaderOptions o;
  o.batch_size = 0;
  CHECK_THROWS_WITH_AS(DataLoader(d, o), doctest::Contains("batch_size"), dmix::Error);
  o.batch_size = 2;
  o.num_workers = -1;
  CHECK_THROWS_AS(DataLoader(d, o), dmix::Error);
  o.num_workers = 1;
  o.pipeline.lighting.enabled = true;  // needs RGB
  CHECK_THROWS_WITH_AS(DataLoader(d, o), doctest::Contains("3 (RGB) channels"), dmix::Error);
  o.pipeline = Pipeline{};

  Dataset floats = d;
  floats.images = Tensor::zeros({10, 1, 4, 4});
  CHECK_THROWS_WITH_AS(DataLoader(floats, o), doctest::Contains("u8 (N, C, H, W)"), dmix::Error);
  Dataset short_labels = d;
  short_labels.labels = Tensor::from_vector(std::vector<int64_t>{0, 1}, {2});
  CHECK_THROWS_WITH_AS(DataLoader(short_labels, o), doctest::Contains("10 images but 2 labels"), dmix::Error);

  DataLoader ok(d, o);
  CHECK_THROWS_AS(ok.start_epoch(-1), dmix::Error);
}
