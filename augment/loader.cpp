// DataLoader: epoch orders from Philox, batches assembled by worker threads into an
// ordered, bounded set of slots, handed out strictly in batch order. See loader.h for the
// reproducibility contract.
#include "augment/loader.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <tuple>

#include "engine/error.h"
#include "kernels/cpu/random.h"

namespace dmix::augment {

namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// The counts in the header augment::write_subset_file writes ("# dmix subset: ..., dataset
// NAME (N images), K indices"); -1 for a count the line does not state.
struct SubsetHeader {
  int64_t dataset_size = -1, indices = -1;
};

SubsetHeader parse_subset_header(const std::string& line) {
  SubsetHeader h;
  const std::string images = " images), ";
  const size_t end = line.rfind(images);
  const size_t open = end == std::string::npos ? end : line.rfind('(', end);
  if (open == std::string::npos) return h;
  auto number = [](const std::string& text, int64_t& out) {
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
  };
  int64_t n = 0;
  if (number(line.substr(open + 1, end - open - 1), n)) h.dataset_size = n;
  const std::string rest = line.substr(end + images.size());
  const size_t space = rest.find(' ');
  if (space != std::string::npos && rest.substr(space) == " indices" && number(rest.substr(0, space), n)) h.indices = n;
  return h;
}

}  // namespace

// ---- subsets ----

void validate_subset(const std::vector<int64_t>& subset, int64_t dataset_size, const std::string& what) {
  const char* op = "subset";
  check(!subset.empty(), op, what, " holds no index");
  std::vector<int64_t> position(static_cast<size_t>(std::max<int64_t>(dataset_size, 0)), -1);
  for (size_t k = 0; k < subset.size(); ++k) {
    const int64_t i = subset[k];
    check(i >= 0 && i < dataset_size, op, what, ": entry ", k, " is index ", i, ", outside [0, ", dataset_size,
          ")");
    check(position[i] < 0, op, what, ": index ", i, " appears twice (entries ", position[i], " and ", k, ")");
    position[i] = static_cast<int64_t>(k);
  }
}

std::vector<int64_t> load_subset_file(const std::string& path, int64_t dataset_size) {
  const char* op = "load_subset_file";
  check(dataset_size >= 0, op, "dataset size must be >= 0, got ", dataset_size);
  std::ifstream in(path);
  check(in.is_open(), op, "cannot open subset file '", path, "'");
  std::vector<int64_t> subset;
  std::vector<int64_t> line_of(static_cast<size_t>(dataset_size), 0);  // 0: not seen yet
  std::string line;
  int64_t line_no = 0;
  int64_t header_indices = -1;  // what a write_subset_file header says the file holds
  while (std::getline(in, line)) {
    ++line_no;
    const std::string text = trim(line);
    if (text.rfind("# dmix subset:", 0) == 0) {
      const SubsetHeader header = parse_subset_header(text);
      check(header.dataset_size < 0 || header.dataset_size == dataset_size, op, path, ":", line_no,
            ": the subset was chosen from a dataset of ", header.dataset_size, " images, this one has ", dataset_size);
      header_indices = header.indices;
    }
    if (text.empty() || text[0] == '#') continue;
    int64_t index = 0;
    const char* first = text.data();
    const char* last = first + text.size();
    const auto [end, ec] = std::from_chars(first, last, index);
    if (ec != std::errc() || end != last) {
      if (ec == std::errc::result_out_of_range) fail(op, path, ":", line_no, ": '", text, "' does not fit in 64 bits");
      fail(op, path, ":", line_no, ": '", text, "' is not an integer sample index");
    }
    check(index >= 0 && index < dataset_size, op, path, ":", line_no, ": index ", index, " is outside [0, ",
          dataset_size, ")");
    check(line_of[index] == 0, op, path, ":", line_no, ": index ", index, " repeats line ", line_of[index]);
    line_of[index] = line_no;
    subset.push_back(index);
  }
  check(!in.bad(), op, "error reading '", path, "' after line ", line_no);
  check(!subset.empty(), op, "subset file '", path, "' holds no index");
  check(header_indices < 0 || header_indices == static_cast<int64_t>(subset.size()), op, path, ": holds ",
        subset.size(), " indices but its header says ", header_indices, " (cut short or edited?)");
  return subset;
}

