// The CUDA paths of softmax / log_softmax, max / argmax, one_hot, the cross-entropy
// losses and batch_norm (training with running statistics, and eval) against the CPU
// ops: forward, backward (gradient of sum(out * r)) and double backward (gradient of
// <grad, w>, with create_graph), in f32 and in f64, on the shapes that reach each kernel
// path. Exact where the answer is exact (indices, one-hot rows, max values and their
// routing), within a tolerance elsewhere. var, a composite of mean, sub, mul and sum, is
// covered by the op table's rows on the GPU (test_op_table.cpp).
//
// Tolerance. A GPU reduction adds in another order than the CPU, which changes rounding
// but not the accuracy class, while an indexing or launch-size bug is off by O(1). So
// each result is judged against the CPU's f64 answer (the reference), and may err by
//     f32: max(8 * e_cpu, 64 * FLT_EPSILON * scale)
//     f64: max(8 * e_cpu * DBL_EPSILON / FLT_EPSILON, 64 * DBL_EPSILON * scale)
// in the max norm, where e_cpu is the max-norm error of the CPU's own f32 result against
// the reference (it measures how much the computation amplifies rounding: double
// backward of batch norm cancels heavily, softmax hardly) and scale is the largest
// |reference| value. Softmax probabilities are also checked element by element, to
// 32 epsilons relative: a tiny probability must be right, not merely small. Every case
// MESSAGEs its errors, printed by doctest with -s (or on failure).
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/ops/norm.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "tests/gpu/gpu_compare.h"
#include "tests/gpu/gpu_test_util.h"

using namespace dmix;
using dmix::gpu_test::has_gpu;
using namespace dmix::gpu_test;

