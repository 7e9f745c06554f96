// CUDA elementwise ops, sum / mean / expand / sum_to, dtype conversions and the
// in-place tensor updates, against their CPU twins (kernels/cuda/elementwise.cu,
// kernels/cuda/reduce_sum.cu through engine/ops/elementwise.cpp, reduce_sum.cpp and
// engine/tensor.cpp).
//
// For every op and shape, in f32 and in f64: the same random inputs run on the CPU and
// on cuda:0; the forward results, the gradients d<y, r>/dx (create_graph) and the
// second derivatives d<grad, w>/dx are compared. Each comparison prints its max abs and
// max rel error.
//
// Tolerance. Element i may differ by tol * (|cpu_i| + max_j |cpu_j|): relative to the
// element, with a floor relative to the result's scale (cancellation in a - b or
// 1 - y*y makes a small result's relative error meaningless). tol is
//   f32: max(1e-5, 16 eps sqrt(K)),  f64: max(1e-12, 16 eps sqrt(K)),
// where K is the most terms any one output sums (1 for a pure elementwise op, the
// broadcast ratio for the gradients of a broadcasting op, the reduced count for sum).
// Elementwise: the CUDA math library is within 2-4 ulp of glibc, far inside 1e-5.
// Sums: CPU and GPU add in different orders; with inputs of random sign the rounding
// error of either grows like eps sqrt(K) relative to the result's scale, and the bound
// leaves a factor of ~16 over that. A wrong index, a lost tail or a missing chunk
// moves an element by O(1) of the scale and fails.
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "tests/gpu/gpu_test_util.h"

using namespace dmix;
using dmix::gpu_test::has_gpu;

namespace {

const Device kGpu = Device::cuda(0);

enum class Fill {
  Uniform,       // uniform in [-1, 1)
  Positive,      // uniform in [0.5, 2): log, sqrt, fractional pow, divisors
  AwayFromZero,  // |v| in [0.1, 1) with a random sign: abs, sign, relu stay off their kink
  QuarterGrid,   // multiples of 1/4 in [-1, 1]: many values sit exactly on clamp's bounds
};

struct Input {
  Shape shape;
  Fill fill = Fill::Uniform;
  bool differentiable = true;
};

struct Case {
  std::string name;
  std::vector<Input> inputs;
  std::function<Tensor(const TensorList&)> fn;
  int64_t terms = 1;  // the most terms any output of the forward or its derivatives sums
};

std::vector<double> random_values(int64_t n, Fill fill, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0), positive(0.5, 2.0), magnitude(0.1, 1.0);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) {
    switch (fill) {
      case Fill::Uniform: x = uniform(gen); break;
      case Fill::Positive: x = positive(gen); break;
      case Fill::AwayFromZero: x = magnitude(gen) * (gen() % 2 ? 1.0 : -1.0); break;
      case Fill::QuarterGrid: x = std::round(uniform(gen) * 4.0) / 4.0; break;
    }
  }
  return v;
}

Tensor random_tensor(const Shape& shape, DType dtype, uint32_t seed, Fill fill = Fill::Uniform) {
  return Tensor::from_vector(random_values(shape_numel(shape), fill, seed), shape).to(dtype);
}

// Host doubles of any tensor (any device, any dtype).
std::vector<double> host_doubles(const Tensor& t) {
  return t.detach().to(Device::cpu()).to(DType::f64).to_vector<double>();
}

double tolerance(DType dtype, int64_t terms) {
  const double eps = dtype == DType::f32 ? FLT_EPSILON : DBL_EPSILON;
  const double base = dtype == DType::f32 ? 1e-5 : 1e-12;
  return std::max(base, 16.0 * eps * std::sqrt(static_cast<double>(std::max<int64_t>(terms, 1))));
}

