// Execution plans of cuDNN's backend ("graph") API for one convolution pass; see
// cudnn_graph.h for why they exist beside the legacy API.
//
// How a plan is made (every step is a backend descriptor: created, given attributes,
// finalised):
//   1. three tensors, x (N, C, H, W), w (K, C/groups, R, S) and y (N, K, P, Q), dense
//      NCHW, each with a unique id and the byte alignment of its pointer. The group
//      count is not an attribute: cuDNN reads it off C / w's second extent.
//   2. a convolution (cross-correlation, f32 accumulation, strides, dilations, and the
//      same padding before and after, as the legacy API's symmetric padding).
//   3. one operation node: forward (x, w -> y), backward data (w, dy -> dx) or backward
//      filter (x, dy -> dw), alpha = 1 and beta = 0 (overwrite the output).
//   4. the operation graph holding that node, bound to the device's cuDNN handle.
//   5. heuristics: ranked engine configurations (an engine with its knob settings).
//   6. an execution plan per configuration; finalising it checks that the engine runs
//      this graph on this GPU, and yields the workspace it needs.
// Running a plan takes a variant pack: the unique ids with this call's pointers and the
// workspace.
//
// Cost: building the plans is host work, a few milliseconds per shape and pass, paid
// once (conv2d_cudnn.cu caches the plan it picks). A run is one cudnnBackendExecute,
// plus creating and finalising the small variant pack.
#include "kernels/cuda/cudnn_graph.h"

#if DMIX_HAS_CUDNN
#include <algorithm>
#include <array>
#include <set>
#include <sstream>
#include <utility>

#include "kernels/cuda/check.h"
#include "kernels/error.h"

namespace dmix::kernels::cuda {

const char* conv_pass_name(ConvPass pass) {
  switch (pass) {
    case ConvPass::Forward:
      return "forward";
    case ConvPass::BackwardData:
      return "backward data";
    default:
      return "backward filter";
  }
}

namespace {

// A backend descriptor owned by the object. `what` names the descriptor in errors.
class Descriptor {
 public:
  Descriptor(cudnnBackendDescriptorType_t type, const char* what) : what_(what) {
    check_cudnn(cudnnBackendCreateDescriptor(type, &d_), what);
  }
  ~Descriptor() {
    if (d_) cudnnBackendDestroyDescriptor(d_);  // cannot fail for a created descriptor
  }
  Descriptor(Descriptor&& other) noexcept : d_(std::exchange(other.d_, nullptr)), what_(other.what_) {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  Descriptor& operator=(Descriptor&& other) noexcept {
    std::swap(d_, other.d_);
    std::swap(what_, other.what_);
    return *this;
  }

  cudnnBackendDescriptor_t get() const { return d_; }
  cudnnBackendDescriptor_t release() { return std::exchange(d_, nullptr); }

  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* values) {
    const cudnnStatus_t status = cudnnBackendSetAttribute(d_, name, type, count, values);
    if (status != CUDNN_STATUS_SUCCESS)
      fail(what_, "cudnnBackendSetAttribute of attribute ", static_cast<int>(name), " (cudnnBackendAttributeName_t): ",
           cudnnGetErrorString(status));
  }
  void set_int64(cudnnBackendAttributeName_t name, int64_t value) { set(name, CUDNN_TYPE_INT64, 1, &value); }
  void set_int64s(cudnnBackendAttributeName_t name, const std::vector<int64_t>& values) {
    set(name, CUDNN_TYPE_INT64, static_cast<int64_t>(values.size()), values.data());
  }
  void set_descriptor(cudnnBackendAttributeName_t name, const Descriptor& value) {
    const cudnnBackendDescriptor_t d = value.get();
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d);
  }
  void set_handle(cudnnBackendAttributeName_t name, cudnnHandle_t handle) {
    set(name, CUDNN_TYPE_HANDLE, 1, &handle);
  }
  void finalize() {
    const cudnnStatus_t status = cudnnBackendFinalize(d_);
    if (status != CUDNN_STATUS_SUCCESS) fail(what_, "cudnnBackendFinalize: ", cudnnGetErrorString(status));
  }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
  const char* what_;
};

// The graph API names the handle of an operation graph and of an execution plan with
// attributes that cuDNN 9.x marks deprecated in favour of device-property descriptors
// (newer than some cuDNN 9 releases dmix builds with); both still work.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
constexpr cudnnBackendAttributeName_t kGraphHandle = CUDNN_ATTR_OPERATIONGRAPH_HANDLE;
constexpr cudnnBackendAttributeName_t kPlanHandle = CUDNN_ATTR_EXECUTION_PLAN_HANDLE;
#pragma GCC diagnostic pop

enum Uid : int64_t { kX = 1, kW = 2, kY = 3 };

Descriptor tensor(Uid uid, const std::vector<int64_t>& dims, int64_t alignment) {
  Descriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR, "cuDNN graph: tensor descriptor");
  std::vector<int64_t> strides(dims.size(), 1);
  for (size_t i = dims.size() - 1; i > 0; --i) strides[i - 1] = strides[i] * dims[i];
  const cudnnDataType_t type = CUDNN_DATA_FLOAT;
  t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
  t.set_int64s(CUDNN_ATTR_TENSOR_DIMENSIONS, dims);
  t.set_int64s(CUDNN_ATTR_TENSOR_STRIDES, strides);
  t.set_int64(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid);
  t.set_int64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, alignment);
  t.finalize();
  return t;
}

