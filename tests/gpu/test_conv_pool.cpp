// The CUDA paths of conv2d (cuDNN, and the handwritten implicit-GEMM and direct kernels)
// against the CPU: forward, backward (gradient of sum(out * r)) and double backward
// (gradient of <grad, w>, with create_graph), in f32 and in f64, on shapes with odd
// sizes, stride 2, padding, dilation 2, groups 2 and depthwise. Every
// convolution case runs once per GPU backend (cuDNN where the build has it, then
// handwritten); the kernel-level cases also run each handwritten algorithm on every shape.
// The pooling kernels (max_pool2d, avg_pool2d, adaptive_avg_pool2d) are held to the CPU's
// bit for bit, arg max indices included; the pooling ops' forward, backward and double
// backward on the GPU are the op table's rows (test_op_table.cpp).
//
// Tolerance. The reference is the CPU's f64 answer. A GPU sums in another order than the
// CPU, which changes rounding but not its size, while an indexing or launch-size bug
// moves results by O(1) of their scale. So, in the max norm, with e_cpu the error of the
// CPU's own f32 result against the reference and scale the largest |reference|:
//     handwritten            f32: max(8 e_cpu, 64 FLT_EPSILON scale)
//                            f64: max(8 e_cpu DBL_EPSILON / FLT_EPSILON, 64 DBL_EPSILON scale)
//     cuDNN                  f32: max(8 e_cpu, 1e-4 scale),  f64: max(..., 1e-12 scale)
// cuDNN may choose FFT or Winograd algorithms, whose rounding is up to ~100 times that
// of a direct sum; 1e-4 of the scale still fails any indexing error. With TF32 allowed
// (a separate case), cuDNN gets 1e-2 of the scale. The pooling kernels claim bit-for-bit
// agreement with the CPU kernels (kernels/cuda/pool2d.h); a kernel-level case checks
// exactly that. Every comparison MESSAGEs its max abs and max rel errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pool.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/pool2d.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/pool2d.h"
#include "kernels/cuda/runtime.h"
#include "tests/engine/ops/conv_options.h"
#include "tests/gpu/gpu_compare.h"
#include "tests/gpu/gpu_test_util.h"

using namespace dmix;
using dmix::gpu_test::has_gpu;
using dmix::testing::conv_options;
using namespace dmix::gpu_test;
namespace cu = dmix::kernels::cuda;

namespace {

const Device kGpu = Device::cuda(0);

// ---- tolerances ----------------------------------------------------------------------------

enum class Accuracy { Direct, Vendor, VendorTf32 };

struct Allowed {
  double f32, f64;
};

Allowed allowed(Accuracy a, double e_cpu, double scale) {
  const double f32 = std::max(8 * e_cpu, 64 * FLT_EPSILON * scale);
  const double f64 = std::max(8 * e_cpu * (DBL_EPSILON / FLT_EPSILON), 64 * DBL_EPSILON * scale);
  switch (a) {
    case Accuracy::Direct: return {f32, f64};
    case Accuracy::Vendor: return {std::max(f32, 1e-4 * scale), std::max(f64, 1e-12 * scale)};
    case Accuracy::VendorTf32: return {std::max(f32, 1e-2 * scale), std::max(f64, 1e-12 * scale)};
  }
  return {f32, f64};
}

// ---- op cases: forward, backward, double backward -------------------------------------------

struct Input {
  Shape shape;
  std::vector<double> values;
};

struct Case {
  std::string name;
  std::vector<Input> inputs;
  // The op's outputs from inputs already on the run's device and dtype.
  std::function<TensorList(const TensorList&)> fn;
};

struct Entry {
  std::string name;
  std::vector<double> values;
};
using Result = std::vector<Entry>;

Tensor seed_tensor(const Shape& shape, uint32_t seed, DType dtype, Device device) {
  return Tensor::from_vector(uniform(shape_numel(shape), seed), shape).to(dtype).to(device);
}

Result run(const Case& c, DType dtype, Device device) {
  TensorList inputs;
  for (const Input& spec : c.inputs) {
    Tensor t = Tensor::from_vector(spec.values, spec.shape).to(dtype).to(device).detach();
    t.set_requires_grad(true);
    inputs.push_back(t);
  }
  const TensorList outputs = c.fn(inputs);
  Result r;
  Tensor loss;
  for (size_t j = 0; j < outputs.size(); ++j) {
    const Tensor& o = outputs[j];
    REQUIRE(o.device() == device);
    r.push_back({"forward output " + std::to_string(j), host_values(o)});
    const Tensor term = sum(mul(o, seed_tensor(o.shape(), 1000 + static_cast<uint32_t>(j), dtype, device)));
    loss = loss.defined() ? add(loss, term) : term;
  }
  const TensorList grads = autograd::grad({loss}, inputs, {}, /*create_graph=*/true, /*allow_unused=*/true);
  Tensor inner;
  for (size_t i = 0; i < grads.size(); ++i) {
    REQUIRE(grads[i].defined());
    r.push_back({"grad of input " + std::to_string(i), host_values(grads[i])});
    if (!grads[i].requires_grad()) continue;
    const Tensor term =
        sum(mul(grads[i], seed_tensor(grads[i].shape(), 2000 + static_cast<uint32_t>(i), dtype, device)));
    inner = inner.defined() ? add(inner, term) : term;
  }
  TensorList second;
  if (inner.defined()) second = autograd::grad({inner}, inputs, {}, /*create_graph=*/false, /*allow_unused=*/true);
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<double> v = (second.empty() || !second[i].defined())
                                ? std::vector<double>(static_cast<size_t>(inputs[i].numel()), 0.0)
                                : host_values(second[i]);
    r.push_back({"double grad of input " + std::to_string(i), std::move(v)});
  }
  return r;
}