// ---- DataLoader ----

DataLoader::DataLoader(const Dataset& dataset, LoaderOptions options) : options_(std::move(options)) {
  const char* op = "DataLoader";
  images_ = dataset.images;
  labels_ = dataset.labels;
  source_ = dataset.source;
  num_classes_ = dataset.num_classes;
  dataset_name_ = dataset.name;
  check(!(images_.defined() && source_), op, "dataset '", dataset_name_,
        "' has both images in memory and an image source; give it one");
  check((images_.defined() || source_) && labels_.defined(), op, "dataset '", dataset_name_,
        "' has no images or labels");
  check(labels_.dtype() == DType::i64 && labels_.dim() == 1 && labels_.is_cpu(), op,
        "expects labels as i64 (N) on cpu, got ", labels_.str());
  int64_t n = 0;
  if (source_) {
    n = source_->size();
    C_ = source_->channels();
    check(C_ > 0, op, "dataset '", dataset_name_, "' has images of ", C_, " channels");
  } else {
    check(images_.dtype() == DType::u8 && images_.dim() == 4 && images_.is_cpu(), op,
          "expects images as u8 (N, C, H, W) on cpu, got ", images_.str());
    n = images_.size(0);
    C_ = images_.size(1);
    H_ = images_.size(2);
    W_ = images_.size(3);
  }
  check(labels_.size(0) == n, op, "dataset '", dataset_name_, "' has ", n, " images but ", labels_.size(0),
        " labels");
  check(num_classes_ > 0, op, "dataset '", dataset_name_, "' has num_classes ", num_classes_);
  check(options_.batch_size > 0, op, "batch_size must be > 0, got ", options_.batch_size);
  check(options_.num_workers >= 0, op, "num_workers must be >= 0, got ", options_.num_workers);
  check(options_.prefetch >= 1, op, "prefetch must be >= 1, got ", options_.prefetch);
  if (source_) {
    const Pipeline& p = options_.pipeline;
    check(p.random_resized_crop.enabled || p.resize_center_crop.enabled, op, "the images of dataset '",
          dataset_name_, "' differ in size, so the pipeline must resize them (random_resized_crop or ",
          "resize_center_crop), got ", p.str());
    // Any image size checks the settings; each decoded image is checked again with its own.
    const int64_t side = std::max<int64_t>(
        1, p.resize_center_crop.enabled ? p.resize_center_crop.resize : p.random_resized_crop.size);
    p.validate(C_, side, side);
    std::tie(out_h_, out_w_) = p.output_hw(side, side);
  } else {
    options_.pipeline.validate(C_, H_, W_);
    std::tie(out_h_, out_w_) = options_.pipeline.output_hw(H_, W_);
  }

  if (options_.subset) {
    validate_subset(*options_.subset, n, "subset");
    base_order_ = *options_.subset;
  } else {
    base_order_.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) base_order_[i] = i;
  }
}

DataLoader::~DataLoader() { stop_workers(); }

int64_t DataLoader::batches_per_epoch() const {
  const int64_t n = size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  check(epoch >= 0 && epoch <= 0xFFFFFFFFll, "DataLoader", "epoch must be in [0, 2^32), got ", epoch);
  if (!options_.shuffle) return base_order_;
  const int64_t n = size();
  std::vector<int64_t> perm(static_cast<size_t>(n));
  kernels::cpu::randperm(options_.seed ^ kShuffleDomain, static_cast<uint64_t>(epoch), perm.data(), n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) order[k] = base_order_[perm[k]];
  return order;
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lk(mutex_);
    cancel_ = true;
  }
  changed_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

