// conv2d on cuDNN: the forward pass and its two adjoints (backward data, backward
// filter), f32 and f64, any stride, padding, dilation and group count (depthwise too).
//
// Algorithm: cuDNN chooses among many kernels per pass (implicit GEMM, precomputed-index
// GEMM, FFT, Winograd, and engine-specific kernels); the right one depends on the shape
// and the GPU, so dmix times them. The first time a (pass, geometry, dtype, device, TF32
// switch, API choice, pointer alignment) is seen:
//   - legacy API: tensors described as NCHW, the weight as a (K, C/groups, R, S) filter,
//     the convolution as cross-correlation with the group count set;
//     cudnnFind*AlgorithmEx runs each algorithm on the call's own buffers and times it,
//     and the fastest usable one is picked;
//   - graph API (f32; kernels/cuda/cudnn_graph.h): the plans cuDNN's heuristics offer
//     are run on the same buffers and timed here (one warm-up, then the mean of three),
//     as is the legacy pick, so the two APIs are compared by one clock;
// and the fastest deterministic candidate whose workspace fits the limit is cached in a
// map (a non-deterministic one only if no deterministic one works, or always the fastest
// under DMIX_CUDNN_DETERMINISTIC=0), together with the convolution's descriptors. Later
// calls go straight to it: cuDNN 9 builds its execution plan from the descriptors, so
// descriptors made afresh per call would cost host time on every call. The timing runs
// write the output buffer, which the real call then overwrites.
// DMIX_CUDNN_VERBOSE=1 prints every timing run (each candidate's time, workspace and
// math, and why graph configurations were left out) and the choice, to stderr.
//
// Workspace: taken from the caching allocator for each call and handed back at once
// (stream-ordered, so no synchronisation), capped by DMIX_CUDNN_WORKSPACE_MB (default
// 1024; read once). Algorithms asking more are not timed or used.
//
// Precision: f32 runs with CUDNN_FMA_MATH (no TF32 tensor cores: results within fp32
// rounding of the CPU's) unless set_allow_tf32(true) (kernels/cuda/gemm.h, the switch
// that governs cuBLAS too), in which case cuDNN may use TF32 tensor cores, ~1e-3 relative.
// f64 uses CUDNN_DATA_DOUBLE throughout.
//
// Cost: 2 * N*K*(C/groups)*R*S*P*Q flops per pass at the chosen algorithm's speed, plus
// one timing run of every algorithm per new shape. A bias is added by cudnnAddTensor
// (one more read and write of y).
//
// In a build without cuDNN (DMIX_HAS_CUDNN unset) every entry point throws a dmix::Error
// saying so; the handwritten path (conv2d_implicit_gemm.cu) is then the default.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/conv2d_common.cuh"
#include "kernels/cuda/cudnn_graph.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream.h"
#include "kernels/error.h"

#if DMIX_HAS_CUDNN
#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <tuple>
#include <type_traits>
#include <vector>
#endif