// GPU f32 and f64 results against the CPU's; `label` names the GPU path.
void compare(const std::string& label, Accuracy accuracy, const Case& c, const Result& cpu64, const Result& cpu32,
             const Result& gpu32, const Result& gpu64) {
  REQUIRE(cpu32.size() == cpu64.size());
  REQUIRE(gpu32.size() == cpu64.size());
  REQUIRE(gpu64.size() == cpu64.size());
  for (size_t k = 0; k < cpu64.size(); ++k) {
    const std::vector<double>& ref = cpu64[k].values;
    const std::string what = c.name + " [" + label + "] | " + cpu64[k].name;
    CAPTURE(what);
    REQUIRE(gpu32[k].values.size() == ref.size());
    REQUIRE(gpu64[k].values.size() == ref.size());
    const double scale = max_abs(ref);
    const double e_cpu = max_abs_diff(cpu32[k].values, ref);
    const double e_gpu = max_abs_diff(gpu32[k].values, ref);
    const double e_gpu64 = max_abs_diff(gpu64[k].values, ref);
    const Allowed a = allowed(accuracy, e_cpu, scale);
    std::ostringstream os;
    os << what << ": f32 gpu-cpu max abs " << max_abs_diff(gpu32[k].values, cpu32[k].values) << ", max rel "
       << max_rel_diff(gpu32[k].values, cpu32[k].values) << "; error vs f64 reference: gpu " << e_gpu << ", cpu "
       << e_cpu << ", allowed " << a.f32 << " (scale " << scale << "); f64 gpu-cpu max abs " << e_gpu64 << ", max rel "
       << max_rel_diff(gpu64[k].values, ref) << ", allowed " << a.f64;
    MESSAGE(os.str());
    CHECK(e_gpu <= a.f32);
    CHECK(e_gpu64 <= a.f64);
  }
}

// Restores the process-wide convolution backend, cuDNN API and TF32 switch when a test ends.
struct BackendRestorer {
  cu::ConvBackend backend = cu::conv_backend();
  cu::CudnnApi api = cu::cudnn_api();
  bool tf32 = cu::allow_tf32();
  ~BackendRestorer() {
    cu::set_conv_backend(backend);
    cu::set_cudnn_api(api);
    cu::set_allow_tf32(tf32);
  }
};

std::vector<cu::ConvBackend> gpu_backends() {
  std::vector<cu::ConvBackend> b;
  if (cu::cudnn_available()) b.push_back(cu::ConvBackend::cuDNN);
  b.push_back(cu::ConvBackend::Handwritten);
  return b;
}