// Compares a CUDA result with the CPU's; MESSAGEs the errors, CHECKs the tolerance.
void check_close(const std::string& what, const Tensor& cpu, const Tensor& gpu, double tol) {
  REQUIRE_MESSAGE(cpu.defined() == gpu.defined(), what);
  if (!cpu.defined()) return;
  CHECK_MESSAGE(gpu.is_cuda(), what << ": result on " << gpu.device());
  REQUIRE_MESSAGE(cpu.shape() == gpu.shape(), what << ": " << cpu.str() << " vs " << gpu.str());
  CHECK_MESSAGE(cpu.dtype() == gpu.dtype(), what << ": " << cpu.str() << " vs " << gpu.str());
  const std::vector<double> c = host_doubles(cpu), g = host_doubles(gpu);
  double scale = 0.0;
  for (double v : c) scale = std::max(scale, std::abs(v));
  double max_abs = 0.0, max_rel = 0.0;
  int64_t failures = 0, worst = -1;
  double worst_fraction = 0.0;
  for (size_t i = 0; i < c.size(); ++i) {
    const double err = std::abs(g[i] - c[i]);
    const double allowed = tol * (std::abs(c[i]) + scale);
    if (!(err <= allowed)) ++failures;  // NaN fails too
    if (!std::isfinite(err)) {
      max_abs = INFINITY;
      worst = static_cast<int64_t>(i);
      worst_fraction = INFINITY;
      continue;
    }
    max_abs = std::max(max_abs, err);
    if (std::abs(c[i]) >= 1e-3 * scale && c[i] != 0.0) max_rel = std::max(max_rel, err / std::abs(c[i]));
    const double fraction = allowed > 0.0 ? err / allowed : (err > 0.0 ? INFINITY : 0.0);
    if (fraction > worst_fraction) {
      worst_fraction = fraction;
      worst = static_cast<int64_t>(i);
    }
  }
  MESSAGE(what << " " << shape_str(cpu.shape()) << ": max abs err " << max_abs << ", max rel err " << max_rel
               << " (tolerance " << tol << ")");
  CHECK_MESSAGE(failures == 0, what << ": " << failures << " element(s) out of tolerance, worst at " << worst
                                    << " (cpu " << (worst >= 0 ? c[worst] : 0.0) << ", gpu "
                                    << (worst >= 0 ? g[worst] : 0.0) << ")");
}

void check_exact(const std::string& what, const Tensor& cpu, const Tensor& gpu) { check_close(what, cpu, gpu, 0.0); }

TensorList make_inputs(const Case& c, DType dtype, uint32_t seed) {
  TensorList xs;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    Tensor x = random_tensor(c.inputs[i].shape, dtype, seed + static_cast<uint32_t>(i) * 101, c.inputs[i].fill);
    if (c.inputs[i].differentiable) x.set_requires_grad(true);
    xs.push_back(x);
  }
  return xs;
}

TensorList to_gpu(const TensorList& xs) {
  TensorList out;
  for (const Tensor& x : xs) {
    Tensor g = x.detach().to(kGpu);
    if (x.requires_grad()) g.set_requires_grad(true);
    out.push_back(g);
  }
  return out;
}

TensorList differentiable(const TensorList& xs) {
  TensorList out;
  for (const Tensor& x : xs)
    if (x.requires_grad()) out.push_back(x);
  return out;
}

// Forward, backward and double backward of one case, on CPU and GPU, in one dtype.
void run_case(const Case& c, DType dtype) {
  const std::string name = c.name + " " + dtype_name(dtype);
  const double tol = tolerance(dtype, c.terms);
  const uint32_t seed = static_cast<uint32_t>(std::hash<std::string>{}(c.name));
  const TensorList xc = make_inputs(c, dtype, seed), xg = to_gpu(xc);
  const Tensor yc = c.fn(xc), yg = c.fn(xg);
  check_close(name + " forward", yc, yg, tol);
  CHECK_MESSAGE(yc.requires_grad() == yg.requires_grad(), name);
  if (!yc.requires_grad()) return;

  const TensorList pc = differentiable(xc), pg = differentiable(xg);
  const Tensor r = random_tensor(yc.shape(), dtype, seed + 7);
  const TensorList gc = autograd::grad({yc}, pc, {r}, /*create_graph=*/true, /*allow_unused=*/true);
  const TensorList gg = autograd::grad({yg}, pg, {r.to(kGpu)}, /*create_graph=*/true, /*allow_unused=*/true);
  REQUIRE(gc.size() == gg.size());
  Tensor dot_c, dot_g;
  for (size_t i = 0; i < gc.size(); ++i) {
    check_close(name + " backward (input " + std::to_string(i) + ")", gc[i], gg[i], tol);
    CHECK_MESSAGE(gc[i].requires_grad() == gg[i].requires_grad(), name << " input " << i);
    if (!gc[i].requires_grad() || !gg[i].requires_grad()) continue;  // a gradient constant in the inputs
    const Tensor w = random_tensor(gc[i].shape(), dtype, seed + 13 + static_cast<uint32_t>(i));
    const Tensor tc = sum(mul(gc[i], w)), tg = sum(mul(gg[i], w.to(kGpu)));
    dot_c = dot_c.defined() ? add(dot_c, tc) : tc;
    dot_g = dot_g.defined() ? add(dot_g, tg) : tg;
  }
  if (!dot_c.defined()) return;
  const TensorList hc = autograd::grad({dot_c}, pc, {}, /*create_graph=*/false, /*allow_unused=*/true);
  const TensorList hg = autograd::grad({dot_g}, pg, {}, /*create_graph=*/false, /*allow_unused=*/true);
  REQUIRE(hc.size() == hg.size());
  for (size_t i = 0; i < hc.size(); ++i)
    check_close(name + " double backward (input " + std::to_string(i) + ")", hc[i], hg[i], tol);
}

