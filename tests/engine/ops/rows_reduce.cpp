// Op-table rows of var, max, softmax and log_softmax against naive loops.
#include <array>
#include <cmath>
#include <string>

#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

// A (d0, d1, d2) tensor viewed around dim d as (outer, n, inner).
struct Around {
  int64_t outer, n, inner;
};
Around around(const Shape& s, int64_t d) {
  Around a{1, s[d], 1};
  for (int64_t i = 0; i < d; ++i) a.outer *= s[i];
  for (int64_t i = d + 1; i < static_cast<int64_t>(s.size()); ++i) a.inner *= s[i];
  return a;
}

// ---- var ----------------------------------------------------------------------------------

// Naive variance of a (d0, d1, d2) tensor over the flagged dims, output in keepdim order.
std::vector<double> naive_var(const std::vector<double>& x, const Shape& s, std::array<bool, 3> r, bool unbiased) {
  Shape o = s;
  double count = 1;
  for (int d = 0; d < 3; ++d)
    if (r[d]) {
      o[d] = 1;
      count *= static_cast<double>(s[d]);
    }
  auto out_index = [&](int64_t i, int64_t j, int64_t k) {
    return ((r[0] ? 0 : i) * o[1] + (r[1] ? 0 : j)) * o[2] + (r[2] ? 0 : k);
  };
  std::vector<double> mean(static_cast<size_t>(shape_numel(o)), 0.0), sq(mean.size(), 0.0);
  for (int64_t i = 0; i < s[0]; ++i)
    for (int64_t j = 0; j < s[1]; ++j)
      for (int64_t k = 0; k < s[2]; ++k) mean[out_index(i, j, k)] += x[(i * s[1] + j) * s[2] + k] / count;
  for (int64_t i = 0; i < s[0]; ++i)
    for (int64_t j = 0; j < s[1]; ++j)
      for (int64_t k = 0; k < s[2]; ++k) {
        const double d = x[(i * s[1] + j) * s[2] + k] - mean[out_index(i, j, k)];
        sq[out_index(i, j, k)] += d * d;
      }
  for (auto& v : sq) v /= count - (unbiased ? 1.0 : 0.0);
  return sq;
}

OpCase var_case(const std::string& name, const Dims& dims, std::array<bool, 3> r, bool unbiased, bool keepdim) {
  const Shape s = {3, 4, 5};
  OpCase c;
  c.name = name;
  c.inputs = {InputSpec::uniform(s)};
  c.fn = [dims, unbiased, keepdim](const TensorList& in) { return var(in[0], dims, unbiased, keepdim); };
  c.reference = [s, r, unbiased](const Inputs& in) { return naive_var(in[0], s, r, unbiased); };
  return c;
}

OpCaseRegistrar reg_var_all(var_case("var all unbiased", {}, {true, true, true}, true, false));
OpCaseRegistrar reg_var_last(var_case("var dim -1 biased", {-1}, {false, false, true}, false, false));
OpCaseRegistrar reg_var_first(var_case("var dim 0 keepdim", {0}, {true, false, false}, true, true));
OpCaseRegistrar reg_var_channel(var_case("var dims 0,2 keepdim biased", {0, 2}, {true, false, true}, false, true));

// ---- max ----------------------------------------------------------------------------------

OpCase max_case(const Shape& s, int64_t dim, bool keepdim) {
  OpCase c;
  c.name = "max values dim " + std::to_string(dim) + (keepdim ? " keepdim" : "") + " of " + shape_str(s);
  c.inputs = {InputSpec::distinct(s)};
  c.fn = [dim, keepdim](const TensorList& in) { return max(in[0], dim, keepdim).values; };
  c.reference = [s, dim](const Inputs& in) {
    const Around a = around(s, dim < 0 ? dim + static_cast<int64_t>(s.size()) : dim);
    std::vector<double> out(static_cast<size_t>(a.outer * a.inner));
    for (int64_t o = 0; o < a.outer; ++o)
      for (int64_t k = 0; k < a.inner; ++k) {
        double best = -INFINITY;
        for (int64_t i = 0; i < a.n; ++i) best = std::max(best, in[0][(o * a.n + i) * a.inner + k]);
        out[o * a.inner + k] = best;
      }
    return out;
  };
  return c;
}

OpCaseRegistrar reg_max0(max_case({3, 4, 5}, 0, false));
OpCaseRegistrar reg_max1(max_case({3, 4, 5}, 1, true));
OpCaseRegistrar reg_max_last(max_case({3, 4, 5}, -1, false));
OpCaseRegistrar reg_max_2d(max_case({7, 3}, 1, false));

// ---- softmax / log_softmax ----------------------------------------------------------------

OpCase softmax_case(const Shape& s, int64_t dim, bool log) {
  OpCase c;
  c.name = std::string(log ? "log_softmax" : "softmax") + " dim " + std::to_string(dim) + " of " + shape_str(s);
  c.inputs = {InputSpec::uniform(s, -2.0, 2.0)};
  c.fn = [dim, log](const TensorList& in) { return log ? log_softmax(in[0], dim) : softmax(in[0], dim); };
  c.reference = [s, dim, log](const Inputs& in) {
    const Around a = around(s, dim < 0 ? dim + static_cast<int64_t>(s.size()) : dim);
    std::vector<double> out(in[0].size());
    for (int64_t o = 0; o < a.outer; ++o)
      for (int64_t k = 0; k < a.inner; ++k) {
        double z = 0;
        for (int64_t i = 0; i < a.n; ++i) z += std::exp(in[0][(o * a.n + i) * a.inner + k]);
        for (int64_t i = 0; i < a.n; ++i) {
          const size_t at = static_cast<size_t>((o * a.n + i) * a.inner + k);
          out[at] = log ? in[0][at] - std::log(z) : std::exp(in[0][at]) / z;
        }
      }
    return out;
  };
  return c;
}

OpCaseRegistrar reg_softmax0(softmax_case({3, 4, 5}, 0, false));
OpCaseRegistrar reg_softmax1(softmax_case({3, 4, 5}, 1, false));
OpCaseRegistrar reg_softmax_last(softmax_case({3, 4, 5}, -1, false));
OpCaseRegistrar reg_log_softmax0(softmax_case({3, 4, 5}, 0, true));
OpCaseRegistrar reg_log_softmax1(softmax_case({3, 4, 5}, 1, true));
OpCaseRegistrar reg_log_softmax_last(softmax_case({3, 4, 5}, -1, true));
OpCaseRegistrar reg_log_softmax_2d(softmax_case({5, 7}, 1, true));

}  // namespace