// A convolution case: on the CPU once, on the GPU once per backend.
void check_conv_case(const Case& c) {
  INFO("case: " << c.name);
  const BackendRestorer restore;
  const Result cpu64 = run(c, DType::f64, Device::cpu());
  const Result cpu32 = run(c, DType::f32, Device::cpu());
  if (!cu::cudnn_available()) MESSAGE("this build has no cuDNN: only the handwritten convolution is checked");
  for (cu::ConvBackend backend : gpu_backends()) {
    cu::set_conv_backend(backend);
    const Result gpu32 = run(c, DType::f32, kGpu);
    const Result gpu64 = run(c, DType::f64, kGpu);
    compare(cu::conv_backend_name(backend), backend == cu::ConvBackend::cuDNN ? Accuracy::Vendor : Accuracy::Direct, c,
            cpu64, cpu32, gpu32, gpu64);
  }
}

// ---- convolution shapes --------------------------------------------------------------------

struct ConvShape {
  std::string name;
  Shape x;  // (N, C, H, W)
  Shape w;  // (K, C/groups, R, S)
  Conv2dOptions opt;
  bool bias = false;
};

// Odd sizes, stride 2, dilation 2, groups 2 and 3, depthwise (with a channel multiplier),
// every tile width of the implicit GEMM (16, 32, 64 columns), and a batch long enough to
// split backward_weight into several chunks.
std::vector<ConvShape> conv_shapes() {
  return {
      {"3x3 pad 1, odd sizes, bias", {2, 3, 7, 9}, {5, 3, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1}, 1), true},
      {"3x3 stride 2 pad 1", {2, 4, 9, 8}, {6, 4, 3, 3}, conv_options({2, 2}, {1, 1}, {1, 1}, 1)},
      {"3x2 dilation 2, stride (1,2), pad (2,1)",
       {1, 5, 11, 10},
       {7, 5, 3, 2},
       conv_options({1, 2}, {2, 1}, {2, 2}, 1)},
      {"groups 2, bias", {2, 8, 6, 7}, {6, 4, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1}, 2), true},
      {"depthwise 3x3, bias", {2, 6, 7, 7}, {6, 1, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1}, 6), true},
      {"depthwise x2 stride 2", {1, 6, 8, 7}, {12, 1, 3, 3}, conv_options({2, 2}, {1, 1}, {1, 1}, 6)},
      {"depthwise dilation 2 (PC-DARTS dil_conv)", {2, 4, 9, 9}, {4, 1, 3, 3}, conv_options({1, 1}, {2, 2}, {2, 2}, 4)},
      {"1x1, 70 -> 67 channels", {3, 70, 5, 6}, {67, 70, 1, 1}, conv_options({1, 1}, {0, 0}, {1, 1}, 1)},
      {"3x3, 40 -> 30 channels", {2, 40, 6, 5}, {30, 40, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1}, 1), true},
      {"5x5 stride (3,2) pad 2", {2, 17, 13, 12}, {20, 17, 5, 5}, conv_options({3, 2}, {2, 2}, {1, 1}, 1)},
      {"groups 3, 2x4 kernel, stride (2,3), pad (0,1), dilation (3,2)",
       {2, 9, 10, 11},
       {12, 3, 2, 4},
       conv_options({2, 3}, {0, 1}, {3, 2}, 3)},
      {"3x3 over a longer batch (split backward_weight)",
       {9, 16, 17, 17},
       {16, 16, 3, 3},
       conv_options({1, 1}, {1, 1}, {1, 1}, 1)},
      {"kernel as large as the padded input", {2, 3, 4, 5}, {4, 3, 6, 7}, conv_options({1, 1}, {1, 1}, {1, 1}, 1)},
  };
}

Case conv_case(const ConvShape& s, uint32_t seed) {
  Case c;
  c.name = "conv2d " + s.name + ": x " + shape_str(s.x) + ", w " + shape_str(s.w);
  c.inputs = {{s.x, uniform(shape_numel(s.x), seed)}, {s.w, uniform(shape_numel(s.w), seed + 1)}};
  if (s.bias) c.inputs.push_back({{s.w[0]}, uniform(s.w[0], seed + 2)});
  const Conv2dOptions opt = s.opt;
  const bool has_bias = s.bias;
  c.fn = [opt, has_bias](const TensorList& in) {
    return TensorList{conv2d(in[0], in[1], has_bias ? in[2] : Tensor(), opt)};
  };
  return c;
}