void run_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    for (DType dtype : {DType::f32, DType::f64}) {
      CAPTURE(c.name);
      run_case(c, dtype);
    }
  }
}

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);
using UnaryFn = std::function<Tensor(const Tensor&)>;

// The same-shape, per-channel, outer-product, scalar and leading-dim broadcasts, and a
// long odd vector (vector loads plus a tail, many blocks).
std::vector<Case> binary_cases(const std::string& op, BinaryFn f, Fill b_fill) {
  struct Pair {
    Shape a, b;
    int64_t terms;
  };
  const Pair pairs[] = {
      {{3, 5}, {3, 5}, 1},
      {{100003}, {100003}, 1},
      {{2, 3, 33, 17}, {3, 1, 1}, 2 * 33 * 17},
      {{3, 1, 1}, {2, 3, 33, 17}, 2 * 33 * 17},
      {{7, 1}, {1, 9}, 9},
      {{5, 6}, {}, 30},
      {{1}, {37}, 37},
      {{4, 5, 6}, {5, 1}, 24},
      {{2, 1, 4, 1, 3}, {1, 5, 1, 2, 1}, 12},
  };
  std::vector<Case> cases;
  for (const Pair& p : pairs) {
    Case c;
    c.name = op + " " + shape_str(p.a) + " " + shape_str(p.b);
    c.inputs = {{p.a, Fill::Uniform}, {p.b, b_fill}};
    c.fn = [f](const TensorList& in) { return f(in[0], in[1]); };
    c.terms = p.terms;
    cases.push_back(c);
  }
  return cases;
}

std::vector<Case> unary_cases(const std::string& op, const UnaryFn& f, Fill fill) {
  const Shape shapes[] = {{}, {1}, {13}, {4097}, {3, 5, 7}, {100003}};
  std::vector<Case> cases;
  for (const Shape& s : shapes) {
    Case c;
    c.name = op + " " + shape_str(s);
    c.inputs = {{s, fill}};
    c.fn = [f](const TensorList& in) { return f(in[0]); };
    cases.push_back(c);
  }
  return cases;
}

// A view of `count` elements starting `offset` elements into `base`'s storage: its data
// pointer is not 16-byte aligned when offset is odd, which forces the scalar paths.
Tensor offset_view(const Tensor& base, int64_t offset, const Shape& shape) {
  REQUIRE(offset + shape_numel(shape) <= base.numel());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl().storage;
  impl->offset = base.impl().offset + offset;
  impl->shape = shape;
  impl->dtype = base.dtype();
  impl->device = base.device();
  return Tensor(std::move(impl));
}

}  // namespace

// ---- elementwise ops ---------------------------------------------------------------------

TEST_CASE("cuda elementwise: add, sub, mul, div with broadcasting match the CPU" * doctest::skip(!has_gpu())) {
  run_cases(binary_cases("add", &add, Fill::Uniform));
  run_cases(binary_cases("sub", &sub, Fill::Uniform));
  run_cases(binary_cases("mul", &mul, Fill::Uniform));
  run_cases(binary_cases("div", &div, Fill::Positive));
}

