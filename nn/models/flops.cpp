#include "nn/models/flops.h"

#include <unordered_set>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"

namespace dmix::nn {

namespace {

// The shape of the tensor an edge points at, or empty when the edge leads nowhere.
Shape edge_shape(const autograd::Edge& e) {
  if (e.fn) return e.fn->output_shapes.at(size_t(e.output_nr));
  if (auto leaf = e.leaf.lock()) return leaf->shape;
  return {};
}

}  // namespace

FlopCount count_forward_flops(Module& model, const Shape& input_chw) {
  check(input_chw.size() == 3 && shape_numel(input_chw) > 0, "count_forward_flops", "expected (C, H, W), got ",
        shape_str(input_chw));
  const bool was_training = model.training();
  model.eval();
  FlopCount count;
  try {
    autograd::EnableGradGuard grad_on;
    Tensor x = Tensor::zeros({1, input_chw[0], input_chw[1], input_chw[2]}, DType::f32, model.device());
    Tensor y = model.forward(x);
    std::vector<autograd::Node*> todo;
    std::unordered_set<autograd::Node*> seen;
    if (y.grad_fn()) todo.push_back(y.grad_fn().get());
    while (!todo.empty()) {
      autograd::Node* node = todo.back();
      todo.pop_back();
      if (!seen.insert(node).second) continue;
      const bool conv = node->op == "conv2d", fc = node->op == "linear";
      if ((conv || fc) && node->next.size() >= 2) {
        const Shape w = edge_shape(node->next[1]);
        const int64_t outputs = shape_numel(node->output_shapes.at(0));
        if (conv && w.size() == 4) count.conv += 2 * outputs * w[1] * w[2] * w[3];
        if (fc && w.size() == 2) count.linear += 2 * outputs * w[1];
      }
      for (const auto& e : node->next)
        if (e.fn) todo.push_back(e.fn.get());
    }
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return count;
}

}  // namespace dmix::nn