kernels::cpu::Conv2dGeometry conv_geometry(const ConvShape& s) {
  kernels::cpu::Conv2dGeometry g;
  g.N = s.x[0], g.C = s.x[1], g.H = s.x[2], g.W = s.x[3];
  g.K = s.w[0], g.R = s.w[2], g.S = s.w[3];
  g.stride_h = s.opt.stride[0], g.stride_w = s.opt.stride[1];
  g.pad_h = s.opt.padding[0], g.pad_w = s.opt.padding[1];
  g.dilation_h = s.opt.dilation[0], g.dilation_w = s.opt.dilation[1];
  g.groups = s.opt.groups;
  return g;
}

// ---- pooling shapes ------------------------------------------------------------------------

struct PoolShape {
  std::string name;
  Shape x;
  Pool2dOptions opt;
};

// ceil_mode with a partial last window (odd sizes), overlapping windows (stride 1), a
// window wider than the stride with padding on both axes, and ResNet's and PyramidNet's
// pools (3x3 stride 2 pad 1; 2x2 stride 2 ceil_mode).
std::vector<PoolShape> pool_shapes() {
  return {
      {"3x3 stride 2 pad 1 ceil_mode", {2, 3, 7, 9}, Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true}},
      {"2x2 stride 2", {2, 2, 8, 8}, Pool2dOptions{{2, 2}, {0, 0}, {0, 0}, false}},
      {"2x2 stride 2 ceil_mode, odd sizes", {2, 3, 7, 7}, Pool2dOptions{{2, 2}, {2, 2}, {0, 0}, true}},
      {"3x2 stride 1 pad 1, overlapping", {1, 2, 10, 11}, Pool2dOptions{{3, 2}, {1, 1}, {1, 1}, false}},
      {"4x3 stride (3,2) pad (2,1) ceil_mode", {2, 3, 13, 6}, Pool2dOptions{{4, 3}, {3, 2}, {2, 1}, true}},
      {"5x5 stride 1 pad 2", {1, 2, 5, 5}, Pool2dOptions{{5, 5}, {1, 1}, {2, 2}, false}},
  };
}

// ---- kernel level: every GPU algorithm on every shape --------------------------------------

struct ConvPasses {
  std::vector<double> y, gx, gw;
};

// The three passes of one implementation on tensors of one dtype and device.
using ConvRunner = std::function<void(const kernels::cpu::Conv2dGeometry&, const Tensor& x, const Tensor& w,
                                      const Tensor& b, const Tensor& gy, Tensor& y, Tensor& gx, Tensor& gw)>;

// "cudnn" runs cuDNN with the API choice `api`; the other names are handwritten kernels.
template <class T>
ConvRunner gpu_runner(const std::string& algorithm, cu::CudnnApi api = cu::CudnnApi::Auto) {
  return [algorithm, api](const kernels::cpu::Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& b,
                          const Tensor& gy, Tensor& y, Tensor& gx, Tensor& gw) {
    const int d = 0;
    const T* bias = b.defined() ? b.data<T>() : nullptr;
    if (algorithm == "cudnn") {
      const BackendRestorer restore;
      cu::set_cudnn_api(api);
      cu::conv2d_forward_cudnn<T>(g, x.data<T>(), w.data<T>(), bias, y.data<T>(), d);
      cu::conv2d_backward_input_cudnn<T>(g, gy.data<T>(), w.data<T>(), gx.data<T>(), d);
      cu::conv2d_backward_weight_cudnn<T>(g, gy.data<T>(), x.data<T>(), gw.data<T>(), d);
    } else if (algorithm == "implicit_gemm") {
      cu::conv2d_forward_implicit_gemm<T>(g, x.data<T>(), w.data<T>(), bias, y.data<T>(), d);
      cu::conv2d_backward_input_implicit_gemm<T>(g, gy.data<T>(), w.data<T>(), gx.data<T>(), d);
      cu::conv2d_backward_weight_implicit_gemm<T>(g, gy.data<T>(), x.data<T>(), gw.data<T>(), d);
    } else {
      cu::conv2d_forward_direct<T>(g, x.data<T>(), w.data<T>(), bias, y.data<T>(), d);
      cu::conv2d_backward_input_direct<T>(g, gy.data<T>(), w.data<T>(), gx.data<T>(), d);
      cu::conv2d_backward_weight_direct<T>(g, gy.data<T>(), x.data<T>(), gw.data<T>(), d);
    }
  };
}