namespace dmix::kernels::cuda {

size_t cudnn_workspace_limit() {
  static const size_t limit = [] {
    const char* env = std::getenv("DMIX_CUDNN_WORKSPACE_MB");
    const std::string text = env ? env : "";
    if (text.empty()) return size_t{1024} << 20;
    char* end = nullptr;
    const long long mb = std::strtoll(text.c_str(), &end, 10);
    check(end && *end == '\0' && mb >= 0 && mb <= (1LL << 24), "conv2d",
          "environment variable DMIX_CUDNN_WORKSPACE_MB must be a whole number of MiB between 0 and 16777216, got '",
          text, "'");
    return static_cast<size_t>(mb) << 20;
  }();
  return limit;
}

#if DMIX_HAS_CUDNN

bool cudnn_available() { return true; }

namespace {

using Pass = ConvPass;

template <class T> cudnnDataType_t data_type();
template <> cudnnDataType_t data_type<float>() { return CUDNN_DATA_FLOAT; }
template <> cudnnDataType_t data_type<double>() { return CUDNN_DATA_DOUBLE; }

// Strict fp32: only FMA kernels. Otherwise (TF32 allowed, or f64) cuDNN's default.
template <class T> bool strict_fp32() { return sizeof(T) == 4 && !allow_tf32(); }
template <class T> cudnnMathType_t search_math() { return strict_fp32<T>() ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH; }

int to_int(int64_t v, const char* op, const char* what) {
  check(v <= INT_MAX, op, what, " = ", v, " does not fit cuDNN's 32-bit sizes");
  return static_cast<int>(v);
}

// The four descriptors of one convolution, destroyed with the object.
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  Descriptors(const Conv2dGeometry& g, cudnnDataType_t type, cudnnMathType_t math, const char* op) {
    const int64_t P = g.out_h(), Q = g.out_w();
    check(g.N * g.C * g.H * g.W < (int64_t{1} << 31) && g.N * g.K * P * Q < (int64_t{1} << 31), op,
          "cuDNN takes tensors of fewer than 2^31 elements (input ", g.N * g.C * g.H * g.W, ", output ",
          g.N * g.K * P * Q, "); DMIX_CUDA_CONV=handwritten takes them");
    try {
      check_cudnn(cudnnCreateTensorDescriptor(&x), "cudnnCreateTensorDescriptor");
      check_cudnn(cudnnCreateTensorDescriptor(&y), "cudnnCreateTensorDescriptor");
      check_cudnn(cudnnCreateFilterDescriptor(&w), "cudnnCreateFilterDescriptor");
      check_cudnn(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor");
      check_cudnn(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, type, to_int(g.N, op, "N"), to_int(g.C, op, "C"),
                                             to_int(g.H, op, "H"), to_int(g.W, op, "W")),
                  "cudnnSetTensor4dDescriptor (input)");
      check_cudnn(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, type, to_int(g.N, op, "N"), to_int(g.K, op, "K"),
                                             to_int(P, op, "P"), to_int(Q, op, "Q")),
                  "cudnnSetTensor4dDescriptor (output)");
      check_cudnn(cudnnSetFilter4dDescriptor(w, type, CUDNN_TENSOR_NCHW, to_int(g.K, op, "K"),
                                             to_int(g.C / g.groups, op, "C/groups"), to_int(g.R, op, "R"),
                                             to_int(g.S, op, "S")),
                  "cudnnSetFilter4dDescriptor");
      check_cudnn(cudnnSetConvolution2dDescriptor(conv, to_int(g.pad_h, op, "pad_h"), to_int(g.pad_w, op, "pad_w"),
                                                  to_int(g.stride_h, op, "stride_h"),
                                                  to_int(g.stride_w, op, "stride_w"),
                                                  to_int(g.dilation_h, op, "dilation_h"),
                                                  to_int(g.dilation_w, op, "dilation_w"), CUDNN_CROSS_CORRELATION,
                                                  type),
                  "cudnnSetConvolution2dDescriptor");
      check_cudnn(cudnnSetConvolutionGroupCount(conv, to_int(g.groups, op, "groups")), "cudnnSetConvolutionGroupCount");
      check_cudnn(cudnnSetConvolutionMathType(conv, math), "cudnnSetConvolutionMathType");
      // cuDNN's idea of the output size must be ours (Conv2dGeometry::out_h/out_w).
      int n = 0, k = 0, p = 0, q = 0;
      check_cudnn(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &k, &p, &q),
                  "cudnnGetConvolution2dForwardOutputDim");
      check(n == g.N && k == g.K && p == P && q == Q, op, "cuDNN computes output (", n, ", ", k, ", ", p, ", ", q,
            "), dmix (", g.N, ", ", g.K, ", ", P, ", ", Q, ")");
    } catch (...) {
      destroy();
      throw;
    }
  }
  ~Descriptors() { destroy(); }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;

 private:
  void destroy() {
    // Destroying cannot fail for a descriptor that was created; nothing to report.
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
    conv = nullptr, w = nullptr, y = nullptr, x = nullptr;
  }
};

// ---- the algorithm cache -------------------------------------------------------------------