TEST_CASE("cuda elementwise: unary ops match the CPU" * doctest::skip(!has_gpu())) {
  run_cases(unary_cases("neg", [](const Tensor& x) { return neg(x); }, Fill::Uniform));
  run_cases(unary_cases("exp", [](const Tensor& x) { return exp(x); }, Fill::Uniform));
  run_cases(unary_cases("log", [](const Tensor& x) { return log(x); }, Fill::Positive));
  run_cases(unary_cases("sqrt", [](const Tensor& x) { return sqrt(x); }, Fill::Positive));
  run_cases(unary_cases("abs", [](const Tensor& x) { return abs(x); }, Fill::AwayFromZero));
  run_cases(unary_cases("sign", [](const Tensor& x) { return sign(x); }, Fill::AwayFromZero));
  run_cases(unary_cases("relu", [](const Tensor& x) { return relu(x); }, Fill::AwayFromZero));
  run_cases(unary_cases("sigmoid", [](const Tensor& x) { return sigmoid(mul_scalar(x, 4.0)); }, Fill::Uniform));
  run_cases(unary_cases("tanh", [](const Tensor& x) { return tanh(mul_scalar(x, 2.0)); }, Fill::Uniform));
}

TEST_CASE("cuda elementwise: scalar ops, pow and clamp match the CPU" * doctest::skip(!has_gpu())) {
  run_cases(unary_cases("add_scalar", [](const Tensor& x) { return add_scalar(x, 0.75); }, Fill::Uniform));
  run_cases(unary_cases("mul_scalar", [](const Tensor& x) { return mul_scalar(x, -1.5); }, Fill::Uniform));
  run_cases(unary_cases("scalar operators", [](const Tensor& x) { return 2.0 - x * 3.0 / 4.0 + 1.0; }, Fill::Uniform));
  for (double e : {0.0, 1.0, 2.0, 3.0, -1.0, 2.5, 0.5}) {
    const Fill fill = (e == 2.0 || e == 3.0 || e == 0.0 || e == 1.0) ? Fill::Uniform : Fill::Positive;
    run_cases(unary_cases("pow " + std::to_string(e), [e](const Tensor& x) { return pow(x, e); }, fill));
  }
  run_cases(unary_cases("clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.25); }, Fill::Uniform));
  // The clamp gradient passes where lo <= x <= hi: elements exactly on lo = -0.5 and
  // hi = 0.25 must get the same gradient on both devices.
  run_cases(unary_cases("clamp on its bounds", [](const Tensor& x) { return clamp(x, -0.5, 0.25); }, Fill::QuarterGrid));
}

TEST_CASE("cuda elementwise: masks, where and masked_fill match the CPU" * doctest::skip(!has_gpu())) {
  std::vector<Case> cases;
  auto add_case = [&](std::string name, std::vector<Input> inputs, std::function<Tensor(const TensorList&)> fn,
                      int64_t terms) {
    Case c;
    c.name = std::move(name);
    c.inputs = std::move(inputs);
    c.fn = std::move(fn);
    c.terms = terms;
    cases.push_back(c);
  };
  add_case("greater", {{{3, 1, 7}, Fill::Uniform, false}, {{5, 1}, Fill::Uniform, false}},
           [](const TensorList& in) { return greater(in[0], in[1]); }, 1);
  add_case("greater_scalar", {{{100003}, Fill::Uniform, false}},
           [](const TensorList& in) { return greater_scalar(in[0], 0.125); }, 1);
  add_case("less_scalar", {{{6, 7}, Fill::Uniform, false}}, [](const TensorList& in) { return less_scalar(in[0], -0.2); },
           1);
  add_case("mask_to_float", {{{9, 11}, Fill::Uniform, false}},
           [](const TensorList& in) { return mask_to_float(greater_scalar(in[0], 0.0), in[0].dtype()); }, 1);
  add_case("where same shape", {{{100003}}, {{100003}}, {{100003}, Fill::Uniform, false}},
           [](const TensorList& in) { return where(greater_scalar(in[2], 0.0), in[0], in[1]); }, 1);
  add_case("where broadcast", {{{2, 3, 5}}, {{3, 1}}, {{5}, Fill::Uniform, false}},
           [](const TensorList& in) { return where(greater_scalar(in[2], 0.0), in[0], in[1]); }, 10);
  add_case("where scalar branch", {{{4, 6}}, {{4, 1, 6}, Fill::Uniform, false}},
           [](const TensorList& in) {
             return where(greater_scalar(in[1], 0.0), in[0], Tensor::scalar(0.5, in[0].dtype(), in[0].device()));
           },
           4);
  add_case("masked_fill", {{{7, 8}}, {{8}, Fill::Uniform, false}},
           [](const TensorList& in) { return masked_fill(in[0], greater_scalar(in[1], 0.3), -2.0); }, 1);
  add_case("relu chain (relu_backward twice)", {{{5, 9}, Fill::AwayFromZero}},
           [](const TensorList& in) { return mul(relu(in[0]), relu(in[0])); }, 1);
  add_case("composite", {{{3, 4, 5}, Fill::Positive}, {{4, 1}, Fill::Uniform}},
           [](const TensorList& in) { return div(mul(exp(in[1]), sqrt(in[0])), add_scalar(pow(in[0], 1.5), 1.0)); },
           15);
  run_cases(cases);
}

// ---- sum, mean, expand, sum_to ------------------------------------------------------------------

TEST_CASE("cuda reduce_sum: sum and mean over every kernel path match the CPU" * doctest::skip(!has_gpu())) {
  struct Reduction {
    Shape shape;
    Dims dims;
    const char* path;
  };
  const Reduction reductions[] = {
      {{1}, {}, "one element (copy)"},
      {{37}, {}, "short row"},
      {{100003}, {}, "one long row, two passes"},
      {{37, 50}, {1}, "rows, a warp each"},
      {{5, 3000}, {1}, "rows, a block each"},
      {{3, 70001}, {-1}, "few long rows, two passes"},
      {{7, 45}, {0}, "columns"},
      {{1000, 17}, {0}, "few columns over many rows, two passes"},
      {{4, 5, 6}, {1}, "middle dim (K, R, K)"},
      {{3, 400, 33}, {1}, "middle dim, two passes"},
      {{16, 5, 7, 7}, {0, 2, 3}, "per channel, short rows"},
      {{8, 3, 40, 35}, {0, 2, 3}, "per channel, long rows"},
      {{64, 3, 32, 32}, {0, 2, 3}, "per channel, two passes"},
      {{7, 3, 50, 55}, {0, 2, 3}, "per channel, long rows, two passes, chunks end mid-row"},
      {{5000, 3, 2, 2}, {0, 2, 3}, "per channel, short rows, two passes, chunks end mid-row"},
      {{3, 70000, 2}, {0, 2}, "per channel, many channels of tiny rows"},
      {{3, 4, 5, 6}, {0, 2}, "general (R, K, R, K)"},
      {{3, 4, 5, 6}, {1, 3}, "general (K, R, K, R)"},
      {{2, 3, 300, 4, 5}, {1, 3}, "general, a warp per output"},
      {{2, 50, 3, 50, 2}, {1, 3}, "general, a block per output"},
      {{2, 1, 3}, {1}, "a size-1 dim only (copy)"},
      {{5, 1, 1, 7}, {1, 2, 3}, "size-1 dims among reduced"},
  };
  std::vector<Case> cases;
  for (const Reduction& r : reductions) {
    int64_t terms = 1;
    for (size_t d = 0; d < r.shape.size(); ++d) {
      bool reduced = r.dims.empty();
      for (int64_t rd : r.dims) reduced = reduced || (rd < 0 ? rd + static_cast<int64_t>(r.shape.size()) : rd) == static_cast<int64_t>(d);
      if (reduced) terms *= r.shape[d];
    }
    for (bool keepdim : {false, true}) {
      Case c;
      c.name = std::string("sum ") + shape_str(r.shape) + (keepdim ? " keepdim" : "") + " (" + r.path + ")";
      c.inputs = {{r.shape}};
      const Dims dims = r.dims;
      c.fn = [dims, keepdim](const TensorList& in) { return sum(in[0], dims, keepdim); };
      c.terms = terms;
      cases.push_back(c);
    }
    Case m;
    m.name = std::string("mean ") + shape_str(r.shape) + " (" + r.path + ")";
    m.inputs = {{r.shape}};
    const Dims dims = r.dims;
    m.fn = [dims](const TensorList& in) { return mean(in[0], dims); };
    m.terms = terms;
    cases.push_back(m);
  }
  // A nonlinear function of a sum, so the double backward is not zero.
  Case sq;
  sq.name = "sum then square (nonzero double backward)";
  sq.inputs = {{{6, 5, 7}}};
  sq.fn = [](const TensorList& in) { return mul(sum(in[0], {1}), sum(in[0], {1})); };
  sq.terms = 5;
  cases.push_back(sq);
  run_cases(cases);
}

TEST_CASE("cuda reduce_sum: expand and sum_to match the CPU" * doctest::skip(!has_gpu())) {
  struct Pair {
    Shape small, big;
  };
  const Pair pairs[] = {
      {{3, 1, 1}, {2, 3, 5, 7}}, {{1}, {100003}}, {{}, {4, 5}},       {{5}, {3, 5}},
      {{4, 1}, {4, 129}},        {{1, 9}, {7, 9}}, {{2, 1, 3}, {5, 2, 4, 3}}, {{6, 7}, {6, 7}},
  };
  std::vector<Case> cases;
  for (const Pair& p : pairs) {
    const int64_t ratio = shape_numel(p.big) / std::max<int64_t>(shape_numel(p.small), 1);
    Case e;
    e.name = "expand " + shape_str(p.small) + " -> " + shape_str(p.big);
    e.inputs = {{p.small}};
    const Shape big = p.big, small = p.small;
    e.fn = [big](const TensorList& in) { return expand(in[0], big); };
    e.terms = ratio;
    cases.push_back(e);
    Case s;
    s.name = "sum_to " + shape_str(p.big) + " -> " + shape_str(p.small);
    s.inputs = {{p.big}};
    s.fn = [small](const TensorList& in) { return sum_to(in[0], small); };
    s.terms = ratio;
    cases.push_back(s);
    Case both;
    both.name = "expand * x then sum_to " + shape_str(p.small);
    both.inputs = {{p.small}, {p.big}};
    both.fn = [big, small](const TensorList& in) { return sum_to(mul(expand(in[0], big), in[1]), small); };
    both.terms = ratio;
    cases.push_back(both);
  }
  run_cases(cases);
}

TEST_CASE("cuda reduce_sum: sums are deterministic and empty sums are zero" * doctest::skip(!has_gpu())) {
  for (const Shape& s : {Shape{3, 70001}, Shape{100003}, Shape{64, 3, 32, 32}, Shape{1000, 17}}) {
    const Tensor x = random_tensor(s, DType::f32, 5).to(kGpu);
    const Dims dims = s.size() == 4 ? Dims{0, 2, 3} : (s.size() == 2 && s[1] == 17 ? Dims{0} : Dims{-1});
    const std::vector<float> first = sum(x, dims).to_vector<float>();
    const std::vector<float> second = sum(x, dims).to_vector<float>();
    CHECK_MESSAGE(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)) == 0,
                  "sum over " << shape_str(s) << " differs between two runs");
  }
  // Reducing a zero-size dim gives zeros, as on the CPU.
  const Tensor empty_rows = Tensor::empty({0, 5}, DType::f32, kGpu);
  const Tensor s = sum(empty_rows, {0});
  CHECK(s.shape() == Shape{5});
  for (float v : s.to_vector<float>()) CHECK(v == 0.0f);
}

