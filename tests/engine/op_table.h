// The op table: one row per op (or op variant) drives the generic tests in
// test_op_table.cpp — forward against a naive reference loop (f64 and f32), gradient
// against central finite differences in f64, and second order (gradgradcheck) — and,
// on a machine with a GPU, tests/gpu/test_op_table.cpp, which runs every row on cuda:0
// against the CPU's f64 answer: every op of the table has a CUDA path by construction.
// A family of ops registers its rows from its own file, tests/engine/ops/rows_<family>.cpp,
// compiled once (the CMake object library dmix_op_table) into both suites:
//
//   static OpCaseRegistrar reg_relu({
//       .name = "relu",
//       .inputs = {InputSpec::away_from_zero({3, 4})},   // keep off the kink at 0
//       .fn = [](const TensorList& in) { return relu(in[0]); },
//       .reference = [](const Inputs& in) { ... plain loops on doubles ... },
//   });
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/ops.h"

namespace dmix::testing {

struct InputSpec {
  enum class Fill {
    Uniform,       // uniform in [lo, hi)
    AwayFromZero,  // |v| uniform in [lo, hi) with a random sign (lo > 0): stays off kinks at 0
    Distinct,      // a shuffled even grid over [lo, hi): no ties, gaps >> fd step (max, max_pool)
    Integer,       // i64 uniform in [lo, hi): labels and indices, never differentiated
  };
  Shape shape;
  Fill fill = Fill::Uniform;
  double lo = -1.0, hi = 1.0;
  bool differentiable = true;

  static InputSpec uniform(Shape s, double lo = -1.0, double hi = 1.0) { return {std::move(s), Fill::Uniform, lo, hi, true}; }
  static InputSpec positive(Shape s, double lo = 0.5, double hi = 2.0) { return {std::move(s), Fill::Uniform, lo, hi, true}; }
  static InputSpec away_from_zero(Shape s, double lo = 0.1, double hi = 1.0) { return {std::move(s), Fill::AwayFromZero, lo, hi, true}; }
  static InputSpec distinct(Shape s, double lo = -1.0, double hi = 1.0) { return {std::move(s), Fill::Distinct, lo, hi, true}; }
  static InputSpec integer(Shape s, int64_t lo, int64_t hi) { return {std::move(s), Fill::Integer, double(lo), double(hi), false}; }
  static InputSpec constant_uniform(Shape s, double lo = -1.0, double hi = 1.0) { return {std::move(s), Fill::Uniform, lo, hi, false}; }
};

// Inputs as plain doubles in row-major order (integers converted), for the reference.
using Inputs = std::vector<std::vector<double>>;

struct OpCase {
  std::string name;
  std::vector<InputSpec> inputs;
  std::function<Tensor(const TensorList&)> fn;                  // the op under test
  std::function<std::vector<double>(const Inputs&)> reference;  // naive loops, row-major result
  bool gradcheck = true;
  bool gradgradcheck = true;
  double f32_tolerance = 1e-4;  // forward in f32 vs the f64 reference, relative to max |ref|
  double grad_tolerance = 1e-5; // analytic vs central finite differences (step 1e-6) in f64
  // The row on cuda:0 in f32 against the CPU's f64 answer on the same (f32-representable)
  // inputs, relative to max(1, max |answer|): the forward, and the first- and second-order
  // gradients (evaluate_row). The GPU rounds like the CPU's f32 but sums in its own order;
  // the CPU's own f32 error on the table's rows was at most 3e-7 on this measure when the
  // defaults were set, and an indexing or launch bug is off by O(0.1). Rows whose CUDA
  // path is a vendor library free to pick its algorithm (cuDNN: FFT, Winograd) ask for
  // more. In f64 the GPU must agree to 1e-10 whatever the row.
  double gpu_tolerance = 1e-5;
  double gpu_grad_tolerance = 1e-5;
};

std::vector<OpCase>& op_cases();
struct OpCaseRegistrar {
  explicit OpCaseRegistrar(OpCase c) { op_cases().push_back(std::move(c)); }
};

// Makes the tensors for a case (f64 unless the spec is Integer), seeded by case name.
TensorList make_inputs(const OpCase& c, DType float_dtype, uint64_t seed);
Inputs to_doubles(const TensorList& ts);

// Max |analytic - numeric| over all differentiable inputs, scaled by max(1, |numeric|).
// order 1: d<f(x), r>/dx; order 2: d<grad_x <f(x), r>, w>/dx (gradgradcheck).
double gradcheck_error(const OpCase& c, const TensorList& inputs, int order, uint64_t seed);

// max |got - want| / max(1, max |want|), the table's error measure; infinite when the sizes
// differ or got holds a NaN (a NaN must never pass as a small error).
double max_relative_error(const std::vector<double>& got, const std::vector<double>& want);

// DMIX_OP_REPORT=1 asks the table's tests to print every row's errors.
bool op_report();

// The inputs with every float value rounded to f32 and kept in f64: an f32 run of a row
// then sees exactly the values of the f64 run, and its error is the op's own.
TensorList round_to_f32(const TensorList& inputs);

// A row evaluated on one device in one float dtype, copied back to the host as doubles.
struct RowResults {
  std::vector<double> forward;
  // Per differentiable input: grad = d<fn(x), r>/dx_i (order >= 1), and grad2 =
  // d(sum_j <grad_j, w_j>)/dx_i (order 2: gradgradcheck's quantity, from autograd on both
  // sides); zeros where autograd finds no dependence.
  std::vector<std::vector<double>> grad, grad2;
  // Results that are not on the inputs' device or not in their float dtype, described.
  std::vector<std::string> misplaced;
};

// Runs row c with its inputs (f64 on the CPU, as make_inputs gives them) converted to
// float_dtype (integer inputs keep theirs) and moved to device. r and w are drawn from seed
// and rounded to f32, so two calls with the same inputs and seed differ only in where and
// in what precision they compute.
RowResults evaluate_row(const OpCase& c, const TensorList& inputs, DType float_dtype, Device device, int order,
                        uint64_t seed);

}  // namespace dmix::testing
