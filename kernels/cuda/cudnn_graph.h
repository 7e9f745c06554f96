// One pass of an f32 convolution as an execution plan of cuDNN's backend ("graph") API,
// the API under cuDNN's own frontend and PyTorch. The legacy API (conv2d_cudnn.cu) can
// only name its fixed list of algorithms; the backend API asks cuDNN's heuristics for
// every engine that computes the operation graph (here a single convolution node), each
// with tuned knob settings, and on recent GPUs some of the fastest FMA kernels are only
// reachable this way. conv2d_cudnn.cu times these plans beside the legacy algorithms
// and keeps the fastest; only it includes this header.
//
// cuDNN's graph API computes no f64 convolution (no engine takes CUDNN_DATA_DOUBLE), so
// f64 stays on the legacy API.
#pragma once
#if DMIX_HAS_CUDNN
#include <cudnn.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"

namespace dmix::kernels::cuda {

enum class ConvPass { Forward, BackwardData, BackwardFilter };
const char* conv_pass_name(ConvPass pass);  // "forward", "backward data", "backward filter"

// A pass's operands in the order its legacy cuDNN function takes them, a and b read, c
// written:  forward           a = x, b = w,  c = y
//           backward data     a = w, b = gy, c = gx
//           backward filter   a = x, b = gy, c = gw
class CudnnGraphPlan {
 public:
  struct Parts;  // the descriptors the plan was built from, kept alive with it
  CudnnGraphPlan(std::shared_ptr<const Parts> parts, cudnnBackendDescriptor_t config, cudnnBackendDescriptor_t plan,
                 ConvPass pass, int64_t engine, int64_t workspace, bool deterministic);
  ~CudnnGraphPlan();
  CudnnGraphPlan(const CudnnGraphPlan&) = delete;
  CudnnGraphPlan& operator=(const CudnnGraphPlan&) = delete;

  // c = pass(a, b), queued on the handle's stream. `workspace` holds workspace_bytes().
  void execute(cudnnHandle_t handle, const void* a, const void* b, void* c, void* workspace) const;
  size_t workspace_bytes() const { return static_cast<size_t>(workspace_); }
  int64_t engine() const { return engine_; }  // cuDNN's global engine index
  bool deterministic() const { return deterministic_; }

 private:
  std::shared_ptr<const Parts> parts_;
  cudnnBackendDescriptor_t config_, plan_;
  ConvPass pass_;
  int64_t engine_, workspace_;
  bool deterministic_;
};

// Steps 1-3 of cudnn_graph_plans: the pass's tensors, convolution and operation node,
// each finalised, which cuDNN validates (extents, strides, groups, output size) without
// a handle or a GPU. Throws dmix::Error naming the descriptor cuDNN rejects.
void cudnn_graph_describe(ConvPass pass, const cpu::Conv2dGeometry& g, int64_t alignment);

// The first `max_plans` plans cuDNN offers for `pass` of the f32 convolution `g` on
// tensors whose base pointers are all `alignment`-byte aligned (4, 8 or 16): the
// configurations of its heuristics (mode A), then those of its fallback list for engines
// mode A did not name, in that order; configurations ranked below them are not
// finalised (finalising costs host time). Left out, each with one line in `skipped` (when given) saying why:
// configurations that do not finalise on this handle's device, that need more than
// `workspace_limit` bytes, that compile kernels at run time (seconds per shape), and in
// strict fp32 those whose numerics use tensor cores (TF32) or convert inputs down.
// Throws dmix::Error when the graph itself is rejected (a shape cuDNN cannot describe).
std::vector<std::unique_ptr<CudnnGraphPlan>> cudnn_graph_plans(ConvPass pass, const cpu::Conv2dGeometry& g,
                                                               int64_t alignment, bool strict_fp32,
                                                               cudnnHandle_t handle, size_t workspace_limit,
                                                               size_t max_plans, std::vector<std::string>* skipped);

}  // namespace dmix::kernels::cuda
#endif
