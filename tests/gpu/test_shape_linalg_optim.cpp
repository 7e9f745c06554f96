// Data-movement ops (cat, narrow, pad_channels, channel_shuffle, index_select,
// index_add, dropout), matrix products (matmul, linear, transpose) and the fused
// optimizer updates on cuda:0 against the same computation on the CPU.
//
// For each op: random inputs on the CPU, the op on them and on .to(cuda:0) copies;
// then the gradients of sum(out * r) (r random) with create_graph, and the double
// backward: the gradient of sum_i <grad_i, w_i> with respect to the inputs and r.
// Every comparison reports its largest absolute and relative error.
//
// Tolerances.
//  - Data movement: 0. The kernels copy bits, and index_add adds in index order on both
//    devices, so forward, backward and double backward are bit-identical.
//  - Products: the GPU (cuBLAS, or the f64 tiled kernel) sums in its own order. A sum of
//    k products errs by at most (k + 3) eps sum|a_i b_i| (Higham 3.1); with entries of
//    random sign, sum|a_i b_i| is about sqrt(k) times the largest |result|, so an
//    element may differ by 2 (k + 3) eps sqrt(k) max|result|, with k the longest sum in
//    the forward or backward pass (max of M, N, K). A wrong index is off by O(max|result|).
//  - Optimizers: each step is the same few float operations, but the host compiler and
//    nvcc may fuse different multiply-adds: an ulp or two per step, relative.
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/optimizer_step.h"
#include "kernels/cuda/gemm_f64.h"
#include "kernels/cuda/optimizer_step.h"
#include "tests/gpu/gpu_test_util.h"

using namespace dmix;
using dmix::gpu_test::DeviceBuffer;
using dmix::gpu_test::has_gpu;

namespace {

const Device kGpu = Device::cuda(0);

std::vector<double> host_values(const Tensor& t) {
  const Tensor h = t.detach().to(Device::cpu());
  switch (h.dtype()) {
    case DType::f32: {
      const std::vector<float> v = h.to_vector<float>();
      return {v.begin(), v.end()};
    }
    case DType::f64: return h.to_vector<double>();
    case DType::i64: {
      const std::vector<int64_t> v = h.to_vector<int64_t>();
      return {v.begin(), v.end()};
    }
    case DType::u8: {
      const std::vector<uint8_t> v = h.to_vector<uint8_t>();
      return {v.begin(), v.end()};
    }
    default: FAIL("unexpected dtype " << dtype_name(h.dtype()));
  }
  return {};
}

// An element may differ by rel * |cpu value| + of_max * max |cpu value|.
struct Tolerance {
  double rel = 0.0, of_max = 0.0;
};
const Tolerance kExact{};

Tolerance product_tolerance(int64_t longest_sum, DType dtype) {
  const double eps = dtype == DType::f32 ? FLT_EPSILON : DBL_EPSILON;
  const double k = static_cast<double>(std::max<int64_t>(longest_sum, 1));
  return Tolerance{0.0, 2.0 * (k + 3.0) * eps * std::sqrt(k)};
}

void check_match(const std::string& what, const Tensor& cpu, const Tensor& gpu, Tolerance tol) {
  REQUIRE_MESSAGE(cpu.defined(), what << ": no CPU result");
  REQUIRE_MESSAGE(gpu.defined(), what << ": no GPU result");
  CHECK_MESSAGE(gpu.is_cuda(), what << ": the GPU result is on " << gpu.device().str());
  REQUIRE_MESSAGE(cpu.shape() == gpu.shape(), what << ": shapes " << shape_str(cpu.shape()) << " (cpu) vs "
                                                   << shape_str(gpu.shape()) << " (gpu)");
  CHECK(cpu.dtype() == gpu.dtype());
  const std::vector<double> a = host_values(cpu), b = host_values(gpu);
  double largest = 0.0;
  for (double v : a) largest = std::max(largest, std::abs(v));
  double max_abs = 0.0, max_rel = 0.0;
  int64_t failures = 0, worst = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(a[i] - b[i]);
    const bool same = a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]));
    if (!same && !(err <= tol.rel * std::abs(a[i]) + tol.of_max * largest)) {
      ++failures;
      if (worst < 0) worst = static_cast<int64_t>(i);
    }
    if (!same) {
      max_abs = std::max(max_abs, err);
      if (a[i] != 0.0) max_rel = std::max(max_rel, err / std::abs(a[i]));
    }
  }
  MESSAGE(what << " " << shape_str(cpu.shape()) << " " << dtype_name(cpu.dtype()) << ": max abs err " << max_abs
               << ", max rel err " << max_rel);
  CHECK_MESSAGE(failures == 0, what << ": " << failures << " element(s) out of tolerance, first at flat index " << worst
                                    << " (cpu " << a[static_cast<size_t>(worst < 0 ? 0 : worst)] << ", gpu "
                                    << b[static_cast<size_t>(worst < 0 ? 0 : worst)] << ")");
}

