// The backward engine: collects the nodes reachable from the roots, counts how many
// edges lead into each, and runs each node once all gradients for its outputs have
// arrived (a topological order), summing gradients that meet at the same place.
#include "engine/autograd.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"

namespace dmix::autograd {

namespace {
thread_local bool g_grad_mode = true;

// Sum of two gradients; an undefined side means "nothing yet".
Tensor accumulate(const Tensor& acc, const Tensor& g) {
  if (!acc.defined()) return g;
  if (!g.defined()) return acc;
  return add(acc, g);
}

struct GradBuffer {
  TensorList grads;  // one per output of the node
};
}  // namespace

bool grad_mode_enabled() { return g_grad_mode; }
NoGradGuard::NoGradGuard() : previous(g_grad_mode) { g_grad_mode = false; }
NoGradGuard::~NoGradGuard() { g_grad_mode = previous; }
EnableGradGuard::EnableGradGuard() : previous(g_grad_mode) { g_grad_mode = true; }
EnableGradGuard::~EnableGradGuard() { g_grad_mode = previous; }

bool needs_grad(const TensorList& inputs) {
  if (!g_grad_mode) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* op, const TensorList& inputs, const TensorList& outputs, BackwardFn backward,
            bool save_outputs) {
  if (!needs_grad(inputs)) return;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->backward = std::move(backward);
  node->next.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      if (t.grad_fn()) {
        e.fn = t.grad_fn();
        e.output_nr = t.impl().output_nr;
      } else {
        e.leaf = t.impl_ptr();
      }
    }
    node->next.push_back(std::move(e));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    node->output_shapes.push_back(out.shape());
    node->output_dtypes.push_back(out.dtype());
    node->output_devices.push_back(out.device());
    if (save_outputs) node->saved_outputs.push_back(out.detach());
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl& impl = outputs[i].impl();
    check(impl.grad_fn == nullptr && !impl.requires_grad, op, "output ", i, " is already part of a graph");
    impl.grad_fn = node;
    impl.output_nr = static_cast<int>(i);
  }
}

namespace {

// Runs the graph below `roots`. Leaf gradients are summed into `leaf_grads`; gradients
// reaching the outputs named in `captures` (non-leaf inputs of grad()) are summed there.
struct Run {
  std::unordered_map<Node*, GradBuffer> buffers;
  std::unordered_map<TensorImpl*, Tensor> leaf_grads;
  std::unordered_map<Node*, std::unordered_map<int, Tensor>> captured;
  std::unordered_set<Node*> capture_nodes;

  void execute(const TensorList& roots, const TensorList& grad_roots, bool create_graph) {
    // Topology: count the edges into each reachable node.
    std::unordered_map<Node*, int> deps;
    std::unordered_map<Node*, std::shared_ptr<Node>> keep;
    std::vector<Node*> stack;
    for (const Tensor& r : roots)
      if (r.grad_fn() && !keep.count(r.grad_fn().get())) {
        keep[r.grad_fn().get()] = r.grad_fn();
        stack.push_back(r.grad_fn().get());
      }
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (const Edge& e : n->next) {
        if (!e.fn) continue;
        ++deps[e.fn.get()];
        if (!keep.count(e.fn.get())) {
          keep[e.fn.get()] = e.fn;
          stack.push_back(e.fn.get());
        }
      }
    }

    // Seed the roots.
    for (size_t i = 0; i < roots.size(); ++i) {
      const Tensor& r = roots[i];
      Tensor g = i < grad_roots.size() ? grad_roots[i] : Tensor();
      if (!g.defined()) {
        check(r.numel() == 1, "backward", "a gradient must be given for non-scalar output ", r.str());
        g = Tensor::ones(r.shape(), r.dtype(), r.device());
      }
      check(g.shape() == r.shape(), "backward", "gradient ", g.str(), " does not match output ", r.str());
      check(r.requires_grad(), "backward", "output ", r.str(), " does not require grad (no op on its path had an input that requires grad)");
      if (r.grad_fn()) {
        add_to_buffer(r.grad_fn().get(), r.impl().output_nr, g);
      } else {
        leaf_grads[&r.impl()] = accumulate(leaf_grads[&r.impl()], g);
      }
    }

    // Only the roots' own nodes have no edge into them. Starting from them in the order given
    // (not in the hash map's order, which follows memory addresses) makes a backward from
    // several roots, such as a Hessian-vector product's, sum its gradients in the same order
    // on every run, and so give the same bits.
    std::vector<Node*> ready;
    for (auto it = roots.rbegin(); it != roots.rend(); ++it) {
      Node* n = it->grad_fn().get();
      if (n && deps[n] == 0 && std::find(ready.begin(), ready.end(), n) == ready.end()) ready.push_back(n);
    }

    // Backward formulas record a graph only when asked to (create_graph).
    EnableGradGuard grad_on;
    std::optional<NoGradGuard> grad_off;
    if (!create_graph) grad_off.emplace();
    while (!ready.empty()) {
      Node* n = ready.back();
      ready.pop_back();
      run_node(n, keep[n]);
      for (const Edge& e : n->next) {
        if (e.fn && --deps[e.fn.get()] == 0) ready.push_back(e.fn.get());
      }
      buffers.erase(n);
    }
  }

  void add_to_buffer(Node* n, int output_nr, const Tensor& g) {
    GradBuffer& b = buffers[n];
    if (b.grads.empty()) b.grads.resize(n->output_shapes.size());
    b.grads[output_nr] = accumulate(b.grads[output_nr], g);
  }

