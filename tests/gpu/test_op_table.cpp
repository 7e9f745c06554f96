// The op table on the GPU: every row of tests/engine/op_table.h (the rows the engine suite
// holds against naive loops and finite differences) runs on cuda:0, in f32 and in f64, and
// its forward, first-order gradients d<fn(x), r>/dx and second-order gradients
// d<grad_x <fn(x), r>, w>/dx are held against the CPU's f64 answer on the same inputs
// (tests/engine/op_table.cpp's evaluate_row does both runs the same way).
//
// Every op of the table has a CUDA path: a row whose op throws on a CUDA tensor, or
// returns a result (or a gradient) on the CPU or in another dtype, fails here; no row is
// exempt. Integer inputs (labels, indices) move to the device with the float ones.
//
// Inputs, r and w are rounded to f32 first, so the f32 run sees exactly the values of the
// f64 answer and its error is the op's own. Tolerances, relative to max(1, max |answer|):
// f32 the row's gpu_tolerance (forward) and gpu_grad_tolerance (both gradient orders), f64
// 1e-10 for every row (kF64Tolerance). TF32 is switched off while the table runs: it is a
// choice of the user, checked by its own cases (test_conv_pool.cpp, test_cuda_gemm.cpp).
// DMIX_OP_REPORT=1 prints every row's errors, with the CPU's own f32 error for scale.
#include <doctest/doctest.h>

#include <exception>
#include <limits>
#include <sstream>
#include <string>

#include "kernels/cuda/gemm.h"
#include "tests/engine/op_table.h"
#include "tests/gpu/gpu_test_util.h"

using namespace dmix;
using namespace dmix::testing;
using dmix::gpu_test::has_gpu;

namespace {

const Device kGpu = Device::cuda(0);
constexpr double kF64Tolerance = 1e-10;  // as the CPU suite asks of f64 against the naive reference

// Holds TF32 off for a test case and restores the process-wide switch after it.
struct StrictFp32 {
  bool saved = kernels::cuda::allow_tf32();
  StrictFp32() { kernels::cuda::set_allow_tf32(false); }
  ~StrictFp32() { kernels::cuda::set_allow_tf32(saved); }
};

// The largest error over one kind of result: the forward (order 0), or the gradients of one
// order over every differentiable input.
double error_of(const RowResults& got, const RowResults& want, int order) {
  if (order == 0) return max_relative_error(got.forward, want.forward);
  const auto& g = order == 1 ? got.grad : got.grad2;
  const auto& w = order == 1 ? want.grad : want.grad2;
  if (g.size() != w.size()) return std::numeric_limits<double>::infinity();  // a gradient went missing
  double worst = 0.0;
  for (size_t k = 0; k < g.size(); ++k) {
    const double e = max_relative_error(g[k], w[k]);
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

// One row, one kind of result, on the GPU in f32 and f64 against the CPU's f64 answer.
void check_row(const OpCase& c, int order, uint64_t input_seed, uint64_t projection_seed) {
  // Strings, not const char*: doctest would print a pointer.
  const std::string what = order == 0 ? "forward" : order == 1 ? "first-order gradients" : "second-order gradients";
  try {
    const TensorList inputs = round_to_f32(make_inputs(c, DType::f64, input_seed));
    const RowResults want = evaluate_row(c, inputs, DType::f64, Device::cpu(), order, projection_seed);
    const RowResults cpu32 = evaluate_row(c, inputs, DType::f32, Device::cpu(), order, projection_seed);
    const RowResults gpu32 = evaluate_row(c, inputs, DType::f32, kGpu, order, projection_seed);
    const RowResults gpu64 = evaluate_row(c, inputs, DType::f64, kGpu, order, projection_seed);
    for (const RowResults* run : {&gpu32, &gpu64})
      for (const std::string& m : run->misplaced) FAIL_CHECK(c.name << ": " << m);

    const double tolerance = order == 0 ? c.gpu_tolerance : c.gpu_grad_tolerance;
    const double e32 = error_of(gpu32, want, order), e64 = error_of(gpu64, want, order);
    const double e_cpu = error_of(cpu32, want, order);
    std::ostringstream os;
    os << c.name << ": gpu " << what << " max rel error f32 " << e32 << " (allowed " << tolerance << ", cpu f32 "
       << e_cpu << "), f64 " << e64 << " (allowed " << kF64Tolerance << ")";
    const std::string line = os.str();
    CHECK_MESSAGE(e32 <= tolerance, line);
    CHECK_MESSAGE(e64 <= kF64Tolerance, line);
    if (op_report()) MESSAGE(line);
  } catch (const std::exception& e) {
    // An op without a CUDA path (or failing on one) fails its row; the other rows still run.
    FAIL_CHECK(c.name << ": " << what << " on " << kGpu.str() << " threw: " << std::string(e.what()));
  }
}

}  // namespace

// The seeds are those of the CPU suite (tests/engine/test_op_table.cpp): the same inputs,
// already known to sit away from every kink.

TEST_CASE("op table on the GPU: forward matches the CPU's f64 answer in f32 and f64" * doctest::skip(!has_gpu())) {
  const StrictFp32 strict;
  CHECK(op_cases().size() >= 20);
  for (const OpCase& c : op_cases()) check_row(c, 0, 1, 0);
}

TEST_CASE("op table on the GPU: first-order gradients match the CPU's f64 answer" * doctest::skip(!has_gpu())) {
  const StrictFp32 strict;
  int checked = 0;
  for (const OpCase& c : op_cases()) {
    if (!c.gradcheck) continue;
    check_row(c, 1, 2, 3);
    ++checked;
  }
  CHECK(checked > 0);
}

TEST_CASE("op table on the GPU: second-order gradients match the CPU's f64 answer" * doctest::skip(!has_gpu())) {
  const StrictFp32 strict;
  int checked = 0;
  for (const OpCase& c : op_cases()) {
    if (!c.gradcheck || !c.gradgradcheck) continue;
    check_row(c, 2, 4, 5);
    ++checked;
  }
  CHECK(checked > 0);
}