Descriptor convolution(const cpu::Conv2dGeometry& g) {
  Descriptor c(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, "cuDNN graph: convolution descriptor");
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  c.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
  c.set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
  c.set_int64(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, 2);
  c.set_int64s(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, {g.stride_h, g.stride_w});
  c.set_int64s(CUDNN_ATTR_CONVOLUTION_DILATIONS, {g.dilation_h, g.dilation_w});
  c.set_int64s(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, {g.pad_h, g.pad_w});
  c.set_int64s(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, {g.pad_h, g.pad_w});
  c.finalize();
  return c;
}

// The operation node of a pass and the attribute names of its operands.
struct NodeAttributes {
  cudnnBackendDescriptorType_t type;
  cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
};
NodeAttributes node_attributes(ConvPass pass) {
  switch (pass) {
    case ConvPass::Forward:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA};
    case ConvPass::BackwardData:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA};
    default:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA};
  }
}

// The unique ids of a pass's operands a, b, c (see CudnnGraphPlan).
std::array<int64_t, 3> operand_uids(ConvPass pass) {
  switch (pass) {
    case ConvPass::Forward:
      return {kX, kW, kY};
    case ConvPass::BackwardData:
      return {kW, kY, kX};
    default:
      return {kX, kY, kW};
  }
}

// The engine behind a configuration and what cuDNN notes about it.
struct EngineInfo {
  int64_t index = -1;
  std::vector<cudnnBackendNumericalNote_t> numerical;
  std::vector<cudnnBackendBehaviorNote_t> behavior;
  bool has(cudnnBackendNumericalNote_t note) const {
    for (auto n : numerical)
      if (n == note) return true;
    return false;
  }
  bool has(cudnnBackendBehaviorNote_t note) const {
    for (auto n : behavior)
      if (n == note) return true;
    return false;
  }
};

