// The op table: one row per op (or op variant) drives the generic tests in
// test_op_table.cpp — forward against a naive reference loop (f64 and f32), gradient
// against central finite differences in f64, and second order (gradgradcheck).
// A family of ops registers its rows from its own test file:
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

}  // namespace dmix::testing
