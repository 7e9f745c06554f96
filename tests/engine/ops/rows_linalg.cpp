// Op-table rows of matmul, linear and transpose against naive loops.
#include <string>

#include "tests/engine/ops/linalg_reference.h"
#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

OpCase matmul_case(int64_t M, int64_t K, int64_t N) {
  OpCase c;
  c.name = "matmul " + std::to_string(M) + "x" + std::to_string(K) + " * " + std::to_string(K) + "x" + std::to_string(N);
  c.inputs = {InputSpec::uniform({M, K}), InputSpec::uniform({K, N})};
  c.fn = [](const TensorList& in) { return matmul(in[0], in[1]); };
  c.reference = [M, K, N](const Inputs& in) { return naive_matmul(in[0], in[1], M, K, N); };
  return c;
}

OpCase transpose_case(int64_t R, int64_t C) {
  OpCase c;
  c.name = "transpose " + std::to_string(R) + "x" + std::to_string(C);
  c.inputs = {InputSpec::uniform({R, C})};
  c.fn = [](const TensorList& in) { return transpose(in[0]); };
  c.reference = [R, C](const Inputs& in) { return naive_transpose(in[0], R, C); };
  return c;
}

// x of shape lead + (in); weight (out, in); optional bias (out).
OpCase linear_case(const std::string& name, Shape x_shape, int64_t out, bool bias) {
  const int64_t in = x_shape.back();
  const int64_t rows = shape_numel(x_shape) / in;
  OpCase c;
  c.name = name;
  c.inputs = {InputSpec::uniform(x_shape), InputSpec::uniform({out, in})};
  if (bias) c.inputs.push_back(InputSpec::uniform({out}));
  c.fn = [bias](const TensorList& in) { return bias ? linear(in[0], in[1], in[2]) : linear(in[0], in[1]); };
  c.reference = [=](const Inputs& v) { return naive_linear(v[0], v[1], bias ? &v[2] : nullptr, rows, in, out); };
  return c;
}

OpCaseRegistrar reg_matmul(matmul_case(5, 7, 3));
OpCaseRegistrar reg_matmul_vectors(matmul_case(1, 4, 1));       // row times column
OpCaseRegistrar reg_matmul_outer(matmul_case(6, 1, 9));         // K = 1: an outer product
OpCaseRegistrar reg_matmul_odd(matmul_case(9, 13, 6));
OpCaseRegistrar reg_transpose(transpose_case(3, 5));
OpCaseRegistrar reg_transpose_row(transpose_case(1, 7));
OpCaseRegistrar reg_transpose_tiles(transpose_case(37, 3));     // crosses the 32-wide tile edge
OpCaseRegistrar reg_linear_bias(linear_case("linear with bias", {4, 6}, 3, true));
OpCaseRegistrar reg_linear_nobias(linear_case("linear without bias", {5, 7}, 2, false));
OpCaseRegistrar reg_linear_one(linear_case("linear one sample, one output", {1, 5}, 1, true));
OpCaseRegistrar reg_linear_3d(linear_case("linear 3-D input with bias", {2, 3, 4}, 5, true));
OpCaseRegistrar reg_linear_1d(linear_case("linear 1-D input", {6}, 4, true));
OpCaseRegistrar reg_matmul_transposed([] {
  // transpose feeding matmul: gradients flow through both ops, and the second-order
  // terms exercise the transposed-operand products of matmul's backward.
  OpCase c;
  c.name = "matmul(transpose(a), b)";
  c.inputs = {InputSpec::uniform({4, 3}), InputSpec::uniform({4, 5})};
  c.fn = [](const TensorList& in) { return matmul(transpose(in[0]), in[1]); };
  c.reference = [](const Inputs& in) { return naive_matmul(naive_transpose(in[0], 4, 3), in[1], 3, 4, 5); };
  return c;
}());

}  // namespace