template <class T>
void cpu_runner(const kernels::cpu::Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& b,
                const Tensor& gy, Tensor& y, Tensor& gx, Tensor& gw) {
  kernels::cpu::conv2d_forward<T>(g, x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>());
  kernels::cpu::conv2d_backward_input<T>(g, gy.data<T>(), w.data<T>(), gx.data<T>());
  kernels::cpu::conv2d_backward_weight<T>(g, gy.data<T>(), x.data<T>(), gw.data<T>());
}

ConvPasses run_passes(const ConvShape& s, uint32_t seed, DType dtype, Device device, const ConvRunner& runner) {
  const kernels::cpu::Conv2dGeometry g = conv_geometry(s);
  const Shape y_shape{g.N, g.K, g.out_h(), g.out_w()};
  auto make = [&](const Shape& shape, uint32_t sd) {
    return Tensor::from_vector(uniform(shape_numel(shape), sd), shape).to(dtype).to(device);
  };
  const Tensor x = make(s.x, seed), w = make(s.w, seed + 1), gy = make(y_shape, seed + 3);
  const Tensor b = s.bias ? make({g.K}, seed + 2) : Tensor();
  // Outputs start as NaN, so an element a kernel forgets to write shows.
  auto nan_filled = [&](const Shape& shape) {
    return Tensor::from_vector(std::vector<double>(static_cast<size_t>(shape_numel(shape)), NAN), shape)
        .to(dtype)
        .to(device);
  };
  Tensor y = nan_filled(y_shape), gx = nan_filled(s.x), gw = nan_filled(s.w);
  runner(g, x, w, b, gy, y, gx, gw);
  return {host_values(y), host_values(gx), host_values(gw)};
}

void compare_passes(const std::string& what, Accuracy accuracy, const ConvPasses& ref, const ConvPasses& cpu32,
                    const ConvPasses& got32, const ConvPasses& got64) {
  const char* names[] = {"forward", "backward_input", "backward_weight"};
  const std::vector<double>* refs[] = {&ref.y, &ref.gx, &ref.gw};
  const std::vector<double>* cpus[] = {&cpu32.y, &cpu32.gx, &cpu32.gw};
  const std::vector<double>* g32[] = {&got32.y, &got32.gx, &got32.gw};
  const std::vector<double>* g64[] = {&got64.y, &got64.gx, &got64.gw};
  for (int p = 0; p < 3; ++p) {
    const std::string label = what + " | " + names[p];
    CAPTURE(label);
    const double scale = max_abs(*refs[p]);
    const double e_cpu = max_abs_diff(*cpus[p], *refs[p]);
    const double e32 = max_abs_diff(*g32[p], *refs[p]), e64 = max_abs_diff(*g64[p], *refs[p]);
    const Allowed a = allowed(accuracy, e_cpu, scale);
    MESSAGE(label << ": f32 max abs err " << e32 << ", max rel " << max_rel_diff(*g32[p], *refs[p]) << " (cpu f32 "
                  << e_cpu << ", allowed " << a.f32 << ", scale " << scale << "); f64 max abs err " << e64
                  << ", max rel " << max_rel_diff(*g64[p], *refs[p]) << " (allowed " << a.f64 << ")");
    CHECK(e32 <= a.f32);
    CHECK(e64 <= a.f64);
  }
}

}  // namespace

// ---- test cases ----------------------------------------------------------------------------