// f(inputs, device) runs the op on tensors of `device`; it may place other arguments
// (indices) there itself.
using OpOnDevice = std::function<Tensor(const TensorList&, Device)>;

struct Tolerances {
  Tolerance forward, backward, double_backward;
};

// Forward, backward and double backward of f on the CPU and on the GPU. Float inputs
// become leaves that require grad; other inputs are passed along (moved to the GPU).
void check_op(const std::string& name, const OpOnDevice& f, const TensorList& inputs, const Tolerances& tol,
              uint64_t seed = 1) {
  TensorList cpu_in, gpu_in, cpu_leaves, gpu_leaves;
  for (const Tensor& t : inputs) {
    Tensor c = t.detach(), g = t.detach().to(kGpu);
    if (is_floating(t.dtype())) {
      c.set_requires_grad();
      g.set_requires_grad();
      cpu_leaves.push_back(c);
      gpu_leaves.push_back(g);
    }
    cpu_in.push_back(c);
    gpu_in.push_back(g);
  }
  const Tensor out_cpu = f(cpu_in, Device::cpu());
  const Tensor out_gpu = f(gpu_in, kGpu);
  check_match(name + " forward", out_cpu, out_gpu, tol.forward);
  if (cpu_leaves.empty() || !is_floating(out_cpu.dtype()) || !out_cpu.requires_grad()) return;

  Generator gen(seed);
  Tensor r_cpu = gen.uniform(out_cpu.shape(), -1.0, 1.0, out_cpu.dtype());
  Tensor r_gpu = r_cpu.to(kGpu);
  r_cpu.set_requires_grad();
  r_gpu.set_requires_grad();
  const TensorList grads_cpu = autograd::grad({sum(mul(out_cpu, r_cpu))}, cpu_leaves, {}, true, true);
  const TensorList grads_gpu = autograd::grad({sum(mul(out_gpu, r_gpu))}, gpu_leaves, {}, true, true);
  for (size_t i = 0; i < grads_cpu.size(); ++i)
    check_match(name + " backward, input " + std::to_string(i), grads_cpu[i], grads_gpu[i], tol.backward);

  // <grads, w> with the same random w on both devices, differentiated again with
  // respect to the inputs and r.
  Tensor second_cpu, second_gpu;
  for (size_t i = 0; i < grads_cpu.size(); ++i) {
    const Tensor w = gen.uniform(grads_cpu[i].shape(), -1.0, 1.0, grads_cpu[i].dtype());
    const Tensor term_cpu = sum(mul(grads_cpu[i], w)), term_gpu = sum(mul(grads_gpu[i], w.to(kGpu)));
    second_cpu = second_cpu.defined() ? add(second_cpu, term_cpu) : term_cpu;
    second_gpu = second_gpu.defined() ? add(second_gpu, term_gpu) : term_gpu;
  }
  TensorList wrt_cpu = cpu_leaves, wrt_gpu = gpu_leaves;
  wrt_cpu.push_back(r_cpu);
  wrt_gpu.push_back(r_gpu);
  const TensorList hess_cpu = autograd::grad({second_cpu}, wrt_cpu, {}, false, true);
  const TensorList hess_gpu = autograd::grad({second_gpu}, wrt_gpu, {}, false, true);
  for (size_t i = 0; i < hess_cpu.size(); ++i) {
    const std::string wrt = i + 1 == hess_cpu.size() ? "r" : "input " + std::to_string(i);
    check_match(name + " double backward, w.r.t. " + wrt, hess_cpu[i], hess_gpu[i], tol.double_backward);
  }
}