namespace {

const Device kGpu = Device::cuda(0);

// ---- cases ---------------------------------------------------------------------------------

struct Input {
  Shape shape;
  std::vector<double> values;
  bool differentiable = true;
  bool labels = false;       // i64 values (never differentiable)
  bool stay_on_cpu = false;  // left on the CPU even in the GPU run
};

struct Output {
  enum class Check { Normwise, Exact, Probabilities };
  std::string name;
  Tensor tensor;
  bool differentiable = true;  // enters the loss whose gradients are compared
  Check check = Check::Normwise;
};

// Builds the op's outputs from inputs already on the run's device and dtype.
using CaseFn = std::function<std::vector<Output>(const TensorList& inputs, DType dtype)>;

struct Case {
  std::string name;
  std::vector<Input> inputs;
  CaseFn fn;
};

Input uniform_input(const Shape& shape, uint32_t seed, double lo = -1.0, double hi = 1.0, bool differentiable = true) {
  Input in;
  in.shape = shape;
  in.values = uniform(shape_numel(shape), seed, lo, hi);
  in.differentiable = differentiable;
  return in;
}

Input label_input(int64_t n, int64_t classes, uint32_t seed, bool stay_on_cpu = false) {
  std::mt19937 gen(seed);
  Input in;
  in.shape = {n};
  for (int64_t i = 0; i < n; ++i) in.values.push_back(static_cast<double>(gen() % static_cast<uint32_t>(classes)));
  in.differentiable = false;
  in.labels = true;
  in.stay_on_cpu = stay_on_cpu;
  return in;
}

// ---- one run: forward, backward, double backward on one device and dtype -------------------

struct Entry {
  std::string name;
  Output::Check check = Output::Check::Normwise;
  std::vector<double> values;
};
using Result = std::vector<Entry>;

Tensor seed_tensor(const Shape& shape, uint32_t seed, DType dtype, Device device) {
  return Tensor::from_vector(uniform(shape_numel(shape), seed), shape).to(dtype).to(device);
}

Result run(const Case& c, DType dtype, Device device) {
  TensorList inputs, wrt;
  for (const Input& spec : c.inputs) {
    Tensor t;
    if (spec.labels) {
      std::vector<int64_t> labels(spec.values.begin(), spec.values.end());
      t = Tensor::from_vector(labels, spec.shape);
    } else {
      t = Tensor::from_vector(spec.values, spec.shape).to(dtype);
    }
    if (!spec.stay_on_cpu) t = t.to(device);
    t = t.detach();
    if (spec.differentiable) {
      t.set_requires_grad(true);
      wrt.push_back(t);
    }
    inputs.push_back(t);
  }
  const std::vector<Output> outputs = c.fn(inputs, dtype);

  Result r;
  Tensor loss;
  for (size_t j = 0; j < outputs.size(); ++j) {
    const Output& o = outputs[j];
    r.push_back({"forward " + o.name, o.check, host_values(o.tensor)});
    if (!o.differentiable || !o.tensor.requires_grad()) continue;
    const Tensor term = sum(mul(o.tensor, seed_tensor(o.tensor.shape(), 1000 + static_cast<uint32_t>(j), dtype,
                                                       o.tensor.device())));
    loss = loss.defined() ? add(loss, term) : term;
  }
  if (!loss.defined() || wrt.empty()) return r;

  const TensorList grads = autograd::grad({loss}, wrt, {}, /*create_graph=*/true, /*allow_unused=*/true);
  Tensor inner;
  for (size_t i = 0; i < grads.size(); ++i) {
    r.push_back({"grad of input " + std::to_string(i), Output::Check::Normwise, host_values(grads[i])});
    if (!grads[i].requires_grad()) continue;
    const Tensor term =
        sum(mul(grads[i], seed_tensor(grads[i].shape(), 2000 + static_cast<uint32_t>(i), dtype, grads[i].device())));
    inner = inner.defined() ? add(inner, term) : term;
  }
  // A gradient that does not depend on the inputs (max routes a constant) has a zero
  // second derivative.
  TensorList second;
  if (inner.defined())
    second = autograd::grad({inner}, wrt, {}, /*create_graph=*/false, /*allow_unused=*/true);
  for (size_t i = 0; i < wrt.size(); ++i) {
    std::vector<double> v = second.empty() ? std::vector<double>(static_cast<size_t>(wrt[i].numel()), 0.0)
                                           : host_values(second[i]);
    r.push_back({"double grad of input " + std::to_string(i), Output::Check::Normwise, std::move(v)});
  }
  return r;
}

// ---- comparison ----------------------------------------------------------------------------

// Elements outside |got - ref| <= 32 eps |ref| (or twice the CPU's own error there).
int64_t probability_failures(const std::vector<double>& got, const std::vector<double>& cpu,
                             const std::vector<double>& ref, double eps) {
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double allowed = std::max(32 * eps * std::abs(ref[i]), 2 * std::abs(cpu[i] - ref[i]));
    if (!(std::abs(got[i] - ref[i]) <= allowed)) ++bad;
  }
  return bad;
}