// ---- unaligned data -------------------------------------------------------------------------------

TEST_CASE("cuda elementwise: views that start off a 16-byte boundary match the CPU" * doctest::skip(!has_gpu())) {
  for (DType dtype : {DType::f32, DType::f64}) {
    const std::string dt = dtype_name(dtype);
    const int64_t n = 10007;
    const Tensor base_a = random_tensor({n + 3}, dtype, 1, Fill::Positive), base_b = random_tensor({n + 3}, dtype, 2);
    const Tensor ga = base_a.to(kGpu), gb = base_b.to(kGpu);
    for (int64_t off : {1, 2, 3}) {
      const std::string tag = dt + " offset " + std::to_string(off);
      const Tensor ca = offset_view(base_a, off, {n}), cb = offset_view(base_b, 3 - off, {n});
      const Tensor xa = offset_view(ga, off, {n}), xb = offset_view(gb, 3 - off, {n});
      check_close("add " + tag, add(ca, cb), add(xa, xb), tolerance(dtype, 1));
      check_close("log " + tag, log(ca), log(xa), tolerance(dtype, 1));
      check_close("sum " + tag, sum(cb), sum(xb), tolerance(dtype, n));
      check_close("row sums " + tag, sum(cb.reshape({1, n}), {1}), sum(xb.reshape({1, n}), {1}), tolerance(dtype, n));
      check_close("convert " + tag, ca.to(DType::u8), xa.to(DType::u8), 0.0);
    }
  }
}