const Tolerances kAllExact{kExact, kExact, kExact};

Tensor random(const Shape& shape, DType dtype, uint64_t seed) {
  Generator g(seed);
  return g.uniform(shape, -1.0, 1.0, dtype);
}

Tensor index_tensor(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

const DType kFloatTypes[] = {DType::f32, DType::f64};

}  // namespace

// ---- data movement -----------------------------------------------------------------------

TEST_CASE("cuda shape ops: cat along every dim, odd sizes, f32 and f64" * doctest::skip(!has_gpu())) {
  uint64_t seed = 1;
  for (DType dt : kFloatTypes) {
    for (int64_t dim : {0, 1, 2, -1}) {
      Shape a = {3, 5, 7}, b = a, c = a;
      const int64_t d = dim < 0 ? dim + 3 : dim;
      b[d] = 1;
      c[d] = 4;
      check_op("cat dim " + std::to_string(dim), [dim](const TensorList& xs, Device) { return cat(xs, dim); },
               {random(a, dt, seed), random(b, dt, seed + 1), random(c, dt, seed + 2)}, kAllExact, seed);
      seed += 3;
    }
    check_op("cat of one", [](const TensorList& xs, Device) { return cat(xs, 0); }, {random({2, 3}, dt, 9)},
             kAllExact);
  }
}

TEST_CASE("cuda shape ops: cat of integer tensors, and one larger than a grid pass" * doctest::skip(!has_gpu())) {
  const Tensor labels_a = index_tensor({3, 1, 4, 1, 5}), labels_b = index_tensor({9, 2});
  check_op("cat i64", [](const TensorList& xs, Device) { return cat(xs, 0); }, {labels_a, labels_b}, kAllExact);
  Generator g(4);
  // 2 x 5M + 2 x 4M bytes: more elements than one pass of the grid (65535 x 256 threads).
  const Tensor big_a = g.bernoulli({2, 5000000}, 0.5, DType::u8), big_b = g.bernoulli({2, 4000001}, 0.5, DType::u8);
  check_op("cat u8 (large)", [](const TensorList& xs, Device) { return cat(xs, 1); }, {big_a, big_b}, kAllExact);
}

TEST_CASE("cuda shape ops: narrow and pad_channels" * doctest::skip(!has_gpu())) {
  uint64_t seed = 20;
  for (DType dt : kFloatTypes) {
    const Tensor x = random({4, 6, 5, 3}, dt, seed++);
    struct Range {
      int64_t dim, start, length;
    };
    for (const Range& r : {Range{0, 1, 2}, Range{1, 0, 6}, Range{1, 5, 1}, Range{2, 2, 3}, Range{-1, 1, 1},
                           Range{1, 3, 0}}) {
      check_op("narrow dim " + std::to_string(r.dim) + " [" + std::to_string(r.start) + ", +" +
                   std::to_string(r.length) + ")",
               [r](const TensorList& xs, Device) { return narrow(xs[0], r.dim, r.start, r.length); }, {x}, kAllExact,
               seed++);
    }
    for (int64_t extra : {0, 1, 5}) {
      check_op("pad_channels +" + std::to_string(extra),
               [extra](const TensorList& xs, Device) { return pad_channels(xs[0], extra); },
               {random({2, 3, 5, 7}, dt, seed)}, kAllExact, seed + 1);
      seed += 2;
    }
  }
}

TEST_CASE("cuda shape ops: channel_shuffle" * doctest::skip(!has_gpu())) {
  uint64_t seed = 40;
  for (DType dt : kFloatTypes) {
    struct Case {
      Shape shape;
      int64_t groups;
    };
    for (const Case& c : {Case{{2, 6, 5, 3}, 2}, Case{{2, 6, 5, 3}, 3}, Case{{1, 12, 1, 1}, 4}, Case{{3, 8}, 2},
                          Case{{2, 5, 3, 3}, 1}, Case{{2, 5, 3, 3}, 5}}) {
      check_op("channel_shuffle groups " + std::to_string(c.groups),
               [g = c.groups](const TensorList& xs, Device) { return channel_shuffle(xs[0], g); },
               {random(c.shape, dt, seed)}, kAllExact, seed + 1);
      seed += 2;
    }
  }
}