void compare_runs(const Case& c, const Result& cpu64, const Result& cpu32, const Result& gpu32, const Result& gpu64) {
  REQUIRE(cpu32.size() == cpu64.size());
  REQUIRE(gpu32.size() == cpu64.size());
  REQUIRE(gpu64.size() == cpu64.size());
  for (size_t k = 0; k < cpu64.size(); ++k) {
    const Entry& ref = cpu64[k];
    const std::string what = c.name + " | " + ref.name;
    CAPTURE(what);
    REQUIRE(gpu32[k].values.size() == ref.values.size());
    REQUIRE(gpu64[k].values.size() == ref.values.size());
    if (ref.check == Output::Check::Exact) {
      const bool f32_same = same_values(gpu32[k].values, cpu32[k].values);
      const bool f64_same = same_values(gpu64[k].values, ref.values);
      MESSAGE(what << ": exact comparison, f32 " << (f32_same ? "identical" : "DIFFERENT") << ", f64 "
                   << (f64_same ? "identical" : "DIFFERENT"));
      CHECK(f32_same);
      CHECK(f64_same);
      continue;
    }
    const double scale = max_abs(ref.values);
    const double e_cpu = max_abs_diff(cpu32[k].values, ref.values);
    const double e_gpu = max_abs_diff(gpu32[k].values, ref.values);
    const double allowed32 = std::max(8 * e_cpu, 64 * FLT_EPSILON * scale);
    const double e_gpu64 = max_abs_diff(gpu64[k].values, ref.values);
    const double allowed64 = std::max(8 * e_cpu * (DBL_EPSILON / FLT_EPSILON), 64 * DBL_EPSILON * scale);
    std::ostringstream os;
    os << what << ": f32 gpu-cpu max abs " << max_abs_diff(gpu32[k].values, cpu32[k].values) << ", max rel "
       << max_rel_diff(gpu32[k].values, cpu32[k].values) << "; error vs f64 reference: gpu " << e_gpu << ", cpu "
       << e_cpu << ", allowed " << allowed32 << " (scale " << scale << "); f64 gpu-cpu max abs " << e_gpu64
       << ", allowed " << allowed64;
    MESSAGE(os.str());
    CHECK(e_gpu <= allowed32);
    CHECK(e_gpu64 <= allowed64);
    if (ref.check == Output::Check::Probabilities) {
      CHECK(probability_failures(gpu32[k].values, cpu32[k].values, ref.values, FLT_EPSILON) == 0);
      CHECK(probability_failures(gpu64[k].values, ref.values, ref.values, DBL_EPSILON) == 0);
    }
  }
}

void check_case(const Case& c) {
  INFO("case: " << c.name);
  const Result cpu64 = run(c, DType::f64, Device::cpu());
  const Result cpu32 = run(c, DType::f32, Device::cpu());
  const Result gpu32 = run(c, DType::f32, kGpu);
  const Result gpu64 = run(c, DType::f64, kGpu);
  compare_runs(c, cpu64, cpu32, gpu32, gpu64);
}

// ---- the ops' cases ------------------------------------------------------------------------

Case softmax_case(const Shape& shape, int64_t dim, bool log, uint32_t seed) {
  Case c;
  c.name = std::string(log ? "log_softmax " : "softmax ") + shape_str(shape) + " dim " + std::to_string(dim);
  c.inputs = {uniform_input(shape, seed, -4.0, 4.0)};
  c.fn = [dim, log](const TensorList& in, DType) {
    if (log) return std::vector<Output>{{"y", log_softmax(in[0], dim)}};
    return std::vector<Output>{{"y", softmax(in[0], dim), true, Output::Check::Probabilities}};
  };
  return c;
}

Case max_case(const Shape& shape, int64_t dim, bool keepdim, uint32_t seed) {
  Case c;
  c.name = "max " + shape_str(shape) + " dim " + std::to_string(dim) + (keepdim ? " keepdim" : "");
  // Distinct values (a permutation scaled), so the arg max is the same in f32 and f64.
  const int64_t n = shape_numel(shape);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<double>(i) / static_cast<double>(n) - 0.5;
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  c.inputs = {Input{shape, v}};
  c.fn = [dim, keepdim](const TensorList& in, DType) {
    const MaxResult m = max(in[0], dim, keepdim);
    return std::vector<Output>{{"values", m.values, true, Output::Check::Exact},
                               {"indices", m.indices, false, Output::Check::Exact},
                               {"argmax", argmax(in[0], dim, keepdim), false, Output::Check::Exact}};
  };
  return c;
}

Case cross_entropy_case(int64_t n, int64_t classes, double smoothing, bool labels_on_cpu, uint32_t seed) {
  Case c;
  std::ostringstream name;
  name << "cross_entropy (" << n << ", " << classes << ") smoothing " << smoothing
       << (labels_on_cpu ? " labels on cpu" : "");
  c.name = name.str();
  c.inputs = {uniform_input({n, classes}, seed, -3.0, 3.0), label_input(n, classes, seed + 1, labels_on_cpu)};
  c.fn = [smoothing](const TensorList& in, DType) {
    return std::vector<Output>{{"loss", cross_entropy(in[0], in[1], smoothing)}};
  };
  return c;
}

