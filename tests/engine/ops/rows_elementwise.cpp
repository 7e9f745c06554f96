// Op-table rows of the elementwise ops (engine/ops/elementwise.h): forward against naive
// loops, with broadcasting walked index by index.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

// Naive broadcasting: walks the output index space and maps it back into each operand.
std::vector<double> broadcast_ref(const Shape& sa, const Shape& sb, const std::vector<double>& a,
                                  const std::vector<double>& b, const std::function<double(double, double)>& f) {
  const Shape out = broadcast_shapes("ref", sa, sb);
  const int64_t n = shape_numel(out);
  auto index_into = [&](const Shape& s, int64_t flat) {
    int64_t idx = 0, stride = 1;
    for (size_t j = 0; j < out.size(); ++j) {
      const size_t od = out.size() - 1 - j;
      const int64_t coord = flat % out[od];
      flat /= out[od];
      if (j < s.size()) {
        const size_t sd = s.size() - 1 - j;
        if (s[sd] != 1) idx += coord * stride;
        stride *= s[sd];
      }
    }
    return idx;
  };
  std::vector<double> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) r[i] = f(a[index_into(sa, i)], b[index_into(sb, i)]);
  return r;
}

std::vector<double> map_ref(const std::vector<double>& a, const std::function<double(double)>& f) {
  std::vector<double> r(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = f(a[i]);
  return r;
}

OpCase binary_case(const std::string& name, const InputSpec& a, const InputSpec& b,
                   const std::function<Tensor(const Tensor&, const Tensor&)>& op,
                   const std::function<double(double, double)>& f) {
  const Shape sa = a.shape, sb = b.shape;
  OpCase c;
  c.name = name;
  c.inputs = {a, b};
  c.fn = [op](const TensorList& in) { return op(in[0], in[1]); };
  c.reference = [sa, sb, f](const Inputs& in) { return broadcast_ref(sa, sb, in[0], in[1], f); };
  return c;
}

OpCase unary_case(const std::string& name, const InputSpec& a, const std::function<Tensor(const Tensor&)>& op,
                  const std::function<double(double)>& f) {
  OpCase c;
  c.name = name;
  c.inputs = {a};
  c.fn = [op](const TensorList& in) { return op(in[0]); };
  c.reference = [f](const Inputs& in) { return map_ref(in[0], f); };
  return c;
}

const Shape kNCHW = {2, 3, 4, 5};

OpCaseRegistrar reg_add(binary_case("add", InputSpec::uniform({3, 4}), InputSpec::uniform({3, 4}),
                                    [](auto& a, auto& b) { return add(a, b); }, [](double x, double y) { return x + y; }));
OpCaseRegistrar reg_add_bc(binary_case("add broadcast NCHW + C11", InputSpec::uniform(kNCHW), InputSpec::uniform({3, 1, 1}),
                                       [](auto& a, auto& b) { return add(a, b); }, [](double x, double y) { return x + y; }));
OpCaseRegistrar reg_add_bc2(binary_case("add broadcast both sides", InputSpec::uniform({3, 1}), InputSpec::uniform({1, 5}),
                                        [](auto& a, auto& b) { return add(a, b); }, [](double x, double y) { return x + y; }));
OpCaseRegistrar reg_sub(binary_case("sub broadcast", InputSpec::uniform({2, 7}), InputSpec::uniform({7}),
                                    [](auto& a, auto& b) { return sub(a, b); }, [](double x, double y) { return x - y; }));
OpCaseRegistrar reg_mul(binary_case("mul", InputSpec::uniform({5, 3}), InputSpec::uniform({5, 3}),
                                    [](auto& a, auto& b) { return mul(a, b); }, [](double x, double y) { return x * y; }));
OpCaseRegistrar reg_mul_bc(binary_case("mul broadcast scalar", InputSpec::uniform({4, 3}), InputSpec::uniform({}),
                                       [](auto& a, auto& b) { return mul(a, b); }, [](double x, double y) { return x * y; }));
OpCaseRegistrar reg_div(binary_case("div broadcast", InputSpec::uniform({3, 4}), InputSpec::positive({3, 1}),
                                    [](auto& a, auto& b) { return div(a, b); }, [](double x, double y) { return x / y; }));

OpCaseRegistrar reg_add_scalar(unary_case("add_scalar", InputSpec::uniform({4, 5}), [](auto& a) { return add_scalar(a, 0.75); },
                                          [](double x) { return x + 0.75; }));
OpCaseRegistrar reg_mul_scalar(unary_case("mul_scalar", InputSpec::uniform({4, 5}), [](auto& a) { return mul_scalar(a, -1.5); },
                                          [](double x) { return x * -1.5; }));
OpCaseRegistrar reg_neg(unary_case("neg", InputSpec::uniform({7}), [](auto& a) { return neg(a); }, [](double x) { return -x; }));
OpCaseRegistrar reg_exp(unary_case("exp", InputSpec::uniform({3, 5}), [](auto& a) { return exp(a); },
                                   [](double x) { return std::exp(x); }));
OpCaseRegistrar reg_log(unary_case("log", InputSpec::positive({3, 5}), [](auto& a) { return log(a); },
                                   [](double x) { return std::log(x); }));
OpCaseRegistrar reg_sqrt(unary_case("sqrt", InputSpec::positive({3, 5}), [](auto& a) { return sqrt(a); },
                                    [](double x) { return std::sqrt(x); }));
OpCaseRegistrar reg_abs(unary_case("abs", InputSpec::away_from_zero({3, 5}), [](auto& a) { return abs(a); },
                                   [](double x) { return std::abs(x); }));
OpCaseRegistrar reg_sign(unary_case("sign (gradient zero)", InputSpec::away_from_zero({3, 5}), [](auto& a) { return mul(sign(a), a); },
                                    [](double x) { return std::abs(x); }));
OpCaseRegistrar reg_pow(unary_case("pow 3", InputSpec::uniform({3, 5}), [](auto& a) { return pow(a, 3.0); },
                                   [](double x) { return x * x * x; }));
OpCaseRegistrar reg_pow_frac(unary_case("pow -0.5", InputSpec::positive({6}), [](auto& a) { return pow(a, -0.5); },
                                        [](double x) { return 1.0 / std::sqrt(x); }));
OpCaseRegistrar reg_clamp(unary_case("clamp", InputSpec::distinct({4, 5}, -1.0, 1.0), [](auto& a) { return clamp(a, -0.52, 0.48); },
                                     [](double x) { return std::min(std::max(x, -0.52), 0.48); }));
OpCaseRegistrar reg_relu(unary_case("relu", InputSpec::away_from_zero({2, 3, 4}), [](auto& a) { return relu(a); },
                                    [](double x) { return x > 0 ? x : 0.0; }));
OpCaseRegistrar reg_relu_sq(unary_case("relu then square (second order through relu)", InputSpec::away_from_zero({9}),
                                       [](auto& a) { return mul(relu(a), relu(a)); },
                                       [](double x) { return x > 0 ? x * x : 0.0; }));
OpCaseRegistrar reg_sigmoid(unary_case("sigmoid", InputSpec::uniform({3, 5}, -3, 3), [](auto& a) { return sigmoid(a); },
                                       [](double x) { return 1.0 / (1.0 + std::exp(-x)); }));
OpCaseRegistrar reg_tanh(unary_case("tanh", InputSpec::uniform({3, 5}, -2, 2), [](auto& a) { return tanh(a); },
                                    [](double x) { return std::tanh(x); }));

OpCaseRegistrar reg_where([] {
  OpCase c;
  c.name = "where (mask from a third input)";
  c.inputs = {InputSpec::away_from_zero({3, 4}), InputSpec::uniform({3, 4}), InputSpec::uniform({1, 4})};
  c.fn = [](const TensorList& in) { return where(greater_scalar(in[0].detach(), 0.0), in[1], in[2]); };
  c.inputs[0].differentiable = false;
  c.reference = [](const Inputs& in) {
    std::vector<double> r(12);
    for (int i = 0; i < 12; ++i) r[i] = in[0][i] > 0 ? in[1][i] : in[2][i % 4];
    return r;
  };
  return c;
}());

OpCaseRegistrar reg_masked_fill([] {
  OpCase c;
  c.name = "masked_fill";
  c.inputs = {InputSpec::uniform({2, 5}), InputSpec::away_from_zero({5})};
  c.inputs[1].differentiable = false;
  c.fn = [](const TensorList& in) { return masked_fill(in[0], less_scalar(in[1].detach(), 0.0), -3.0); };
  c.reference = [](const Inputs& in) {
    std::vector<double> r(10);
    for (int i = 0; i < 10; ++i) r[i] = in[1][i % 5] < 0 ? -3.0 : in[0][i];
    return r;
  };
  return c;
}());

}  // namespace
