// Op-table rows of soft_cross_entropy and cross_entropy against naive loops.
#include <algorithm>
#include <cmath>
#include <string>

#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

// mean over rows of -sum_c t[n,c] * log_softmax(z)[n,c], with plain loops.
double naive_soft_ce(const std::vector<double>& z, const std::vector<double>& t, int64_t N, int64_t C) {
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    double m = -INFINITY, s = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, z[n * C + c]);
    for (int64_t c = 0; c < C; ++c) s += std::exp(z[n * C + c] - m);
    for (int64_t c = 0; c < C; ++c) total -= t[n * C + c] * (z[n * C + c] - m - std::log(s));
  }
  return total / static_cast<double>(N);
}

// Rows of raw positive values scaled to sum to one: a soft label distribution.
std::vector<double> normalise_rows(const std::vector<double>& raw, int64_t N, int64_t C) {
  std::vector<double> t(raw);
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += raw[n * C + c];
    for (int64_t c = 0; c < C; ++c) t[n * C + c] = raw[n * C + c] / s;
  }
  return t;
}

OpCase soft_ce_case(int64_t N, int64_t C, bool targets_differentiable) {
  OpCase c;
  c.name = "soft_cross_entropy (" + std::to_string(N) + ", " + std::to_string(C) + ")" +
           (targets_differentiable ? " targets differentiable" : "");
  InputSpec targets = InputSpec::constant_uniform({N, C}, 0.1, 1.0);
  targets.differentiable = targets_differentiable;
  c.inputs = {InputSpec::uniform({N, C}, -2.0, 2.0), targets};
  c.fn = [](const TensorList& in) {
    // The raw targets are made a distribution inside fn (the loss is defined for any targets).
    return soft_cross_entropy(in[0], div(in[1], sum(in[1], {1}, /*keepdim=*/true)));
  };
  c.reference = [N, C](const Inputs& in) {
    return std::vector<double>{naive_soft_ce(in[0], normalise_rows(in[1], N, C), N, C)};
  };
  return c;
}

OpCaseRegistrar reg_soft_ce(soft_ce_case(4, 5, false));
OpCaseRegistrar reg_soft_ce_odd(soft_ce_case(3, 7, true));

OpCase ce_case(int64_t N, int64_t C, double smoothing) {
  OpCase c;
  c.name = "cross_entropy (" + std::to_string(N) + ", " + std::to_string(C) + ") smoothing " + std::to_string(smoothing);
  c.inputs = {InputSpec::uniform({N, C}, -2.0, 2.0), InputSpec::integer({N}, 0, C)};
  c.fn = [smoothing](const TensorList& in) { return cross_entropy(in[0], in[1], smoothing); };
  c.reference = [N, C, smoothing](const Inputs& in) {
    std::vector<double> t(static_cast<size_t>(N * C), smoothing / static_cast<double>(C));
    for (int64_t n = 0; n < N; ++n) t[n * C + static_cast<int64_t>(in[1][n])] += 1.0 - smoothing;
    return std::vector<double>{naive_soft_ce(in[0], t, N, C)};
  };
  return c;
}

OpCaseRegistrar reg_ce(ce_case(6, 4, 0.0));
OpCaseRegistrar reg_ce_smooth(ce_case(5, 3, 0.1));

}  // namespace
