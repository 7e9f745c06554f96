// DataLoader: batches of augmented samples from a Dataset, assembled by worker threads
// ahead of the consumer and delivered in order.
//
// Reproducibility: what an epoch yields is a pure function of (seed, epoch, options):
//   - the epoch's order is the subset (or 0..N-1), permuted when shuffle is on by
//     kernels::cpu::randperm keyed by (seed ^ kShuffleDomain, stream = epoch);
//   - sample i's augmentation draws from SampleRng(seed, epoch, i) (augment/transforms.h);
//   - batch b holds positions [b * batch_size, (b + 1) * batch_size) of that order.
// Which worker assembles batch b does not matter, so batches are bit-identical for any
// num_workers, 0 (assembled synchronously inside next()) included.
//
// Datasets with an image source (image folders) are decoded here, per sample, by the
// thread that assembles the batch, so only the batches in flight are ever in memory.
// Their images differ in size, so the pipeline must make one size of them all
// (random_resized_crop or resize_center_crop). A file that fails to decode fails its
// batch like any other error below, with the file named.
//
// Threads: num_workers std::threads per epoch claim batch numbers in increasing order,
// at most num_workers * prefetch batches ahead of the one next() hands out. Starting a
// new epoch cancels and joins the old epoch's workers; so does the destructor. A failure
// while assembling batch b (a label outside [0, num_classes), ...) is rethrown by the
// next() call that would have returned batch b, as dmix::Error, and by every later
// next() until the next start_epoch().
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "augment/datasets.h"
#include "augment/transforms.h"
#include "engine/tensor.h"

namespace dmix::augment {

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;  // leave out a last batch smaller than batch_size
  uint64_t seed = 0;
  int num_workers = 2;     // 0: batches are assembled inside next(), on the caller's thread
  int prefetch = 2;        // batches each worker may have ready ahead of the consumer
  Pipeline pipeline;       // the default pipeline only turns u8 into [0, 1] floats
  std::optional<std::vector<int64_t>> subset;  // dataset indices to draw from (no duplicates)
};

struct Batch {
  Tensor images;   // f32 (B, C, outH, outW), after the pipeline
  Tensor labels;   // i64 (B)
  Tensor indices;  // i64 (B): the dataset index of each sample
  int64_t batch_index = 0;  // b within the epoch
};

class DataLoader {
 public:
  static constexpr uint64_t kShuffleDomain = 0xBB67AE8584CAA73Bull;  // frac(sqrt(3)) bits

  // Keeps its own handles to the dataset's tensors and image source (shared, no copy),
  // so the Dataset object may go away before the loader does.
  DataLoader(const Dataset& dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Begins epoch `epoch` (0 <= epoch < 2^32), cancelling any epoch still running. next()
  // without a start_epoch() first begins epoch 0.
  void start_epoch(int64_t epoch);
  // The epoch's next batch; false once the epoch is exhausted.
  bool next(Batch& out);

  int64_t batches_per_epoch() const;
  int64_t size() const { return static_cast<int64_t>(base_order_.size()); }  // samples per epoch
  int64_t epoch() const { return epoch_; }
  const LoaderOptions& options() const { return options_; }
  std::pair<int64_t, int64_t> image_hw() const { return {out_h_, out_w_}; }  // after the pipeline

  // The sample order of an epoch (dataset indices), as the loader uses it.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };

  void stop_workers();
  void worker_loop();
  void assemble(int64_t b, Batch& out) const;
  void apply_decoded(int64_t i, float* dst, SampleRng& rng) const;  // decodes sample i, runs the pipeline
  std::exception_ptr failure(int64_t b, const std::exception_ptr& e) const;

  Tensor images_, labels_;
  std::shared_ptr<const ImageSource> source_;  // set instead of images_ for decoded datasets
  int64_t num_classes_ = 0;
  std::string dataset_name_;
  int64_t C_ = 0, H_ = 0, W_ = 0, out_h_ = 0, out_w_ = 0;  // H_, W_: 0 with a source
  LoaderOptions options_;
  std::vector<int64_t> base_order_;  // subset or 0..N-1

  // The running epoch. order_ and epoch_ are written only while no worker runs.
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
  int64_t num_batches_ = 0;

  std::mutex mutex_;
  std::condition_variable changed_;
  bool cancel_ = false;
  int64_t next_claim_ = 0;    // next batch a worker will take
  int64_t next_deliver_ = 0;  // next batch next() returns
  std::map<int64_t, Slot> ready_;
  std::exception_ptr error_;  // sticky until start_epoch
  std::vector<std::thread> workers_;
};

// Reads a subset index file: one dataset index per line (blank lines and lines starting
// with '#' are skipped). Throws dmix::Error naming the file and line for a missing file,
// a line that is not an integer, an index outside [0, dataset_size) or a repeated index,
// and for a file with no index at all. A header written by augment::write_subset_file is
// checked too: the file must come from a dataset of dataset_size images and hold as many
// indices as the header says.
std::vector<int64_t> load_subset_file(const std::string& path, int64_t dataset_size);

// Checks a subset in memory the same way (what names the source in messages).
void validate_subset(const std::vector<int64_t>& subset, int64_t dataset_size, const std::string& what);

}  // namespace dmix::augment
