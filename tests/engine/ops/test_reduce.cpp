// var, max, argmax, softmax and log_softmax: op-table rows against naive loops, and
// focused cases for indices, ties and errors.
#include <doctest/doctest.h>

#include <cmath>

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

OpCase var_case(const std::string& name, Dims dims, std::array<bool, 3> r, bool unbiased, bool keepdim) {
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

TEST_CASE("max returns the values and first indices; argmax agrees") {
  const Tensor a = Tensor::from_vector<double>({1, 5, 5, 2, 9, 3, 9, 0, -1, -3, -2, -1}, {2, 2, 3});
  MaxResult r = max(a, 2);
  CHECK(r.values.shape() == Shape{2, 2});
  CHECK(r.values.to_vector<double>() == std::vector<double>{5, 9, 9, -1});
  CHECK(r.indices.dtype() == DType::i64);
  CHECK(r.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0, 2});
  CHECK(argmax(a, -1).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0, 2});
  MaxResult r0 = max(a, 0, /*keepdim=*/true);
  CHECK(r0.values.shape() == Shape{1, 2, 3});
  CHECK(r0.values.to_vector<double>() == std::vector<double>{9, 5, 5, 2, 9, 3});
  CHECK(r0.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0, 0, 0, 0});
  CHECK(argmax(a, 1, true).shape() == Shape{2, 1, 3});
  CHECK(argmax(a, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0, 0, 0, 0});
}

TEST_CASE("argmax on ties picks the first index, and max's gradient goes there only") {
  const Tensor a = Tensor::from_vector<double>({0, 3, 1, 3, 3, 2, 2, 2}, {2, 4});
  CHECK(argmax(a, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  const Tensor b = Tensor::from_vector<double>({7, 7, 7, 1, 7, 0}, {3, 2});
  CHECK(argmax(b, 0).to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  Tensor x = a.clone().set_requires_grad(true);
  sum(max(x, 1).values).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0, 1, 0, 0, 0});
}

TEST_CASE("max values are differentiable twice (the mask is constant)") {
  Tensor x = Tensor::from_vector<double>({0.5, -1, 2, 0.25}, {2, 2}).set_requires_grad(true);
  Tensor y = sum(mul(max(x, 0).values, max(x, 0).values));
  TensorList g = autograd::grad({y}, {x}, {}, /*create_graph=*/true);
  CHECK(g[0].to_vector<double>() == std::vector<double>{0, 0, 4, 0.5});
  TensorList h = autograd::grad({sum(g[0])}, {x});
  CHECK(h[0].to_vector<double>() == std::vector<double>{0, 0, 2, 2});
}

TEST_CASE("reductions along a dim reject bad dims and dtypes") {
  const Tensor a = Tensor::zeros({2, 3});
  CHECK_THROWS_AS(max(a, 2), Error);
  CHECK_THROWS_AS(argmax(a, -3), Error);
  CHECK_THROWS_AS(softmax(a, 5), Error);
  CHECK_THROWS_AS(log_softmax(Tensor::zeros({2, 3}, DType::i64), 1), Error);
  CHECK_THROWS_AS(max(Tensor::zeros({2, 0}), 1), Error);
  CHECK_THROWS_WITH_AS(var(a, {0, 0}), doctest::Contains("twice"), Error);
}

TEST_CASE("var of a single element is NaN when unbiased, 0 when biased") {
  const Tensor a = Tensor::from_vector<double>({3.0, 4.0}, {2, 1});
  CHECK(std::isnan(var(a, {1}).to_vector<double>()[0]));
  CHECK(var(a, {1}, /*unbiased=*/false).to_vector<double>()[0] == 0.0);
  CHECK(var(a).item() == doctest::Approx(0.5));
}

TEST_CASE("softmax and log_softmax survive huge logits") {
  const Tensor a = Tensor::from_vector<float>({1000.f, 0.f, -1000.f, 500.f}, {2, 2});
  const auto s = softmax(a, 1).to_vector<float>();
  CHECK(s[0] == doctest::Approx(1.0));
  CHECK(s[1] == 0.0f);
  const auto l = log_softmax(a, 1).to_vector<float>();
  CHECK(l[0] == doctest::Approx(0.0));
  CHECK(l[1] == doctest::Approx(-1000.0));
  CHECK(l[2] == doctest::Approx(-1500.0));
}