Case soft_cross_entropy_case(int64_t n, int64_t classes, uint32_t seed) {
  Case c;
  c.name = "soft_cross_entropy (" + std::to_string(n) + ", " + std::to_string(classes) + ")";
  // Mixed targets: two labels per row with weights lam and 1 - lam, as mixup makes.
  std::mt19937 gen(seed);
  Input targets;
  targets.shape = {n, classes};
  targets.values.assign(static_cast<size_t>(n * classes), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double lam = std::uniform_real_distribution<double>(0.0, 1.0)(gen);
    targets.values[i * classes + gen() % classes] += lam;
    targets.values[i * classes + gen() % classes] += 1.0 - lam;
  }
  c.inputs = {uniform_input({n, classes}, seed + 1, -3.0, 3.0), targets};
  c.fn = [](const TensorList& in, DType) {
    return std::vector<Output>{{"loss", soft_cross_entropy(in[0], in[1])}};
  };
  return c;
}

// x has a per-channel offset (mean far from zero relative to its spread): the case where
// a careless variance formula cancels.
Input batch_norm_input(const Shape& shape, uint32_t seed) {
  Input x = uniform_input(shape, seed, -1.0, 1.0);
  int64_t S = 1;
  for (size_t d = 2; d < shape.size(); ++d) S *= shape[d];
  const int64_t C = shape[1];
  for (size_t i = 0; i < x.values.size(); ++i) {
    const int64_t c = (static_cast<int64_t>(i) / S) % C;
    x.values[i] = 3.0 * static_cast<double>(c % 3) - 2.0 + 0.7 * x.values[i];
  }
  return x;
}

Case batch_norm_case(const Shape& shape, bool training, bool affine, uint32_t seed, double momentum = 0.1) {
  Case c;
  c.name = std::string("batch_norm ") + (training ? "train" : "eval") + (affine ? " affine " : " ") + shape_str(shape);
  const int64_t C = shape[1];
  c.inputs = {batch_norm_input(shape, seed)};
  if (affine) {
    c.inputs.push_back(uniform_input({C}, seed + 1, 0.5, 1.5));
    c.inputs.push_back(uniform_input({C}, seed + 2));
  }
  // Running statistics start away from their defaults, so the decay rule shows.
  c.inputs.push_back(uniform_input({C}, seed + 3, -0.5, 0.5, /*differentiable=*/false));
  c.inputs.push_back(uniform_input({C}, seed + 4, 0.5, 2.0, /*differentiable=*/false));
  c.fn = [training, affine, momentum](const TensorList& in, DType) {
    const size_t k = affine ? 3 : 1;
    const Tensor& running_mean = in[k];
    const Tensor& running_var = in[k + 1];
    const Tensor y = batch_norm(in[0], affine ? in[1] : Tensor(), affine ? in[2] : Tensor(), running_mean,
                                running_var, training, momentum, 1e-5);
    // The buffers were updated in place by the call (training) or left alone (eval).
    return std::vector<Output>{{"y", y},
                               {"running_mean", running_mean, false},
                               {"running_var", running_var, false}};
  };
  return c;
}

}  // namespace

// ---- test cases ----------------------------------------------------------------------------

TEST_CASE("cuda softmax: softmax and log_softmax along every kind of dim match the CPU" *
          doctest::skip(!has_gpu())) {
  struct Along {
    Shape shape;
    int64_t dim;
  };
  // Warp per line (n <= 1024), block per line (n > 1024), strided tiles with partly
  // filled tiles (inner = 65, 10, 3), n smaller than the thread rows, and a long strided n.
  const std::vector<Along> cases = {{{7, 10}, 1},        {{7, 10}, 0},    {{3, 1500}, 1},   {{3, 1500}, -1},
                                    {{2, 5, 3, 4}, 0},   {{2, 5, 3, 4}, 1}, {{2, 5, 3, 4}, 2}, {{2, 5, 3, 4}, 3},
                                    {{4, 37, 65}, 1},    {{1, 2000, 3}, 1}, {{5, 1, 33}, 1},   {{1, 1}, 0}};
  uint32_t seed = 10;
  for (const Along& a : cases)
    for (bool log : {false, true}) check_case(softmax_case(a.shape, a.dim, log, seed++));
}