TEST_CASE("cuda conv2d: every GPU algorithm's three passes match the CPU kernels on every shape" *
          doctest::skip(!has_gpu())) {
  // cuDNN three ways: its legacy API alone, its graph API alone (f32; f64 runs on the
  // legacy API whatever the choice), and the default that times both.
  struct Algorithm {
    std::string name, kernels;
    cu::CudnnApi api;
  };
  std::vector<Algorithm> algorithms = {{"implicit_gemm", "implicit_gemm", cu::CudnnApi::Auto},
                                       {"direct", "direct", cu::CudnnApi::Auto}};
  if (cu::cudnn_available())
    algorithms.insert(algorithms.begin(), {{"cudnn legacy API", "cudnn", cu::CudnnApi::Legacy},
                                           {"cudnn graph API", "cudnn", cu::CudnnApi::Graph},
                                           {"cudnn auto", "cudnn", cu::CudnnApi::Auto}});
  uint32_t seed = 10;
  for (const ConvShape& s : conv_shapes()) {
    const ConvPasses ref = run_passes(s, seed, DType::f64, Device::cpu(), cpu_runner<double>);
    const ConvPasses cpu32 = run_passes(s, seed, DType::f32, Device::cpu(), cpu_runner<float>);
    for (const Algorithm& a : algorithms) {
      const ConvPasses got32 = run_passes(s, seed, DType::f32, kGpu, gpu_runner<float>(a.kernels, a.api));
      const ConvPasses got64 = run_passes(s, seed, DType::f64, kGpu, gpu_runner<double>(a.kernels, a.api));
      compare_passes("conv2d " + s.name + " [" + a.name + "]",
                     a.kernels == "cudnn" ? Accuracy::Vendor : Accuracy::Direct, ref, cpu32, got32, got64);
    }
    seed += 10;
  }
}

TEST_CASE("cuda conv2d: with the graph API chosen, every f32 pass runs a graph-API plan" *
          doctest::skip(!has_gpu() || !cu::cudnn_available())) {
  const BackendRestorer restore;
  cu::set_allow_tf32(false);
  const ConvShape s{"graph API, groups 2, stride (2,1)", {2, 6, 9, 10}, {8, 3, 3, 3},
                    conv_options({2, 1}, {1, 1}, {1, 1}, 2)};
  const size_t before = cu::cudnn_cached_graph_plans();
  const ConvPasses got = run_passes(s, 77, DType::f32, kGpu, gpu_runner<float>("cudnn", cu::CudnnApi::Graph));
  // A fresh shape: forward, backward data and backward filter each cached a graph plan.
  CHECK(cu::cudnn_cached_graph_plans() == before + 3);
  const ConvPasses ref = run_passes(s, 77, DType::f64, Device::cpu(), cpu_runner<double>);
  const ConvPasses cpu32 = run_passes(s, 77, DType::f32, Device::cpu(), cpu_runner<float>);
  const std::vector<double>* refs[] = {&ref.y, &ref.gx, &ref.gw};
  const std::vector<double>* cpus[] = {&cpu32.y, &cpu32.gx, &cpu32.gw};
  const std::vector<double>* gots[] = {&got.y, &got.gx, &got.gw};
  for (int p = 0; p < 3; ++p) {
    const double err = max_abs_diff(*gots[p], *refs[p]);
    const double allowed_f32 = allowed(Accuracy::Vendor, max_abs_diff(*cpus[p], *refs[p]), max_abs(*refs[p])).f32;
    MESSAGE(s.name << " pass " << p << " [cudnn graph API]: f32 max abs err " << err << ", allowed " << allowed_f32);
    CHECK(err <= allowed_f32);
  }
}

TEST_CASE("cuda conv2d: forward, backward and double backward match the CPU with each backend" *
          doctest::skip(!has_gpu())) {
  uint32_t seed = 300;
  for (const ConvShape& s : conv_shapes()) {
    check_conv_case(conv_case(s, seed));
    seed += 10;
  }
}

TEST_CASE("cuda conv2d: an empty batch gives empty outputs and a zero weight gradient" * doctest::skip(!has_gpu())) {
  const BackendRestorer restore;
  for (cu::ConvBackend backend : gpu_backends()) {
    cu::set_conv_backend(backend);
    const std::string backend_name = cu::conv_backend_name(backend);
    CAPTURE(backend_name);
    Tensor x = Tensor::zeros({0, 3, 5, 5}).to(kGpu), w = Tensor::ones({4, 3, 3, 3}).to(kGpu);
    const Tensor y = conv2d(x, w, Tensor(), conv_options({1, 1}, {1, 1}, {1, 1}, 1));
    CHECK(y.shape() == Shape{0, 4, 5, 5});
    const Tensor gw = conv2d_backward_weight(y, x, w.shape(), conv_options({1, 1}, {1, 1}, {1, 1}, 1));
    CHECK(gw.is_cuda());
    CHECK(same_values(host_values(gw), std::vector<double>(static_cast<size_t>(w.numel()), 0.0)));
  }
}