TEST_CASE("cuda shape ops: index_select and index_add, repeated indices, index on either device" *
          doctest::skip(!has_gpu())) {
  uint64_t seed = 60;
  const Tensor index = index_tensor({4, 0, 4, 2, 4, 1});  // repeats: index_add sums them in index order
  for (DType dt : kFloatTypes) {
    for (int64_t dim : {0, 1, -1}) {
      for (bool index_on_gpu : {false, true}) {
        auto place = [index_on_gpu](const Tensor& i, Device d) { return index_on_gpu ? i.to(d) : i; };
        const std::string where = index_on_gpu ? " (index on the device)" : " (index on the cpu)";
        Shape shape = {5, 5, 7};
        check_op("index_select dim " + std::to_string(dim) + where,
                 [&](const TensorList& xs, Device d) { return index_select(xs[0], dim, place(index, d)); },
                 {random(shape, dt, seed)}, kAllExact, seed + 1);
        Shape src_shape = {5, 5, 7};
        src_shape[dim < 0 ? dim + 3 : dim] = index.numel();
        check_op("index_add dim " + std::to_string(dim) + where,
                 [&](const TensorList& xs, Device d) { return index_add(xs[0], dim, place(index, d), 9); },
                 {random(src_shape, dt, seed + 2)}, kAllExact, seed + 3);
        seed += 4;
      }
    }
  }
  // Many repeats of one row: a long in-order sum that must still match the CPU's bit for bit.
  std::vector<int64_t> many(300, 1);
  for (size_t i = 0; i < many.size(); i += 7) many[i] = 0;
  const Tensor many_index = index_tensor(many);
  check_op("index_add, 300 sources onto 2 rows",
           [&](const TensorList& xs, Device d) { return index_add(xs[0], 0, many_index.to(d), 2); },
           {random({300, 33}, DType::f32, 99)}, kAllExact);
  // Integer data gathers too (no gradients).
  check_op("index_select i64", [&](const TensorList& xs, Device d) { return index_select(xs[0], 0, index.to(d)); },
           {index_tensor({10, 11, 12, 13, 14})}, kAllExact);
}

TEST_CASE("cuda shape ops: index errors are reported with the offending position" * doctest::skip(!has_gpu())) {
  const Tensor x = Tensor::zeros({3, 4}, DType::f32, kGpu);
  CHECK_THROWS_AS(index_select(x, 0, index_tensor({0, 3}).to(kGpu)), Error);
  CHECK_THROWS_AS(index_add(x, 1, index_tensor({0, 1, 2, -1}), 4), Error);
  try {
    index_select(x, 0, index_tensor({1, 7}));
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("position 1") != std::string::npos);
  }
}

TEST_CASE("cuda shape ops: dropout draws the CPU's mask on the device" * doctest::skip(!has_gpu())) {
  for (DType dt : kFloatTypes) {
    for (double p : {0.1, 0.5}) {
      check_op("dropout p " + std::to_string(p),
               [p](const TensorList& xs, Device) {
                 Generator gen(123);
                 return dropout(xs[0], p, /*training=*/true, gen);
               },
               {random({4, 3, 17}, dt, 7)}, kAllExact);
    }
  }
}

// ---- products --------------------------------------------------------------------------------

TEST_CASE("cuda linalg: matmul forward, backward and double backward against the CPU" * doctest::skip(!has_gpu())) {
  struct Dims {
    int64_t M, K, N;
  };
  uint64_t seed = 200;
  for (DType dt : kFloatTypes) {
    for (const Dims& d : {Dims{1, 1, 1}, Dims{7, 13, 5}, Dims{33, 65, 17}, Dims{130, 257, 129}, Dims{1, 300, 2}}) {
      const Tolerance t = product_tolerance(std::max({d.M, d.N, d.K}), dt);
      check_op("matmul " + std::to_string(d.M) + "x" + std::to_string(d.K) + "x" + std::to_string(d.N),
               [](const TensorList& xs, Device) { return matmul(xs[0], xs[1]); },
               {random({d.M, d.K}, dt, seed), random({d.K, d.N}, dt, seed + 1)}, {t, t, t}, seed + 2);
      seed += 3;
    }
  }
}