// ---- conversions and in-place updates ----------------------------------------------------------------

TEST_CASE("cuda elementwise: dtype conversions between every pair match the CPU" * doctest::skip(!has_gpu())) {
  const DType dtypes[] = {DType::f32, DType::f64, DType::i64, DType::u8};
  // Values in [0, 250) with fractions: every conversion is defined (no negative or
  // out-of-range value reaches u8), and float -> integer truncates the same way.
  std::vector<double> values(4099);
  std::mt19937 gen(3);
  std::uniform_real_distribution<double> dist(0.0, 250.0);
  for (double& v : values) v = dist(gen);
  const Tensor source = Tensor::from_vector(values, {4099});
  for (DType from : dtypes) {
    const Tensor cpu_from = source.to(from), gpu_from = cpu_from.to(kGpu);
    for (DType to : dtypes) {
      const Tensor c = cpu_from.to(to), g = gpu_from.to(to);
      CHECK(g.device() == kGpu);
      CHECK(g.dtype() == to);
      check_exact(std::string("to ") + dtype_name(from) + " -> " + dtype_name(to), c, g);
    }
  }
  // Casts between float types are differentiable: their gradient casts back.
  Tensor x = random_tensor({5, 7}, DType::f32, 4).to(kGpu);
  x.set_requires_grad(true);
  const Tensor y = x.to(DType::f64);
  const Tensor g = autograd::grad({sum(mul(y, y))}, {x})[0];
  CHECK(g.dtype() == DType::f32);
  CHECK(g.is_cuda());
  check_close("grad through f32 -> f64", mul_scalar(x.detach().to(Device::cpu()), 2.0), g, 1e-6);
}