bool prefer_deterministic() {
  static const bool on = [] {
    const char* env = std::getenv("DMIX_CUDNN_DETERMINISTIC");
    const std::string text = env ? env : "";
    check(text.empty() || text == "0" || text == "1", "conv2d",
          "environment variable DMIX_CUDNN_DETERMINISTIC must be 0 or 1, got '", text, "'");
    return text != "0";
  }();
  return on;
}

// The largest of 16, 8, 4 bytes dividing every operand's address: the graph API's
// vectorised kernels need to know it, so it is part of the key.
int64_t pointer_alignment(const void* a, const void* b, const void* c) {
  const uintptr_t bits =
      reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b) | reinterpret_cast<uintptr_t>(c);
  int64_t alignment = 16;
  while (alignment > 4 && bits % static_cast<uintptr_t>(alignment) != 0) alignment /= 2;
  return alignment;
}

using Key = std::array<int64_t, 21>;

Key make_key(Pass pass, const Conv2dGeometry& g, cudnnDataType_t type, int device, int64_t alignment) {
  return {static_cast<int64_t>(pass), g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.stride_h, g.stride_w, g.pad_h, g.pad_w,
          g.dilation_h, g.dilation_w, g.groups, static_cast<int64_t>(type), device, allow_tf32() ? 1 : 0,
          static_cast<int64_t>(cudnn_api()), prefer_deterministic() ? 1 : 0, alignment};
}

struct Choice {
  int algo = 0;
  size_t workspace = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  bool deterministic = true;
  float ms = 0;  // cuDNN's timing in Find
};

// A pass of one convolution as it is run again and again: its descriptors, with the
// math type the chosen legacy algorithm runs with already set, and the algorithm, or
// the graph-API plan that was faster. Only read once cached, so threads may share it.
struct Plan {
  std::unique_ptr<Descriptors> d;
  Choice choice;                          // the legacy algorithm, when graph is null
  std::unique_ptr<CudnnGraphPlan> graph;  // the graph-API plan, when it won
  size_t workspace() const { return graph ? graph->workspace_bytes() : choice.workspace; }
};

std::mutex cache_mutex;
std::map<Key, Plan>& cache() {
  static std::map<Key, Plan> m;
  return m;
}

bool verbose() {
  static const bool on = [] {
    const char* env = std::getenv("DMIX_CUDNN_VERBOSE");
    return env && std::string(env) == "1";
  }();
  return on;
}

// What one timed algorithm reported, in a form common to the three passes.
struct Timed {
  int algo;
  cudnnStatus_t status;
  float time;
  size_t memory;
  cudnnDeterminism_t determinism;
  cudnnMathType_t math;
};

template <class Perf>
std::vector<Timed> timed(const std::vector<Perf>& perf, int returned) {
  std::vector<Timed> out;
  for (int i = 0; i < returned; ++i)
    out.push_back({static_cast<int>(perf[i].algo), perf[i].status, perf[i].time, perf[i].memory,
                   perf[i].determinism, perf[i].mathType});
  return out;
}

// The fastest usable legacy result (cuDNN lists them fastest first): deterministic if
// any works and determinism is preferred; none if nothing is usable. In strict fp32
// only FMA kernels count; TF32 tensor-core kernels never do.
std::optional<Choice> pick(const std::vector<Timed>& results, size_t workspace_given, bool strict) {
  auto usable = [&](const Timed& t, bool need_deterministic) {
    if (t.status != CUDNN_STATUS_SUCCESS || t.memory > workspace_given) return false;
    if (need_deterministic && t.determinism != CUDNN_DETERMINISTIC) return false;
    if (strict && (t.math == CUDNN_TENSOR_OP_MATH || t.math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)) return false;
    return true;
  };
  for (bool need_deterministic : {prefer_deterministic(), false})
    for (const Timed& t : results)
      if (usable(t, need_deterministic))
        return Choice{t.algo, t.memory, t.math, t.determinism == CUDNN_DETERMINISTIC, t.time};
  return std::nullopt;
}