  void run_node(Node* n, const std::shared_ptr<Node>& self) {
    BackwardContext ctx;
    GradBuffer& b = buffers[n];
    if (b.grads.empty()) b.grads.resize(n->output_shapes.size());
    ctx.grad_outputs = b.grads;
    for (size_t i = 0; i < ctx.grad_outputs.size(); ++i)
      if (!ctx.grad_outputs[i].defined())
        ctx.grad_outputs[i] = Tensor::zeros(n->output_shapes[i], n->output_dtypes[i], n->output_devices[i]);
    if (capture_nodes.count(n))
      for (size_t i = 0; i < ctx.grad_outputs.size(); ++i) captured[n][static_cast<int>(i)] = b.grads[i];
    // Saved outputs are reattached to this node, so formulas that use them stay differentiable.
    for (size_t i = 0; i < n->saved_outputs.size(); ++i) {
      Tensor o = n->saved_outputs[i].detach();
      o.impl().grad_fn = self;
      o.impl().output_nr = static_cast<int>(i);
      ctx.outputs.push_back(o);
    }
    for (const Edge& e : n->next) ctx.needs_input_grad.push_back(e.valid());

    TensorList grads = n->backward(ctx);
    check(grads.size() == n->next.size(), n->op.c_str(), "backward returned ", grads.size(), " gradients for ",
          n->next.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Edge& e = n->next[i];
      if (!e.valid() || !grads[i].defined()) continue;
      if (e.fn) {
        check(grads[i].shape() == e.fn->output_shapes[e.output_nr], n->op.c_str(), "backward gave gradient ",
              grads[i].str(), " for an input of shape ", shape_str(e.fn->output_shapes[e.output_nr]));
        add_to_buffer(e.fn.get(), e.output_nr, grads[i]);
      } else if (auto leaf = e.leaf.lock()) {
        check(grads[i].shape() == leaf->shape, n->op.c_str(), "backward gave gradient ", grads[i].str(),
              " for a leaf of shape ", shape_str(leaf->shape));
        leaf_grads[leaf.get()] = accumulate(leaf_grads[leaf.get()], grads[i]);
      }
    }
  }
};

}  // namespace

void backward(const TensorList& roots, const TensorList& grad_roots, bool create_graph) {
  Run run;
  run.execute(roots, grad_roots, create_graph);
  // Leaves are reached through weak edges; the impls still alive get their gradient.
  for (auto& kv : run.leaf_grads) {
    TensorImpl* leaf = kv.first;
    Tensor g = kv.second;
    if (!create_graph) g = g.detach().clone();  // never alias a gradient another leaf also holds
    Tensor old = leaf->grad ? Tensor(leaf->grad) : Tensor();
    Tensor sum;
    if (old.defined()) {
      std::optional<NoGradGuard> grad_off;
      if (!create_graph) grad_off.emplace();
      sum = add(old, g);
    } else {
      sum = g;
    }
    leaf->grad = sum.impl_ptr();
  }
}

TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs,
                bool create_graph, bool allow_unused) {
  Run run;
  for (const Tensor& in : inputs) {
    check(in.defined(), "grad", "an input is undefined");
    check(in.requires_grad(), "grad", "input ", in.str(), " does not require grad");
    if (in.grad_fn()) run.capture_nodes.insert(in.grad_fn().get());
  }
  run.execute(outputs, grad_outputs, create_graph);
  TensorList result;
  for (const Tensor& in : inputs) {
    Tensor g;
    if (in.grad_fn()) {
      auto it = run.captured.find(in.grad_fn().get());
      if (it != run.captured.end()) {
        auto jt = it->second.find(in.impl().output_nr);
        if (jt != it->second.end()) g = jt->second;
      }
      // An input that is itself one of the outputs receives that output's seed.
      for (size_t i = 0; i < outputs.size(); ++i)
        if (!g.defined() && outputs[i].same(in))
          g = i < grad_outputs.size() && grad_outputs[i].defined() ? grad_outputs[i]
                                                                   : Tensor::ones(in.shape(), in.dtype(), in.device());
    } else {
      auto it = run.leaf_grads.find(&in.impl());
      if (it != run.leaf_grads.end()) g = it->second;
    }
    if (!g.defined()) {
      check(allow_unused, "grad", "input ", in.str(), " is not used by the outputs (pass allow_unused)");
      g = Tensor::zeros(in.shape(), in.dtype(), in.device());
    }
    result.push_back(g);
  }
  return result;
}

TensorList hvp(const std::function<Tensor()>& loss_fn, const TensorList& params, const TensorList& v) {
  check(params.size() == v.size(), "hvp", params.size(), " parameters but ", v.size(), " vectors");
  EnableGradGuard enable;
  Tensor loss = loss_fn();
  TensorList g = grad({loss}, params, {}, /*create_graph=*/true, /*allow_unused=*/true);
  Tensor dot;
  for (size_t i = 0; i < params.size(); ++i) {
    check(v[i].shape() == params[i].shape(), "hvp", "vector ", v[i].str(), " does not match parameter ", params[i].str());
    if (!g[i].requires_grad()) continue;  // gradient constant in the parameters: no curvature
    Tensor term = sum(mul(g[i], v[i]));
    dot = dot.defined() ? add(dot, term) : term;
  }
  if (!dot.defined()) {
    TensorList zeros;
    for (const Tensor& p : params) zeros.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
    return zeros;
  }
  TensorList h = grad({dot}, params, {}, /*create_graph=*/false, /*allow_unused=*/true);
  for (Tensor& t : h) t = t.detach();
  return h;
}

}  // namespace dmix::autograd