TEST_CASE("cuda elementwise: fill_, add_ and mul_ on the device match the CPU" * doctest::skip(!has_gpu())) {
  for (const Shape& s : {Shape{}, Shape{1}, Shape{17}, Shape{4096}, Shape{100003}}) {
    for (DType dtype : {DType::f32, DType::f64, DType::i64, DType::u8}) {
      const Tensor c = Tensor::empty(s, dtype), g = Tensor::empty(s, dtype, kGpu);
      c.fill_(7.0);
      g.fill_(7.0);
      check_exact(std::string("fill_ ") + dtype_name(dtype), c, g);
      check_exact(std::string("full ") + dtype_name(dtype), Tensor::full(s, 3.0, dtype),
                  Tensor::full(s, 3.0, dtype, kGpu));
    }
    for (DType dtype : {DType::f32, DType::f64}) {
      const std::string dt = dtype_name(dtype);
      const Tensor c = random_tensor(s, dtype, 8), other = random_tensor(s, dtype, 9);
      const Tensor g = c.to(kGpu), other_g = other.to(kGpu);
      c.add_(other, -0.75);
      g.add_(other_g, -0.75);
      check_close("add_ " + dt, c, g, tolerance(dtype, 1));
      c.mul_(1.25);
      g.mul_(1.25);
      check_close("mul_ " + dt, c, g, tolerance(dtype, 1));
      c.zero_();
      g.zero_();
      check_exact("zero_ " + dt, c, g);
    }
  }
  // Unaligned in-place updates take the scalar path.
  const Tensor base = Tensor::zeros({1001}, DType::f32, kGpu);
  const Tensor view = offset_view(base, 1, {999});
  view.fill_(2.0);
  view.add_(Tensor::ones({999}, DType::f32, kGpu), 0.5);
  view.mul_(2.0);
  const std::vector<float> v = base.to_vector<float>();
  CHECK(v.front() == 0.0f);
  CHECK(v.back() == 0.0f);
  for (size_t i = 1; i < 1000; ++i) REQUIRE(v[i] == 5.0f);
}

TEST_CASE("cuda elementwise: mixing devices is a clear error" * doctest::skip(!has_gpu())) {
  const Tensor c = Tensor::ones({3}), g = Tensor::ones({3}, DType::f32, kGpu);
  CHECK_THROWS_WITH_AS(add(c, g), doctest::Contains("devices differ"), Error);
  CHECK_THROWS_WITH_AS(greater(g, c), doctest::Contains("devices differ"), Error);
  CHECK_THROWS_AS(g.add_(c), Error);
}