[[noreturn]] void no_algorithm(Pass pass, const Conv2dGeometry& g, const char* op, const std::string& tried) {
  fail(op, "cuDNN (API: ", cudnn_api_name(cudnn_api()), ") has no usable ", conv_pass_name(pass),
       " algorithm for input (", g.N, ", ", g.C, ", ", g.H, ", ", g.W, "), weight (", g.K, ", ", g.C / g.groups, ", ",
       g.R, ", ", g.S, "), stride (", g.stride_h, ", ", g.stride_w, "), padding (", g.pad_h, ", ", g.pad_w,
       "), dilation (", g.dilation_h, ", ", g.dilation_w, "), groups ", g.groups, " within a workspace of ",
       cudnn_workspace_limit(), " bytes (DMIX_CUDNN_WORKSPACE_MB); tried:", tried,
       ". DMIX_CUDA_CONV=handwritten avoids cuDNN");
}

std::string describe(const std::vector<Timed>& results) {
  std::ostringstream os;
  for (const Timed& t : results)
    os << " [algo " << t.algo << ": " << cudnnGetErrorString(t.status) << ", workspace " << t.memory << " B, math "
       << static_cast<int>(t.math) << "]";
  return os.str();
}

// Milliseconds per run of `run` on the device's stream: one warm-up run (which also
// surfaces a failing launch), then the mean of three.
template <class Run>
float time_ms(int device, Run&& run) {
  run();
  cudaEvent_t start = nullptr, stop = nullptr;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  const cudaError_t created = cudaEventCreate(&stop);
  if (created != cudaSuccess) cudaEventDestroy(start);
  check_cuda(created, "cudaEventCreate");
  float ms = 0;
  try {
    check_cuda(cudaEventRecord(start, stream(device)), "cudaEventRecord");
    for (int i = 0; i < 3; ++i) run();
    check_cuda(cudaEventRecord(stop, stream(device)), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  } catch (...) {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    throw;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / 3;
}

// The workspace for timing: the most any algorithm of the pass asks within the limit
// (sizes[] from cudnnGet*WorkspaceSize), or less if the device cannot spare it.
DeviceScratch timing_workspace(const std::vector<size_t>& sizes, int device) {
  size_t want = 0;
  for (size_t s : sizes)
    if (s <= cudnn_workspace_limit()) want = std::max(want, s);
  // Fall back to ever smaller workspaces: the algorithms that then do not fit are skipped.
  while (true) {
    try {
      return DeviceScratch(want, device);
    } catch (const Error&) {
      if (want == 0) throw;
      size_t smaller = 0;
      for (size_t s : sizes)
        if (s < want) smaller = std::max(smaller, s);
      want = smaller;
    }
  }
}

// Runs `make` under the cache lock the first time `key` is seen. Map nodes never move,
// so the reference stays valid.
template <class Make>
const Plan& cached_plan(const Key& key, Make&& make) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto it = cache().find(key);
  if (it != cache().end()) return it->second;
  return cache().emplace(key, make()).first->second;
}

// The math type a chosen algorithm runs with: strict fp32 stays on FMA whatever the
// timing run reported; otherwise the algorithm's own (as cuDNN asks since 7.4).
template <class T>
void set_run_math(const Descriptors& d, const Choice& c) {
  check_cudnn(cudnnSetConvolutionMathType(d.conv, strict_fp32<T>() ? CUDNN_FMA_MATH : c.math),
              "cudnnSetConvolutionMathType");
}

void print_shape(Pass pass, const Conv2dGeometry& g) {
  std::fprintf(stderr,
               "dmix cuDNN %s: input (%lld, %lld, %lld, %lld), weight (%lld, %lld, %lld, %lld), stride (%lld, %lld), "
               "padding (%lld, %lld), dilation (%lld, %lld), groups %lld, API %s\n",
               conv_pass_name(pass), (long long)g.N, (long long)g.C, (long long)g.H, (long long)g.W, (long long)g.K,
               (long long)(g.C / g.groups), (long long)g.R, (long long)g.S, (long long)g.stride_h,
               (long long)g.stride_w, (long long)g.pad_h, (long long)g.pad_w, (long long)g.dilation_h,
               (long long)g.dilation_w, (long long)g.groups, cudnn_api_name(cudnn_api()));
}

void print_legacy(const std::vector<Timed>& results, const std::optional<Choice>& picked) {
  for (const Timed& t : results)
    std::fprintf(stderr, "  legacy algo %d: %s, %.4f ms (cudnnFind), workspace %zu B, %s, math %d%s\n", t.algo,
                 cudnnGetErrorString(t.status), t.time, t.memory,
                 t.determinism == CUDNN_DETERMINISTIC ? "deterministic" : "non-deterministic", static_cast<int>(t.math),
                 picked && t.algo == picked->algo && t.math == picked->math && t.status == CUDNN_STATUS_SUCCESS
                     ? "  <- legacy pick"
                     : "");
}

// ---- the three passes ----------------------------------------------------------------------
// Each pass computes an output C from inputs A and B, and its cuDNN functions take the
// three (descriptor, pointer) pairs in that order:
//   forward          C = y  from A = x, B = w
//   backward data    C = gx from A = w, B = gy
//   backward filter  C = gw from A = x, B = gy
// PassApi names a pass's functions: the workspace size of an algorithm, how many
// algorithms Find reports at most, Find (time them all) and the run itself.
template <Pass P, class PerfT, int kCount, auto WorkspaceSize, auto MaxCount, auto Find, auto Run>
struct PassApi {
  static constexpr Pass kPass = P;
  using Perf = PerfT;
  using Algo = decltype(PerfT::algo);
  static constexpr int kAlgoCount = kCount;
  static constexpr auto workspace_size = WorkspaceSize;
  static constexpr auto max_count = MaxCount;
  static constexpr auto find = Find;
  static constexpr auto run = Run;
};
using ForwardApi = PassApi<Pass::Forward, cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                           cudnnGetConvolutionForwardWorkspaceSize, cudnnGetConvolutionForwardAlgorithmMaxCount,
                           cudnnFindConvolutionForwardAlgorithmEx, cudnnConvolutionForward>;
using BackwardDataApi =
    PassApi<Pass::BackwardData, cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
            cudnnGetConvolutionBackwardDataWorkspaceSize, cudnnGetConvolutionBackwardDataAlgorithmMaxCount,
            cudnnFindConvolutionBackwardDataAlgorithmEx, cudnnConvolutionBackwardData>;
using BackwardFilterApi =
    PassApi<Pass::BackwardFilter, cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
            cudnnGetConvolutionBackwardFilterWorkspaceSize, cudnnGetConvolutionBackwardFilterAlgorithmMaxCount,
            cudnnFindConvolutionBackwardFilterAlgorithmEx, cudnnConvolutionBackwardFilter>;

// The names of a pass's MaxCount, Find and run functions, for error messages.
struct ApiNames {
  const char* max_count;
  const char* find;
  const char* run;
};
ApiNames api_names(Pass p) {
  switch (p) {
    case Pass::Forward:
      return {"cudnnGetConvolutionForwardAlgorithmMaxCount", "cudnnFindConvolutionForwardAlgorithmEx",
              "cudnnConvolutionForward"};
    case Pass::BackwardData:
      return {"cudnnGetConvolutionBackwardDataAlgorithmMaxCount", "cudnnFindConvolutionBackwardDataAlgorithmEx",
              "cudnnConvolutionBackwardData"};
    default:
      return {"cudnnGetConvolutionBackwardFilterAlgorithmMaxCount", "cudnnFindConvolutionBackwardFilterAlgorithmEx",
              "cudnnConvolutionBackwardFilter"};
  }
}

// What a call holds while it runs: the device's handle and the device made current.
struct Call {
  const Conv2dGeometry& g;
  int device;
  const char* op;
  cudnnHandle_t handle;
  DeviceGuard guard;
  Call(const Conv2dGeometry& geometry, int device_index, const char* op_name)
      : g(geometry), device(device_index), op(op_name), handle(cudnn_handle(device_index)), guard(device_index) {}
};

// c = pass(a, b) by the legacy API with `choice`; `workspace` holds choice.workspace bytes.
template <class Api, class T, class Roles>
void run_legacy(const Call& call, const Descriptors& d, Roles roles, const Choice& choice, const T* a, const T* b,
                T* c, void* workspace) {
  const auto [desc_a, desc_b, desc_c] = roles(d);
  const T one = 1, zero = 0;
  check_cudnn(Api::run(call.handle, &one, desc_a, a, desc_b, b, d.conv, static_cast<typename Api::Algo>(choice.algo),
                       workspace, choice.workspace, &zero, desc_c, c),
              api_names(Api::kPass).run);
}

// The legacy API's pick for the pass: cudnnFind times every algorithm on the call's
// buffers. None when no algorithm is usable; `tried` gets what Find reported.
template <class Api, class T, class Roles>
std::optional<Choice> find_legacy(const Call& call, const Descriptors& d, Roles roles, const T* a, const T* b, T* c,
                                  std::string& tried) {
  const auto [desc_a, desc_b, desc_c] = roles(d);
  std::vector<size_t> sizes;
  for (int algo = 0; algo < Api::kAlgoCount; ++algo) {
    size_t bytes = 0;
    if (Api::workspace_size(call.handle, desc_a, desc_b, d.conv, desc_c, static_cast<typename Api::Algo>(algo),
                            &bytes) == CUDNN_STATUS_SUCCESS)
      sizes.push_back(bytes);
  }
  DeviceScratch workspace = timing_workspace(sizes, call.device);
  int max_count = 0, returned = 0;
  check_cudnn(Api::max_count(call.handle, &max_count), api_names(Api::kPass).max_count);
  std::vector<typename Api::Perf> perf(static_cast<size_t>(std::max(max_count, 1)));
  check_cudnn(Api::find(call.handle, desc_a, a, desc_b, b, d.conv, desc_c, c, max_count, &returned, perf.data(),
                        workspace.get(), workspace.bytes()),
              api_names(Api::kPass).find);
  const std::vector<Timed> results = timed(perf, returned);
  const std::optional<Choice> choice = pick(results, workspace.bytes(), strict_fp32<T>());
  if (verbose()) print_legacy(results, choice);
  tried += describe(results);
  return choice;
}

struct TimedPlan {
  std::unique_ptr<CudnnGraphPlan> plan;
  float ms;
};

// Heuristics rank well: the fastest plan is nearly always among the first few, and
// timing them all would cost seconds per shape for large convolutions.
constexpr size_t kMaxTimedGraphPlans = 10;

// The graph API's plans for the pass (f32), each timed on the call's buffers. Plans that
// fail to run are left out; `tried` gets one entry for every plan left out.
std::vector<TimedPlan> time_graph_plans(const Call& call, Pass pass, const float* a, const float* b, float* c,
                                        std::string& tried) {
  std::vector<std::string> skipped;
  std::vector<std::unique_ptr<CudnnGraphPlan>> plans =
      cudnn_graph_plans(pass, call.g, pointer_alignment(a, b, c), strict_fp32<float>(), call.handle,
                        cudnn_workspace_limit(), kMaxTimedGraphPlans, &skipped);
  std::vector<size_t> sizes;
  for (const auto& plan : plans) sizes.push_back(plan->workspace_bytes());
  DeviceScratch workspace = timing_workspace(sizes, call.device);
  std::vector<TimedPlan> out;
  for (auto& plan : plans) {
    const std::string engine = "engine " + std::to_string(plan->engine());
    if (plan->workspace_bytes() > workspace.bytes()) {
      skipped.push_back(engine + ": workspace " + std::to_string(plan->workspace_bytes()) + " B not available");
      continue;
    }
    try {
      const float ms = time_ms(call.device, [&] { plan->execute(call.handle, a, b, c, workspace.get()); });
      if (verbose())
        std::fprintf(stderr, "  graph %s: %.4f ms, workspace %zu B, %s\n", engine.c_str(), ms, plan->workspace_bytes(),
                     plan->deterministic() ? "deterministic" : "non-deterministic");
      out.push_back({std::move(plan), ms});
    } catch (const std::exception& e) {
      skipped.push_back(engine + ": fails to run: " + e.what());
    }
  }
  for (const std::string& line : skipped) {
    if (verbose()) std::fprintf(stderr, "  graph %s\n", line.c_str());
    tried += " [graph " + line + "]";
  }
  return out;
}

// Is a candidate (deterministic `det`, `ms` per run) better than the best so far?
bool better(bool det, float ms, bool best_det, float best_ms) {
  if (prefer_deterministic() && det != best_det) return det;
  return ms < best_ms;
}

// Runs pass Api: c = pass(a, b) with the cached plan, made the first time its key is
// seen by timing the candidates of the API choice on the call's own buffers (see the
// top of this file). `roles` picks the descriptors of a, b and c out of the
// convolution's four. Returns the plan's descriptors.
template <class Api, class T, class Roles>
const Descriptors& run_pass(const Call& call, Roles roles, const T* a, const T* b, T* c) {
  const Key key = make_key(Api::kPass, call.g, data_type<T>(), call.device, pointer_alignment(a, b, c));
  const Plan& plan = cached_plan(key, [&] {
    Plan p;
    p.d = std::make_unique<Descriptors>(call.g, data_type<T>(), search_math<T>(), call.op);
    const Descriptors& d = *p.d;
    constexpr bool f32 = std::is_same_v<T, float>;
    const CudnnApi api = cudnn_api();
    if (verbose()) print_shape(Api::kPass, call.g);
    std::string tried;
    std::optional<Choice> legacy;
    if (!f32 || api != CudnnApi::Graph) legacy = find_legacy<Api>(call, d, roles, a, b, c, tried);
    std::vector<TimedPlan> graph;
    if constexpr (f32) {
      if (api != CudnnApi::Legacy) {
        try {
          graph = time_graph_plans(call, Api::kPass, a, b, c, tried);
        } catch (const std::exception& e) {
          // In auto mode the graph API only adds candidates: whatever goes wrong there,
          // the legacy pick still serves.
          if (api == CudnnApi::Graph) throw;
          tried += std::string(" [graph API: ") + e.what() + "]";
          if (verbose()) std::fprintf(stderr, "  graph API: %s\n", e.what());
        }
      }
    }
    // One clock for both APIs: when graph plans compete, the legacy pick is timed the
    // way they were rather than by cudnnFind's own measurement.
    float best_ms = 0;
    bool best_det = false;
    int best = -2;  // -2: none, -1: the legacy pick, i >= 0: graph[i]
    if (legacy) {
      set_run_math<T>(d, *legacy);
      best_ms = legacy->ms;
      if (!graph.empty()) {
        DeviceScratch workspace(legacy->workspace, call.device);
        best_ms = time_ms(call.device, [&] { run_legacy<Api>(call, d, roles, *legacy, a, b, c, workspace.get()); });
      }
      best_det = legacy->deterministic;
      best = -1;
    }
    for (size_t i = 0; i < graph.size(); ++i)
      if (best == -2 || better(graph[i].plan->deterministic(), graph[i].ms, best_det, best_ms)) {
        best = static_cast<int>(i);
        best_ms = graph[i].ms;
        best_det = graph[i].plan->deterministic();
      }
    if (best == -2) no_algorithm(Api::kPass, call.g, call.op, tried);
    if (best >= 0) {
      p.graph = std::move(graph[static_cast<size_t>(best)].plan);
    } else {
      p.choice = *legacy;
    }
    if (verbose())
      std::fprintf(stderr, "  chosen: %s %d, %.4f ms\n", p.graph ? "graph engine" : "legacy algo",
                   p.graph ? static_cast<int>(p.graph->engine()) : p.choice.algo, best_ms);
    return p;
  });
  const Descriptors& d = *plan.d;
  DeviceScratch workspace(plan.workspace(), call.device);
  if (plan.graph) {
    plan.graph->execute(call.handle, a, b, c, workspace.get());
  } else {
    run_legacy<Api>(call, d, roles, plan.choice, a, b, c, workspace.get());
  }
  return d;
}

// The descriptors of each pass's a, b and c (see PassApi).
auto forward_roles = [](const Descriptors& d) { return std::make_tuple(d.x, d.w, d.y); };
auto backward_data_roles = [](const Descriptors& d) { return std::make_tuple(d.w, d.y, d.x); };
auto backward_filter_roles = [](const Descriptors& d) { return std::make_tuple(d.x, d.y, d.w); };

}  // namespace

