// The generic op tests: every row of the op table (registered by tests/engine/ops/rows_*.cpp)
// is checked for forward values against its naive reference in f64 and f32, for
// its gradient against central finite differences in f64, and for its second-order
// gradient (gradgradcheck). DMIX_OP_REPORT=1 prints each op's errors.
#include <doctest/doctest.h>

#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

TEST_CASE("op table: the table is populated") {
  // A broken registration (a rows file not linked) must not pass silently.
  CHECK(op_cases().size() >= 20);
}

TEST_CASE("op table: forward matches the naive reference in f64 and f32") {
  for (const OpCase& c : op_cases()) {
    INFO("op: " << c.name);
    TensorList in64 = make_inputs(c, DType::f64, 1);
    const std::vector<double> want = c.reference(to_doubles(in64));
    Tensor out64 = c.fn(in64);
    const std::vector<double> got64 = out64.to(DType::f64).to_vector<double>();
    REQUIRE(got64.size() == want.size());
    const double e64 = max_relative_error(got64, want);
    CHECK(e64 < 1e-10);

    TensorList in32;
    for (const Tensor& t : in64) in32.push_back(t.dtype() == DType::f64 ? t.to(DType::f32) : t);
    const std::vector<double> got32 = c.fn(in32).to(DType::f64).to_vector<double>();
    const double e32 = max_relative_error(got32, want);
    CHECK(e32 < c.f32_tolerance);
    if (op_report()) MESSAGE(c.name << ": forward max rel error f64 " << e64 << ", f32 " << e32);
  }
}

TEST_CASE("op table: first-order gradients match finite differences (f64)") {
  int checked = 0;
  for (const OpCase& c : op_cases()) {
    if (!c.gradcheck) continue;
    INFO("op: " << c.name);
    const double err = gradcheck_error(c, make_inputs(c, DType::f64, 2), 1, 3);
    CHECK(err < c.grad_tolerance);
    if (op_report()) MESSAGE(c.name << ": gradcheck max error " << err);
    ++checked;
  }
  CHECK(checked > 0);
}

TEST_CASE("op table: second-order gradients match finite differences (gradgradcheck, f64)") {
  int checked = 0;
  for (const OpCase& c : op_cases()) {
    if (!c.gradcheck || !c.gradgradcheck) continue;
    INFO("op: " << c.name);
    const double err = gradcheck_error(c, make_inputs(c, DType::f64, 4), 2, 5);
    CHECK(err < c.grad_tolerance);
    if (op_report()) MESSAGE(c.name << ": gradgradcheck max error " << err);
    ++checked;
  }
  CHECK(checked > 0);
}