TEST_CASE("cuda conv2d: cuDNN chooses an algorithm once per shape and honours the TF32 switch" *
          doctest::skip(!has_gpu() || !cu::cudnn_available())) {
  const BackendRestorer restore;
  cu::set_conv_backend(cu::ConvBackend::cuDNN);
  const ConvShape s{"3x3 fresh shape", {3, 5, 11, 13}, {7, 5, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1}, 1)};
  const Tensor x = Tensor::from_vector(uniform(shape_numel(s.x), 900), s.x).to(kGpu);
  const Tensor w = Tensor::from_vector(uniform(shape_numel(s.w), 901), s.w).to(kGpu);
  cu::set_allow_tf32(false);
  conv2d(x, w, Tensor(), s.opt);
  const size_t after_first = cu::cudnn_cached_algorithms();
  CHECK(after_first >= 1);
  conv2d(x, w, Tensor(), s.opt);
  CHECK(cu::cudnn_cached_algorithms() == after_first);
  MESSAGE("cuDNN workspace limit " << cu::cudnn_workspace_limit() << " bytes, " << after_first
                                   << " algorithm choices cached");

  // With TF32 allowed the choice is made again (another cache key), and the result may
  // round its inputs to 10 mantissa bits.
  const std::vector<double> ref =
      host_values(conv2d(x.to(Device::cpu()).to(DType::f64), w.to(Device::cpu()).to(DType::f64), Tensor(), s.opt));
  cu::set_allow_tf32(true);
  const std::vector<double> tf32 = host_values(conv2d(x, w, Tensor(), s.opt));
  CHECK(cu::cudnn_cached_algorithms() == after_first + 1);
  const double err = max_abs_diff(tf32, ref), scale = max_abs(ref);
  MESSAGE("conv2d forward with TF32 allowed: max abs err " << err << ", max rel " << max_rel_diff(tf32, ref)
                                                           << ", allowed " << 1e-2 * scale);
  CHECK(err <= allowed(Accuracy::VendorTf32, 0.0, scale).f32);
}

TEST_CASE("cuda conv2d: operands on different devices are rejected" * doctest::skip(!has_gpu())) {
  const Tensor x = Tensor::ones({1, 2, 5, 5});
  const Tensor w = Tensor::ones({3, 2, 3, 3});
  const Tensor b = Tensor::ones({3});
  CHECK_THROWS_AS(conv2d(x.to(kGpu), w), Error);
  CHECK_THROWS_AS(conv2d(x, w.to(kGpu)), Error);
  CHECK_THROWS_AS(conv2d(x.to(kGpu), w.to(kGpu), b), Error);
  const Conv2dOptions opt;
  const Tensor gy = Tensor::ones({1, 3, 3, 3});
  CHECK_THROWS_AS(conv2d_backward_input(gy.to(kGpu), w, x.shape(), opt), Error);
  CHECK_THROWS_AS(conv2d_backward_weight(gy, x.to(kGpu), w.shape(), opt), Error);
}