TEST_CASE("cuda linalg: matmul with an empty inner dimension gives zeros" * doctest::skip(!has_gpu())) {
  for (DType dt : kFloatTypes) {
    const Tensor a = Tensor::zeros({3, 0}, dt, kGpu), b = Tensor::zeros({0, 4}, dt, kGpu);
    const Tensor c = matmul(a, b);
    CHECK(c.shape() == Shape{3, 4});
    for (double v : host_values(c)) CHECK(v == 0.0);
  }
}

TEST_CASE("cuda linalg: linear with and without bias, batched input" * doctest::skip(!has_gpu())) {
  uint64_t seed = 300;
  for (DType dt : kFloatTypes) {
    struct Case {
      Shape x;
      int64_t out;
      bool bias;
    };
    for (const Case& c : {Case{{5, 7}, 3, true}, Case{{5, 7}, 3, false}, Case{{2, 3, 33}, 65, true},
                          Case{{129, 64}, 10, true}, Case{{1, 1}, 1, true}}) {
      const int64_t in = c.x.back();
      int64_t rows = 1;
      for (size_t i = 0; i + 1 < c.x.size(); ++i) rows *= c.x[i];
      const Tolerance t = product_tolerance(std::max({rows, in, c.out}), dt);
      const Tensor x = random(c.x, dt, seed), w = random({c.out, in}, dt, seed + 1);
      const TensorList inputs = c.bias ? TensorList{x, w, random({c.out}, dt, seed + 2)} : TensorList{x, w};
      check_op(std::string("linear ") + shape_str(c.x) + " -> " + std::to_string(c.out) + (c.bias ? " + bias" : ""),
               [](const TensorList& xs, Device) {
                 return xs.size() == 3 ? linear(xs[0], xs[1], xs[2]) : linear(xs[0], xs[1]);
               },
               inputs, {t, t, t}, seed + 3);
      seed += 4;
    }
  }
}

TEST_CASE("cuda linalg: transpose, including more row tiles than one grid pass" * doctest::skip(!has_gpu())) {
  uint64_t seed = 400;
  for (DType dt : kFloatTypes) {
    for (const Shape& s : {Shape{1, 1}, Shape{31, 33}, Shape{64, 64}, Shape{100, 3}, Shape{3, 1000}}) {
      check_op("transpose", [](const TensorList& xs, Device) { return transpose(xs[0]); }, {random(s, dt, seed)},
               kAllExact, seed + 1);
      seed += 2;
    }
  }
  // 32 x 65535 rows is one grid pass over row tiles.
  check_op("transpose (tall)", [](const TensorList& xs, Device) { return transpose(xs[0]); },
           {random({32 * 65535 + 77, 3}, DType::f32, 5)}, kAllExact);
}