template <class T>
void conv2d_forward_cudnn(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y, int device) {
  const char* op = "conv2d_forward_cudnn";
  check_device(device, op);
  if (g.N == 0) return;
  const Call call(g, device, op);
  const Descriptors& d = run_pass<ForwardApi>(call, forward_roles, x, w, y);
  if (bias) {
    const T one = 1;
    cudnnTensorDescriptor_t bias_desc = nullptr;
    check_cudnn(cudnnCreateTensorDescriptor(&bias_desc), "cudnnCreateTensorDescriptor (bias)");
    const cudnnStatus_t set =
        cudnnSetTensor4dDescriptor(bias_desc, CUDNN_TENSOR_NCHW, data_type<T>(), 1, static_cast<int>(g.K), 1, 1);
    const cudnnStatus_t added = set == CUDNN_STATUS_SUCCESS
                                    ? cudnnAddTensor(call.handle, &one, bias_desc, bias, &one, d.y, y)
                                    : set;
    cudnnDestroyTensorDescriptor(bias_desc);
    check_cudnn(added, "cudnnAddTensor (bias)");
  }
}

template <class T>
void conv2d_backward_input_cudnn(const Conv2dGeometry& g, const T* gy, const T* w, T* gx, int device) {
  const char* op = "conv2d_backward_input_cudnn";
  check_device(device, op);
  if (g.N == 0) return;
  const Call call(g, device, op);
  run_pass<BackwardDataApi>(call, backward_data_roles, w, gy, gx);
}

