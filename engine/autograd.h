// Reverse-mode automatic differentiation on a dynamic tape.
//
// Every op that runs while grad mode is on and has an input that requires grad records
// one Node: edges to where its inputs came from and a backward function. Backward
// functions are written with engine ops, so when the engine runs them with
// create_graph=true they record nodes of their own, and the gradients they produce can
// be differentiated again: grad(grad(f)) and Hessian-vector products are exact.
//
// Invariants:
//  - leaves accumulate into .grad() with an out-of-place add (grads are never aliased);
//  - a node's inputs are kept alive by its closure; its outputs only when the op asks
//    (save_outputs), and then they are reattached to the node when backward runs, so a
//    formula using the output (exp, sigmoid, softmax) is itself differentiable.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace dmix::autograd {

// ---- grad mode ----
bool grad_mode_enabled();
struct NoGradGuard {
  NoGradGuard();
  ~NoGradGuard();
  bool previous;
};
struct EnableGradGuard {
  EnableGradGuard();
  ~EnableGradGuard();
  bool previous;
};

// What a backward function sees.
struct BackwardContext {
  TensorList grad_outputs;             // one per output; zeros where no gradient flowed
  TensorList outputs;                  // the op's outputs, reattached (only with save_outputs)
  std::vector<bool> needs_input_grad;  // one per input
  const Tensor& grad() const { return grad_outputs[0]; }
  const Tensor& output() const { return outputs[0]; }
  bool needs(size_t input) const { return needs_input_grad[input]; }
};
// Returns one gradient per input, each shaped like that input; undefined where not needed.
using BackwardFn = std::function<TensorList(const BackwardContext&)>;

struct Edge {
  std::shared_ptr<Node> fn;          // the producing node of a non-leaf input
  int output_nr = 0;
  std::weak_ptr<TensorImpl> leaf;    // a leaf input that requires grad
  bool is_leaf() const { return fn == nullptr && !leaf.expired(); }
  bool valid() const { return fn != nullptr || !leaf.expired(); }
};

struct Node {
  std::string op;
  std::vector<Edge> next;              // one per input
  BackwardFn backward;
  std::vector<Shape> output_shapes;
  std::vector<DType> output_dtypes;
  std::vector<Device> output_devices;
  TensorList saved_outputs;            // detached aliases, only with save_outputs
};

// True when grad mode is on and one of the tensors requires grad.
bool needs_grad(const TensorList& inputs);

// Attaches outputs to a new node (no-op unless needs_grad(inputs)).
void record(const char* op, const TensorList& inputs, const TensorList& outputs, BackwardFn backward,
            bool save_outputs = false);

// Accumulates d(sum of roots * grad_roots)/d(leaf) into every leaf's .grad().
// An undefined grad_root means ones (a scalar loss).
void backward(const TensorList& roots, const TensorList& grad_roots = {}, bool create_graph = false);

// Returns d(sum of outputs * grad_outputs)/d(input) for each input, without touching
// .grad(). With create_graph the results are differentiable. An input that the outputs
// do not depend on is an error unless allow_unused, when its gradient is zeros.
TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs = {},
                bool create_graph = false, bool allow_unused = false);

// Hessian-vector product: H v where H is the Hessian of loss_fn() w.r.t. params.
// Computed as grad(<grad(loss, params, create_graph), v>, params).
TensorList hvp(const std::function<Tensor()>& loss_fn, const TensorList& params, const TensorList& v);

}  // namespace dmix::autograd