EngineInfo engine_info(cudnnBackendDescriptor_t config) {
  const char* what = "cuDNN graph: reading an engine configuration";
  Descriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR, what);
  cudnnBackendDescriptor_t raw = engine.get();
  int64_t count = 0;
  check_cudnn(cudnnBackendGetAttribute(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &count,
                                       &raw),
              what);
  EngineInfo info;
  check_cudnn(cudnnBackendGetAttribute(raw, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &count, &info.index),
              what);
  info.numerical.resize(CUDNN_NUMERICAL_NOTE_TYPE_COUNT);
  check_cudnn(cudnnBackendGetAttribute(raw, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                       CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &count, info.numerical.data()),
              what);
  info.numerical.resize(static_cast<size_t>(count));
  info.behavior.resize(CUDNN_BEHAVIOR_NOTE_TYPE_COUNT);
  check_cudnn(cudnnBackendGetAttribute(raw, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                       CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &count, info.behavior.data()),
              what);
  info.behavior.resize(static_cast<size_t>(count));
  return info;
}

// The engine configurations heuristics `mode` ranks for the graph; none when the mode
// has nothing for it.
std::vector<Descriptor> engine_configs(const Descriptor& graph, cudnnBackendHeurMode_t mode) {
  const char* what = "cuDNN graph: engine heuristics";
  Descriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, what);
  heuristics.set_descriptor(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
  heuristics.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  if (cudnnBackendFinalize(heuristics.get()) != CUDNN_STATUS_SUCCESS) return {};
  int64_t count = 0;
  check_cudnn(
      cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                               &count, nullptr),
      what);
  if (count <= 0) return {};
  std::vector<Descriptor> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, what);
    raw.push_back(configs.back().get());
  }
  int64_t returned = 0;
  check_cudnn(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                       count, &returned, raw.data()),
              what);
  configs.erase(configs.begin() + std::clamp<int64_t>(returned, 0, count), configs.end());
  return configs;
}

std::string status_text(cudnnStatus_t status) {
  return std::string(cudnnGetErrorString(status)) + " (" + std::to_string(static_cast<int>(status)) + ")";
}

}  // namespace

// What every plan of one graph refers to.
struct CudnnGraphPlan::Parts {
  Descriptor x, w, y, conv, node, graph;
};

CudnnGraphPlan::CudnnGraphPlan(std::shared_ptr<const Parts> parts, cudnnBackendDescriptor_t config,
                               cudnnBackendDescriptor_t plan, ConvPass pass, int64_t engine, int64_t workspace,
                               bool deterministic)
    : parts_(std::move(parts)),
      config_(config),
      plan_(plan),
      pass_(pass),
      engine_(engine),
      workspace_(workspace),
      deterministic_(deterministic) {}

CudnnGraphPlan::~CudnnGraphPlan() {
  cudnnBackendDestroyDescriptor(plan_);
  cudnnBackendDestroyDescriptor(config_);
}

void CudnnGraphPlan::execute(cudnnHandle_t handle, const void* a, const void* b, void* c, void* workspace) const {
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, "cuDNN graph: variant pack");
  const std::array<int64_t, 3> uids = operand_uids(pass_);
  std::array<void*, 3> pointers = {const_cast<void*>(a), const_cast<void*>(b), c};
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  pack.finalize();
  check_cudnn(cudnnBackendExecute(handle, plan_, pack.get()), "cudnnBackendExecute");
}

namespace {

// Steps 1-3, and the operation graph descriptor created but not given its handle.
std::shared_ptr<CudnnGraphPlan::Parts> describe(ConvPass pass, const cpu::Conv2dGeometry& g, int64_t alignment) {
  check(alignment == 4 || alignment == 8 || alignment == 16, "cuDNN graph", "alignment must be 4, 8 or 16, got ",
        alignment);
  const NodeAttributes a = node_attributes(pass);
  auto parts = std::make_shared<CudnnGraphPlan::Parts>(CudnnGraphPlan::Parts{
      tensor(kX, {g.N, g.C, g.H, g.W}, alignment), tensor(kW, {g.K, g.C / g.groups, g.R, g.S}, alignment),
      tensor(kY, {g.N, g.K, g.out_h(), g.out_w()}, alignment), convolution(g),
      Descriptor(a.type, "cuDNN graph: operation node"),
      Descriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "cuDNN graph: operation graph")});
  Descriptor& node = parts->node;
  node.set_descriptor(a.x, parts->x);
  node.set_descriptor(a.w, parts->w);
  node.set_descriptor(a.y, parts->y);
  node.set_descriptor(a.conv, parts->conv);
  const float one = 1.0f, zero = 0.0f;
  node.set(a.alpha, CUDNN_TYPE_FLOAT, 1, &one);
  node.set(a.beta, CUDNN_TYPE_FLOAT, 1, &zero);
  node.finalize();
  return parts;
}

}  // namespace