template <class T>
void conv2d_backward_weight_cudnn(const Conv2dGeometry& g, const T* gy, const T* x, T* gw, int device) {
  const char* op = "conv2d_backward_weight_cudnn";
  check_device(device, op);
  if (g.N == 0) {
    memset_zero(gw, static_cast<size_t>(g.K * (g.C / g.groups) * g.R * g.S) * sizeof(T), device);
    return;
  }
  const Call call(g, device, op);
  run_pass<BackwardFilterApi>(call, backward_filter_roles, x, gy, gw);
}

size_t cudnn_cached_algorithms() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return cache().size();
}

size_t cudnn_cached_graph_plans() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  size_t n = 0;
  for (const auto& entry : cache()) n += entry.second.graph ? 1 : 0;
  return n;
}

#else  // no cuDNN in this build

bool cudnn_available() { return false; }
size_t cudnn_cached_algorithms() { return 0; }
size_t cudnn_cached_graph_plans() { return 0; }

namespace {
[[noreturn]] void no_cudnn(const char* op) {
  fail(op, "dmix was built without cuDNN (no cudnn.h / libcudnn found at configure time); "
           "the handwritten kernels (DMIX_CUDA_CONV=handwritten, the default in this build) run instead");
}
}  // namespace

template <class T>
void conv2d_forward_cudnn(const Conv2dGeometry&, const T*, const T*, const T*, T*, int) {
  no_cudnn("conv2d_forward_cudnn");
}
template <class T>
void conv2d_backward_input_cudnn(const Conv2dGeometry&, const T*, const T*, T*, int) {
  no_cudnn("conv2d_backward_input_cudnn");
}
template <class T>
void conv2d_backward_weight_cudnn(const Conv2dGeometry&, const T*, const T*, T*, int) {
  no_cudnn("conv2d_backward_weight_cudnn");
}

#endif

template void conv2d_forward_cudnn<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*, int);
template void conv2d_forward_cudnn<double>(const Conv2dGeometry&, const double*, const double*, const double*, double*,
                                           int);
template void conv2d_backward_input_cudnn<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_input_cudnn<double>(const Conv2dGeometry&, const double*, const double*, double*, int);
template void conv2d_backward_weight_cudnn<float>(const Conv2dGeometry&, const float*, const float*, float*, int);
template void conv2d_backward_weight_cudnn<double>(const Conv2dGeometry&, const double*, const double*, double*, int);

}  // namespace dmix::kernels::cuda