TEST_CASE("cuda max: max, argmax and max's gradient routing match the CPU exactly" * doctest::skip(!has_gpu())) {
  uint32_t seed = 100;
  check_case(max_case({6, 9}, 1, false, seed++));
  check_case(max_case({6, 9}, 0, true, seed++));
  check_case(max_case({3, 1500}, 1, false, seed++));  // block per line
  check_case(max_case({2, 7, 40}, 1, true, seed++));  // strided, a partly filled tile
  check_case(max_case({2, 7, 40}, 2, false, seed++));
  check_case(max_case({2, 3, 4, 5}, 0, false, seed++));
  check_case(max_case({1, 3000, 2}, 1, false, seed++));  // long strided lines
  check_case(max_case({5}, 0, false, seed++));
}

TEST_CASE("cuda max: ties take the first index and the first NaN wins, as on the CPU" * doctest::skip(!has_gpu())) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Lines with repeated maxima at varied positions, NaNs, a NaN first, -inf, +-0.
  std::vector<double> v;
  const int64_t n = 1100;  // > 1024: block-per-line path for dim 1
  for (int64_t line = 0; line < 6; ++line)
    for (int64_t i = 0; i < n; ++i) v.push_back(std::sin(static_cast<double>(i * (line + 1))) > 0.9 ? 1.0 : 0.5);
  v[2 * n + 700] = nan;
  v[2 * n + 900] = nan;
  v[3 * n + 0] = nan;
  for (int64_t i = 0; i < n; ++i) v[4 * n + i] = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) v[5 * n + i] = (i % 2) ? 0.0 : -0.0;
  for (int64_t dim : {0, 1}) {
    for (const Shape& shape : {Shape{6, n}, Shape{6, n / 4, 4}}) {
      const std::string layout = shape_str(shape) + " dim " + std::to_string(dim);
      CAPTURE(layout);
      for (DType dtype : {DType::f32, DType::f64}) {
        const Tensor x = Tensor::from_vector(v, shape).to(dtype);
        const MaxResult cpu = max(x, dim);
        const MaxResult gpu = max(x.to(kGpu), dim);
        CHECK(gpu.indices.to_vector<int64_t>() == cpu.indices.to_vector<int64_t>());
        CHECK(same_values(host_values(gpu.values), host_values(cpu.values)));
        CHECK(argmax(x.to(kGpu), dim).to_vector<int64_t>() == cpu.indices.to_vector<int64_t>());
      }
    }
  }
}

TEST_CASE("cuda loss: one_hot on the GPU matches the CPU and rejects bad labels" * doctest::skip(!has_gpu())) {
  for (int64_t classes : {1, 10, 1000}) {
    const Input in = label_input(37, classes, 300 + static_cast<uint32_t>(classes));
    const Tensor labels = Tensor::from_vector(std::vector<int64_t>(in.values.begin(), in.values.end()), in.shape);
    for (DType dtype : {DType::f32, DType::f64}) {
      const Tensor cpu = one_hot(labels, classes, dtype);
      const Tensor gpu = one_hot(labels.to(kGpu), classes, dtype);
      CHECK(gpu.is_cuda());
      CHECK(gpu.shape() == cpu.shape());
      CHECK(same_values(host_values(gpu), host_values(cpu)));
    }
  }
  // (2, 3) labels give (2, 3, 4).
  const Tensor grid = Tensor::from_vector(std::vector<int64_t>{0, 3, 1, 2, 2, 0}, {2, 3});
  CHECK(same_values(host_values(one_hot(grid.to(kGpu), 4)), host_values(one_hot(grid, 4))));
  const Tensor bad = Tensor::from_vector(std::vector<int64_t>{0, 4, 1}, {3}).to(kGpu);
  CHECK_THROWS_AS(one_hot(bad, 4), Error);
  const Tensor negative = Tensor::from_vector(std::vector<int64_t>{-1}, {1}).to(kGpu);
  CHECK_THROWS_AS(one_hot(negative, 4), Error);
}