TEST_CASE("cuda gemm f64: gemm_tiled for doubles against a CPU reference, all transposes, alpha, beta, padding" *
          doctest::skip(!has_gpu())) {
  struct Case {
    int64_t M, N, K, pad;
    double alpha, beta;
  };
  uint64_t seed = 500;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (const Case& c : {Case{1, 1, 1, 0, 1.0, 0.0}, Case{17, 100, 257, 0, 1.0, 0.0}, Case{65, 63, 16, 3, 1.5, -0.75},
                            Case{130, 1, 33, 1, -2.0, 1.0}, Case{5, 7, 0, 0, 1.0, 0.5}}) {
        const int64_t lda = std::max<int64_t>(1, ta ? c.M : c.K) + c.pad, ldb = std::max<int64_t>(1, tb ? c.K : c.N) + c.pad;
        const int64_t ldc = std::max<int64_t>(1, c.N) + c.pad;
        Generator g(seed++);
        const std::vector<double> A = g.uniform({(ta ? c.K : c.M) * lda}, -1, 1, DType::f64).to_vector<double>();
        const std::vector<double> B = g.uniform({(tb ? c.N : c.K) * ldb}, -1, 1, DType::f64).to_vector<double>();
        std::vector<double> C = g.uniform({c.M * ldc}, -1, 1, DType::f64).to_vector<double>();
        if (c.beta == 0.0) std::fill(C.begin(), C.end(), std::numeric_limits<double>::quiet_NaN());
        std::vector<double> expected = C, allowed(C.size(), 0.0);
        for (int64_t i = 0; i < c.M; ++i) {
          for (int64_t j = 0; j < c.N; ++j) {
            double s = 0.0, magnitude = 0.0;
            for (int64_t k = 0; k < c.K; ++k) {
              const double p = (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
              s += p;
              magnitude += std::abs(p);
            }
            const double c0 = c.beta == 0.0 ? 0.0 : C[i * ldc + j];
            expected[i * ldc + j] = c.alpha * s + c.beta * c0;
            allowed[i * ldc + j] = 2.0 * (c.K + 3) * DBL_EPSILON * (std::abs(c.alpha) * magnitude + std::abs(c.beta * c0));
          }
        }
        DeviceBuffer<double> a(A.size()), b(B.size()), cbuf(C.size());
        a.upload(A);
        b.upload(B);
        cbuf.upload(C);
        kernels::cuda::gemm_tiled(ta, tb, c.M, c.N, c.K, c.alpha, a.get(), lda, b.get(), ldb, c.beta, cbuf.get(), ldc, 0);
        const std::vector<double> got = cbuf.download();
        double max_abs = 0.0;
        int64_t failures = 0;
        for (int64_t i = 0; i < c.M; ++i) {
          for (int64_t j = 0; j < ldc; ++j) {
            const size_t at = static_cast<size_t>(i * ldc + j);
            if (j >= c.N) {  // padding: untouched (NaN stays NaN)
              failures += !(got[at] == C[at] || (std::isnan(got[at]) && std::isnan(C[at])));
              continue;
            }
            const double err = std::abs(got[at] - expected[at]);
            max_abs = std::max(max_abs, err);
            failures += !(err <= allowed[at]);
          }
        }
        MESSAGE("gemm_tiled f64 " << (ta ? "T" : "N") << (tb ? "T" : "N") << " M=" << c.M << " N=" << c.N << " K="
                                  << c.K << " alpha=" << c.alpha << " beta=" << c.beta << ": max abs err " << max_abs);
        CHECK(failures == 0);
      }
    }
  }
}

// ---- optimizer updates ------------------------------------------------------------------------

namespace {

struct HostAndDevice {
  std::vector<float> host;
  DeviceBuffer<float> device;
  explicit HostAndDevice(std::vector<float> values) : host(std::move(values)), device(host.size()) {
    device.upload(host);
  }
};

void compare_floats(const std::string& what, const std::vector<float>& cpu, const std::vector<float>& gpu, double rel) {
  REQUIRE(cpu.size() == gpu.size());
  double largest = 0.0, max_abs = 0.0, max_rel = 0.0;
  for (float v : cpu) largest = std::max(largest, double(std::abs(v)));
  int64_t failures = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double err = std::abs(double(cpu[i]) - double(gpu[i]));
    max_abs = std::max(max_abs, err);
    if (cpu[i] != 0.0f) max_rel = std::max(max_rel, err / std::abs(double(cpu[i])));
    failures += !(err <= rel * (std::abs(double(cpu[i])) + 1e-3 * largest));
  }
  MESSAGE(what << ": max abs err " << max_abs << ", max rel err " << max_rel);
  CHECK_MESSAGE(failures == 0, what << ": " << failures << " element(s) out of tolerance");
}

std::vector<float> uniform_floats(int64_t n, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  return g.uniform({n}, lo, hi, DType::f32).to_vector<float>();
}

}  // namespace

