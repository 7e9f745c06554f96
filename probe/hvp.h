// Hessian-vector products of a model's mean loss, on flat parameter vectors.
//
// What: Hv, where H is the Hessian of the mean loss over one batch, or over every batch a
// loader yields (PyHessian's full-dataset mode: sum_b n_b H_b v / sum_b n_b, with H_b the
// Hessian of batch b's mean loss and n_b its size), with respect to the selected
// parameters (all that require grad, or those under given name prefixes).
// How: Pearlmutter's trick through the engine's exact double backward: g = dL/dtheta
// with create_graph, then Hv = d<g, v>/dtheta. With a single batch the gradient and its
// graph are built once and reused by every product, as PyHessian does; with a loader
// each product runs forward, backward and double backward batch after batch, so no more
// than one batch's graph is ever alive.
// Cost: one product is about two backward passes (plus a forward and a backward per
// batch in loader mode); memory is one batch's double-backward graph.
//
// The model is put in eval mode (running batch-norm statistics, the loss a deterministic
// function of the weights, as PyHessian forces) unless train_mode asks for batch
// statistics; then the running statistics that each forward updates are put back, so the
// analysis leaves the model as it found it. The operator restores the model's mode when
// it goes away. With a single batch the gradient graph holds the weights of the first
// product: build a new operator after changing the weights.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "augment/loader.h"
#include "nn/module.h"
#include "probe/operator.h"

namespace dmix::probe {

// Where the batches come from. start() rewinds; next() gives batches until it returns
// false. Every pass must yield the same batches, or H changes between products.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual void start() = 0;
  virtual bool next(augment::Batch& out) = 0;
  // True when there is exactly one batch, so one gradient graph serves every product.
  virtual bool single_batch() const { return false; }
};

// One fixed batch: inputs (N, ...) and targets (i64 labels (N) or float targets (N, C)).
class FixedBatch : public BatchSource {
 public:
  FixedBatch(Tensor inputs, Tensor targets);
  void start() override { done_ = false; }
  bool next(augment::Batch& out) override;
  bool single_batch() const override { return true; }

 private:
  augment::Batch batch_;
  bool done_ = false;
};

// One epoch of a loader per pass (always the same epoch, so the same order and the same
// augmentation draws). For PyHessian's full-dataset mode use an evaluation loader: no
// shuffle, no random augmentation.
class LoaderBatches : public BatchSource {
 public:
  explicit LoaderBatches(augment::DataLoader& loader, int64_t epoch = 0) : loader_(loader), epoch_(epoch) {}
  void start() override { loader_.start_epoch(epoch_); }
  bool next(augment::Batch& out) override { return loader_.next(out); }

 private:
  augment::DataLoader& loader_;
  int64_t epoch_;
};

// The mean loss of one batch, with the model's graph. The default: cross entropy on i64
// labels, soft cross entropy on float targets, of model(batch.images) on the model's device.
using LossFn = std::function<Tensor(nn::Module& model, const augment::Batch& batch)>;
Tensor classification_batch_loss(nn::Module& model, const augment::Batch& batch);

struct HessianOptions {
  bool train_mode = false;                  // batch statistics in batch norm, instead of running ones
  std::vector<std::string> parameters;      // name prefixes ("layer1", "fc.weight"); empty: every parameter
  LossFn loss = classification_batch_loss;  // the mean loss of a batch
};

// True when `name` is `prefix` or lies under it ("layer1.0" covers "layer1.0.conv1.weight",
// not "layer1.05.weight").
bool name_under_prefix(const std::string& name, const std::string& prefix);

class HessianOperator {
 public:
  // Keeps references to model and batches: both must outlive the operator.
  HessianOperator(nn::Module& model, BatchSource& batches, HessianOptions options = {});
  ~HessianOperator();
  HessianOperator(const HessianOperator&) = delete;
  HessianOperator& operator=(const HessianOperator&) = delete;

  // Hv for a flat vector v of size() elements (dtype and device of the parameters).
  Tensor apply(const Tensor& v);
  // The operator the algorithms take; it calls apply(), so it counts in hvp_count().
  SymmetricOperator as_operator();
  int64_t hvp_count() const { return hvps_; }

  int64_t size() const { return size_; }
  const std::vector<std::string>& parameter_names() const { return names_; }
  const TensorList& parameters() const { return params_; }
  // The mean loss over the batch source (weighted by batch size), without a graph.
  double loss();

  // Flat vector <-> one tensor per selected parameter (copies, shaped like the parameters).
  Tensor flatten(const TensorList& per_parameter) const;
  TensorList unflatten(const Tensor& flat) const;
  // Parameter name -> its part of `flat`, e.g. for save_safetensors.
  std::map<std::string, Tensor> named(const Tensor& flat) const;

 private:
  struct BatchGradient {
    TensorList grads;           // dL_b/dtheta with its graph, for the parameters it depends on
    std::vector<size_t> index;  // which parameter (position in params_) each entry belongs to
  };
  BatchGradient gradient_of(const augment::Batch& batch);
  TensorList hvp_of(const BatchGradient& g, const TensorList& v) const;
  void restore_buffers();

  nn::Module& model_;
  BatchSource& batches_;
  HessianOptions options_;
  bool was_training_;
  std::vector<std::string> names_;
  TensorList params_;
  std::vector<int64_t> offsets_;
  int64_t size_ = 0;
  int64_t hvps_ = 0;
  TensorList buffer_snapshot_;  // train mode: running statistics to put back after each forward
  TensorList buffers_;
  std::unique_ptr<BatchGradient> cached_;  // single-batch mode: the one gradient graph
};

}  // namespace dmix::probe