TEST_CASE("cuda loss: cross_entropy and soft_cross_entropy match the CPU" * doctest::skip(!has_gpu())) {
  check_case(cross_entropy_case(8, 10, 0.0, false, 400));
  check_case(cross_entropy_case(8, 10, 0.1, false, 410));
  check_case(cross_entropy_case(5, 1500, 0.2, false, 420));  // block-per-line log_softmax
  check_case(cross_entropy_case(6, 7, 0.1, true, 430));      // labels on the CPU, logits on the GPU
  check_case(soft_cross_entropy_case(8, 10, 440));
  check_case(soft_cross_entropy_case(3, 1100, 450));
}

TEST_CASE("cuda batch_norm: training forward, running statistics, backward and double backward match the CPU" *
          doctest::skip(!has_gpu())) {
  // S = 1 and S = 6: the column layout (one and four row chunks); S = 35 and S = 1089:
  // rows with single loads (the latter through the unrolled loop); S = 64 and S = 1024:
  // 16-byte loads (the latter in 8 chunks per channel).
  const std::vector<Shape> shapes = {{16, 5}, {100, 6}, {3, 2, 2, 3}, {4, 3, 5, 7}, {8, 3, 33, 33}, {2, 4, 8, 8},
                                     {64, 3, 32, 32}};
  uint32_t seed = 500;
  for (const Shape& shape : shapes)
    for (bool affine : {true, false}) {
      check_case(batch_norm_case(shape, /*training=*/true, affine, seed));
      seed += 10;
    }
  check_case(batch_norm_case({4, 3, 5, 7}, true, true, seed, /*momentum=*/0.7));
}

TEST_CASE("cuda batch_norm: eval forward, backward and double backward match the CPU" * doctest::skip(!has_gpu())) {
  const std::vector<Shape> shapes = {{16, 5}, {3, 2, 2, 3}, {4, 3, 5, 7}, {2, 4, 8, 8}};
  uint32_t seed = 600;
  for (const Shape& shape : shapes)
    for (bool affine : {true, false}) {
      check_case(batch_norm_case(shape, /*training=*/false, affine, seed));
      seed += 10;
    }
}

TEST_CASE("cuda batch_norm: results are the same bit for bit from run to run" * doctest::skip(!has_gpu())) {
  for (const Shape& shape : {Shape{64, 3, 32, 32}, Shape{200, 7}, Shape{8, 3, 33, 33}}) {
    const std::string layout = shape_str(shape);
    CAPTURE(layout);
    const Input spec = batch_norm_input(shape, 700);
    const Tensor x = Tensor::from_vector(spec.values, shape).to(DType::f32).to(kGpu);
    const Tensor g = seed_tensor(shape, 701, DType::f32, kGpu);
    std::vector<std::vector<double>> first;
    for (int repeat = 0; repeat < 2; ++repeat) {
      Tensor leaf = x.detach();
      leaf.set_requires_grad(true);
      const Tensor y = batch_norm(leaf, Tensor(), Tensor(), Tensor(), Tensor(), /*training=*/true);
      const Tensor gx = autograd::grad({y}, {leaf}, {g})[0];
      const Tensor p = softmax(x, 1);
      const std::vector<std::vector<double>> now = {host_values(y), host_values(gx), host_values(p)};
      if (repeat == 0)
        first = now;
      else
        for (size_t k = 0; k < now.size(); ++k) CHECK(same_values(now[k], first[k]));
    }
  }
}

TEST_CASE("cuda batch_norm: inputs on different devices are rejected" * doctest::skip(!has_gpu())) {
  const Tensor x = Tensor::ones({4, 3, 2, 2}).to(kGpu);
  const Tensor w = Tensor::ones({3});
  CHECK_THROWS_AS(batch_norm(x, w, Tensor(), Tensor(), Tensor(), true), Error);
  CHECK_THROWS_AS(batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3}), Tensor::ones({3}), false), Error);
}