TEST_CASE("cuda optimizers: SGD steps match the CPU after several steps" * doctest::skip(!has_gpu())) {
  struct Options {
    float momentum, weight_decay;
    bool nesterov;
  };
  constexpr int kSteps = 6;
  uint64_t seed = 700;
  for (int64_t n : {int64_t(1), int64_t(1001), (int64_t(1) << 20) + 3}) {
    for (const Options& o : {Options{0.0f, 0.0f, false}, Options{0.0f, 1e-2f, false}, Options{0.9f, 5e-4f, false},
                             Options{0.9f, 1e-4f, true}}) {
      std::vector<float> p_cpu = uniform_floats(n, seed++, -1, 1), buf_cpu(static_cast<size_t>(n), 0.0f);
      HostAndDevice p(p_cpu), buf(buf_cpu);
      for (int step = 0; step < kSteps; ++step) {
        HostAndDevice g(uniform_floats(n, seed++, -1, 1));
        float* bc = o.momentum > 0 ? buf_cpu.data() : nullptr;
        float* bd = o.momentum > 0 ? buf.device.get() : nullptr;
        kernels::cpu::sgd_step(p_cpu.data(), g.host.data(), bc, n, 0.1f, o.momentum, o.weight_decay, o.nesterov,
                               step == 0);
        kernels::cuda::sgd_step(p.device.get(), g.device.get(), bd, n, 0.1f, o.momentum, o.weight_decay, o.nesterov,
                                step == 0, 0);
      }
      const std::string what = "sgd n=" + std::to_string(n) + " momentum " + std::to_string(o.momentum) + " wd " +
                               std::to_string(o.weight_decay) + (o.nesterov ? " nesterov" : "");
      compare_floats(what + " params", p_cpu, p.device.download(), 4.0 * kSteps * FLT_EPSILON);
      if (o.momentum > 0) compare_floats(what + " momentum", buf_cpu, buf.device.download(), 4.0 * kSteps * FLT_EPSILON);
    }
  }
}

TEST_CASE("cuda optimizers: Adam steps match the CPU after several steps" * doctest::skip(!has_gpu())) {
  constexpr int kSteps = 6;
  uint64_t seed = 800;
  for (int64_t n : {int64_t(1), int64_t(1001), (int64_t(1) << 20) + 3}) {
    for (float wd : {0.0f, 1e-2f}) {
      std::vector<float> p_cpu = uniform_floats(n, seed++, -1, 1), m_cpu(static_cast<size_t>(n), 0.0f),
                         v_cpu(static_cast<size_t>(n), 0.0f);
      HostAndDevice p(p_cpu), m(m_cpu), v(v_cpu);
      for (int64_t t = 1; t <= kSteps; ++t) {
        HostAndDevice g(uniform_floats(n, seed++, -1, 1));
        kernels::cpu::adam_step(p_cpu.data(), g.host.data(), m_cpu.data(), v_cpu.data(), n, 1e-3f, 0.9f, 0.999f, 1e-8f,
                                wd, t);
        kernels::cuda::adam_step(p.device.get(), g.device.get(), m.device.get(), v.device.get(), n, 1e-3f, 0.9f, 0.999f,
                                 1e-8f, wd, t, 0);
      }
      const std::string what = "adam n=" + std::to_string(n) + " wd " + std::to_string(wd);
      compare_floats(what + " params", p_cpu, p.device.download(), 4.0 * kSteps * FLT_EPSILON);
      compare_floats(what + " first moment", m_cpu, m.device.download(), 4.0 * kSteps * FLT_EPSILON);
      compare_floats(what + " second moment", v_cpu, v.device.download(), 4.0 * kSteps * FLT_EPSILON);
    }
  }
}

TEST_CASE("cuda optimizers: sum_of_squares matches the CPU and is the same on every run" * doctest::skip(!has_gpu())) {
  for (int64_t n : {0, 1, 1000, 256 * 16 * 1024 + 17, 5000000}) {
    const std::vector<float> x = n > 0 ? uniform_floats(n, 900 + n, -2, 2) : std::vector<float>{};
    DeviceBuffer<float> d(std::max<size_t>(x.size(), 1));
    if (n > 0) d.upload(x);
    const double cpu = kernels::cpu::sum_of_squares(x.data(), n);
    const double gpu = kernels::cuda::sum_of_squares(d.get(), n, 0);
    const double again = kernels::cuda::sum_of_squares(d.get(), n, 0);
    const double allowed = (double(n) + 8.0) * DBL_EPSILON * cpu;
    MESSAGE("sum_of_squares n=" << n << ": cpu " << cpu << ", gpu " << gpu << ", abs err " << std::abs(cpu - gpu)
                                << " (allowed " << allowed << ")");
    CHECK(std::abs(cpu - gpu) <= allowed);
    CHECK(gpu == again);
  }
}