void cudnn_graph_describe(ConvPass pass, const cpu::Conv2dGeometry& g, int64_t alignment) {
  describe(pass, g, alignment);
}

std::vector<std::unique_ptr<CudnnGraphPlan>> cudnn_graph_plans(ConvPass pass, const cpu::Conv2dGeometry& g,
                                                               int64_t alignment, bool strict_fp32,
                                                               cudnnHandle_t handle, size_t workspace_limit,
                                                               size_t max_plans, std::vector<std::string>* skipped) {
  const std::shared_ptr<CudnnGraphPlan::Parts> parts = describe(pass, g, alignment);
  const cudnnBackendDescriptor_t nodes[] = {parts->node.get()};
  parts->graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, nodes);
  parts->graph.set_handle(kGraphHandle, handle);
  parts->graph.finalize();

  auto skip = [&](int64_t engine, const std::string& why) {
    if (!skipped) return;
    std::ostringstream os;
    os << "engine " << engine << ": " << why;
    skipped->push_back(os.str());
  };
  std::vector<std::unique_ptr<CudnnGraphPlan>> plans;
  std::set<int64_t> ranked;  // engines heuristics mode A named
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    for (Descriptor& config : engine_configs(parts->graph, mode)) {
      if (plans.size() == max_plans) {
        if (skipped) skipped->push_back("configurations ranked below the first " + std::to_string(max_plans) +
                                        " plans: not tried");
        return plans;
      }
      EngineInfo engine;
      try {
        engine = engine_info(config.get());
      } catch (const Error& e) {
        skip(-1, std::string("unreadable configuration: ") + e.what());
        continue;
      }
      if (mode == CUDNN_HEUR_MODE_A) {
        ranked.insert(engine.index);
      } else if (ranked.count(engine.index)) {
        continue;  // already offered, with knobs tuned for this shape
      }
      if (engine.has(CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION)) {
        skip(engine.index, "compiles its kernels at run time");
        continue;
      }
      if (strict_fp32 && (engine.has(CUDNN_NUMERICAL_NOTE_TENSOR_CORE) ||
                          engine.has(CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS) ||
                          engine.has(CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION))) {
        skip(engine.index, "tensor-core or reduced-precision numerics (TF32 is off)");
        continue;
      }
      Descriptor plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, "cuDNN graph: execution plan");
      plan.set_handle(kPlanHandle, handle);
      plan.set_descriptor(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, config);
      const cudnnStatus_t finalized = cudnnBackendFinalize(plan.get());
      if (finalized != CUDNN_STATUS_SUCCESS) {
        skip(engine.index, "does not finalise: " + status_text(finalized));
        continue;
      }
      int64_t workspace = 0, count = 0;
      check_cudnn(cudnnBackendGetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                                           &count, &workspace),
                  "cuDNN graph: execution plan workspace size");
      if (workspace < 0 || static_cast<uint64_t>(workspace) > workspace_limit) {
        skip(engine.index, "needs " + std::to_string(workspace) + " B of workspace, over the limit");
        continue;
      }
      const bool deterministic = !engine.has(CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC);
      plans.push_back(std::make_unique<CudnnGraphPlan>(parts, config.release(), plan.release(), pass, engine.index,
                                                       workspace, deterministic));
    }
  }
  return plans;
}

}  // namespace dmix::kernels::cuda
#endif