TEST_CASE("cuda pooling: the CUDA kernels equal the CPU kernels bit for bit" * doctest::skip(!has_gpu())) {
  uint32_t seed = 500;
  for (const PoolShape& s : pool_shapes()) {
    for (DType dtype : {DType::f32, DType::f64}) {
      const Shape x_shape = s.x;
      // Max pooling on values with ties (multiples of 1/4): the first maximum must win on both.
      std::vector<double> v = uniform(shape_numel(x_shape), seed++);
      for (double& e : v) e = std::round(e * 4.0) / 4.0;
      const Tensor x = Tensor::from_vector(v, x_shape).to(dtype);
      const Tensor xg = x.to(kGpu);
      // doctest prints a const char* as a pointer: strings for the messages.
      const std::string type = dtype_name(dtype);
      CAPTURE(s.name);
      CAPTURE(type);
      for (bool count_include_pad : {true, false}) {
        Pool2dOptions opt = s.opt;
        opt.count_include_pad = count_include_pad;
        for (const auto& op : std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>>{
                 {"max_pool2d", [&](const Tensor& t) { return max_pool2d(t, opt); }},
                 {"avg_pool2d", [&](const Tensor& t) { return avg_pool2d(t, opt); }},
                 {"adaptive_avg_pool2d 3x2", [](const Tensor& t) { return adaptive_avg_pool2d(t, 3, 2); }},
                 {"adaptive_avg_pool2d 7x9", [](const Tensor& t) { return adaptive_avg_pool2d(t, 7, 9); }}}) {
          // Named references, not a structured binding: C++17 cannot capture one in CAPTURE's lambda.
          const std::string& name = op.first;
          const std::function<Tensor(const Tensor&)>& fn = op.second;
          CAPTURE(name);
          CAPTURE(count_include_pad);
          Tensor xc = x.detach(), xd = xg.detach();
          xc.set_requires_grad(true);
          xd.set_requires_grad(true);
          const Tensor yc = fn(xc), yd = fn(xd);
          const Tensor r = seed_tensor(yc.shape(), seed++, dtype, Device::cpu());
          const Tensor gc = autograd::grad({yc}, {xc}, {r})[0];
          const Tensor gd = autograd::grad({yd}, {xd}, {r.to(kGpu)})[0];
          const bool forward_same = same_values(host_values(yd), host_values(yc));
          const bool backward_same = same_values(host_values(gd), host_values(gc));
          MESSAGE(name << " " << s.name << " " << type << std::string(count_include_pad ? "" : " (pad not counted)")
                       << ": forward " << (forward_same ? "identical" : "DIFFERENT") << ", backward "
                       << (backward_same ? "identical" : "DIFFERENT") << " (max abs diff "
                       << max_abs_diff(host_values(gd), host_values(gc)) << ")");
          CHECK(forward_same);
          CHECK(backward_same);
        }
      }
    }
  }
}

TEST_CASE("cuda pooling: max_pool2d arg max indices equal the CPU's" * doctest::skip(!has_gpu())) {
  uint32_t seed = 700;
  for (const PoolShape& s : pool_shapes()) {
    CAPTURE(s.name);
    kernels::cpu::Pool2dGeometry g;
    g.planes = s.x[0] * s.x[1], g.H = s.x[2], g.W = s.x[3];
    g.kernel_h = s.opt.kernel[0], g.kernel_w = s.opt.kernel[1];
    g.stride_h = s.opt.stride[0] == 0 ? g.kernel_h : s.opt.stride[0];
    g.stride_w = s.opt.stride[1] == 0 ? g.kernel_w : s.opt.stride[1];
    g.pad_h = s.opt.padding[0], g.pad_w = s.opt.padding[1];
    g.out_h = kernels::cpu::pool2d_output_size(g.H, g.kernel_h, g.stride_h, g.pad_h, s.opt.ceil_mode);
    g.out_w = kernels::cpu::pool2d_output_size(g.W, g.kernel_w, g.stride_w, g.pad_w, s.opt.ceil_mode);
    // Ties, a NaN and -inf: the first maximum and the first NaN must win on both.
    std::vector<double> v = uniform(shape_numel(s.x), seed++);
    for (double& e : v) e = std::round(e * 2.0) / 2.0;
    v[3] = NAN;
    v[v.size() / 2] = -INFINITY;
    const Tensor x = Tensor::from_vector(v, s.x).to(DType::f32);
    const Tensor xg = x.to(kGpu);
    const Shape out{s.x[0], s.x[1], g.out_h, g.out_w};
    Tensor y = Tensor::empty(out), idx = Tensor::empty(out, DType::i64);
    Tensor yg = Tensor::empty(out, DType::f32, kGpu), idxg = Tensor::empty(out, DType::i64, kGpu);
    kernels::cpu::max_pool2d_forward<float>(g, x.data<float>(), y.data<float>(), idx.data<int64_t>());
    cu::max_pool2d_forward<float>(g, xg.data<float>(), yg.data<float>(), idxg.data<int64_t>(), 0);
    CHECK(idxg.to(Device::cpu()).to_vector<int64_t>() == idx.to_vector<int64_t>());
    CHECK(same_values(host_values(yg), host_values(y)));
  }
}