void DataLoader::start_epoch(int64_t epoch) {
  std::vector<int64_t> order = epoch_order(epoch);  // checks the epoch before anything stops
  stop_workers();
  epoch_ = epoch;
  order_ = std::move(order);
  num_batches_ = batches_per_epoch();
  cancel_ = false;
  next_claim_ = 0;
  next_deliver_ = 0;
  ready_.clear();
  error_ = nullptr;
  for (int w = 0; w < options_.num_workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

void DataLoader::assemble(int64_t b, Batch& out) const {
  const int64_t B = options_.batch_size;
  const int64_t start = b * B;
  const int64_t count = std::min<int64_t>(B, static_cast<int64_t>(order_.size()) - start);
  const int64_t in_stride = C_ * H_ * W_, out_stride = C_ * out_h_ * out_w_;
  Batch batch;
  batch.batch_index = b;
  batch.images = Tensor::empty({count, C_, out_h_, out_w_}, DType::f32);
  batch.labels = Tensor::empty({count}, DType::i64);
  batch.indices = Tensor::empty({count}, DType::i64);
  const uint8_t* src = source_ ? nullptr : images_.data<uint8_t>();
  const int64_t* labels = labels_.data<int64_t>();
  float* dst = batch.images.data<float>();
  int64_t* out_labels = batch.labels.data<int64_t>();
  int64_t* out_indices = batch.indices.data<int64_t>();
  for (int64_t k = 0; k < count; ++k) {
    const int64_t i = order_[start + k];
    const int64_t label = labels[i];
    check(label >= 0 && label < num_classes_, "labels", "sample ", i, " of dataset '", dataset_name_,
          "' has label ", label, ", outside [0, ", num_classes_, ")");
    SampleRng rng(options_.seed, static_cast<uint64_t>(epoch_), static_cast<uint64_t>(i));
    if (source_) {
      apply_decoded(i, dst + k * out_stride, rng);
    } else {
      apply(options_.pipeline, src + i * in_stride, C_, H_, W_, dst + k * out_stride, out_h_, out_w_, rng);
    }
    out_labels[k] = label;
    out_indices[k] = i;
  }
  out = std::move(batch);
}

void DataLoader::apply_decoded(int64_t i, float* dst, SampleRng& rng) const {
  const Tensor image = source_->decode(i);
  check(image.dtype() == DType::u8 && image.dim() == 3 && image.is_cpu() && image.size(0) == C_, "DataLoader",
        "image ", i, " (", source_->describe(i), ") decoded to ", image.str(), ", expected u8 (", C_,
        ", H, W) on cpu");
  try {
    apply(options_.pipeline, image.data<uint8_t>(), C_, image.size(1), image.size(2), dst, out_h_, out_w_, rng);
  } catch (const Error& e) {
    fail("DataLoader", "image ", i, " (", source_->describe(i), "): ", e.what());
  }
}

std::exception_ptr DataLoader::failure(int64_t b, const std::exception_ptr& e) const {
  std::string why;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    why = ex.what();
  } catch (...) {
    why = "unknown exception";
  }
  return std::make_exception_ptr(
      Error("DataLoader: epoch " + std::to_string(epoch_) + ", batch " + std::to_string(b) + ": " + why));
}

void DataLoader::worker_loop() {
  const int64_t capacity = static_cast<int64_t>(options_.num_workers) * options_.prefetch;
  for (;;) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lk(mutex_);
      changed_.wait(lk, [&] {
        return cancel_ || next_claim_ >= num_batches_ || next_claim_ < next_deliver_ + capacity;
      });
      if (cancel_ || next_claim_ >= num_batches_) return;
      b = next_claim_++;
    }
    Slot slot;
    try {
      assemble(b, slot.batch);
    } catch (...) {
      slot.error = failure(b, std::current_exception());
    }
    {
      std::lock_guard<std::mutex> lk(mutex_);
      ready_[b] = std::move(slot);
    }
    changed_.notify_all();
  }
}

bool DataLoader::next(Batch& out) {
  if (epoch_ < 0) start_epoch(0);
  if (error_) std::rethrow_exception(error_);
  if (workers_.empty()) {
    if (next_deliver_ >= num_batches_) return false;
    try {
      assemble(next_deliver_, out);
    } catch (...) {
      error_ = failure(next_deliver_, std::current_exception());
      std::rethrow_exception(error_);
    }
    ++next_deliver_;
    return true;
  }
  Slot slot;
  {
    std::unique_lock<std::mutex> lk(mutex_);
    if (next_deliver_ >= num_batches_) return false;
    changed_.wait(lk, [&] { return ready_.count(next_deliver_) > 0; });
    auto it = ready_.find(next_deliver_);
    slot = std::move(it->second);
    ready_.erase(it);
    ++next_deliver_;
    if (slot.error) {
      error_ = slot.error;
      cancel_ = true;  // the epoch is over; let the workers wind down
    }
  }
  changed_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  out = std::move(slot.batch);
  return true;
}

}  // namespace dmix::augment
