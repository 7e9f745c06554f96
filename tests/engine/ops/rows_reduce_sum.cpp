// Op-table rows of sum, mean, expand and sum_to against naive loops.
#include <array>
#include <string>

#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

// Naive sum of a (d0,d1,d2) tensor over the dims flagged in `r`, keepdim layout.
std::vector<double> sum3(const std::vector<double>& x, Shape s, std::array<bool, 3> r) {
  Shape o = s;
  for (int d = 0; d < 3; ++d)
    if (r[d]) o[d] = 1;
  std::vector<double> out(static_cast<size_t>(shape_numel(o)), 0.0);
  for (int64_t i = 0; i < s[0]; ++i)
    for (int64_t j = 0; j < s[1]; ++j)
      for (int64_t k = 0; k < s[2]; ++k) {
        const int64_t oi = r[0] ? 0 : i, oj = r[1] ? 0 : j, ok = r[2] ? 0 : k;
        out[(oi * o[1] + oj) * o[2] + ok] += x[(i * s[1] + j) * s[2] + k];
      }
  return out;
}

OpCase sum_case(const std::string& name, const Dims& dims, std::array<bool, 3> r, bool keepdim, bool is_mean = false) {
  const Shape s = {3, 4, 5};
  OpCase c;
  c.name = name;
  c.inputs = {InputSpec::uniform(s)};
  c.fn = [dims, keepdim, is_mean](const TensorList& in) {
    return is_mean ? mean(in[0], dims, keepdim) : sum(in[0], dims, keepdim);
  };
  c.reference = [s, r, is_mean](const Inputs& in) {
    auto out = sum3(in[0], s, r);
    double count = 1;
    for (int d = 0; d < 3; ++d)
      if (r[d]) count *= double(s[d]);
    if (is_mean)
      for (auto& v : out) v /= count;
    return out;
  };
  return c;
}

OpCaseRegistrar reg_sum_all(sum_case("sum all", {}, {true, true, true}, false));
OpCaseRegistrar reg_sum_last(sum_case("sum dim -1", {-1}, {false, false, true}, false));
OpCaseRegistrar reg_sum_first(sum_case("sum dim 0 keepdim", {0}, {true, false, false}, true));
OpCaseRegistrar reg_sum_outer(sum_case("sum dims 0,2 (per channel)", {0, 2}, {true, false, true}, false));
OpCaseRegistrar reg_sum_mid(sum_case("sum dim 1", {1}, {false, true, false}, true));
OpCaseRegistrar reg_mean(sum_case("mean dims 0,2", {2, 0}, {true, false, true}, true, true));
OpCaseRegistrar reg_mean_all(sum_case("mean all", {}, {true, true, true}, false, true));

OpCaseRegistrar reg_expand([] {
  OpCase c;
  c.name = "expand (3,1) -> (2,3,4)";
  c.inputs = {InputSpec::uniform({3, 1})};
  c.fn = [](const TensorList& in) { return expand(in[0], {2, 3, 4}); };
  c.reference = [](const Inputs& in) {
    std::vector<double> r(24);
    for (int i = 0; i < 24; ++i) r[i] = in[0][(i / 4) % 3];
    return r;
  };
  return c;
}());

OpCaseRegistrar reg_sum_to([] {
  OpCase c;
  c.name = "sum_to (2,3,4) -> (3,1)";
  c.inputs = {InputSpec::uniform({2, 3, 4})};
  c.fn = [](const TensorList& in) { return sum_to(in[0], {3, 1}); };
  c.reference = [](const Inputs& in) {
    std::vector<double> r(3, 0.0);
    for (int i = 0; i < 24; ++i) r[(i / 4) % 3] += in[0][i];
    return r;
  };
  return c;
}());

}  // namespace
