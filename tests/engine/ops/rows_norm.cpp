// Op-table rows of batch_norm (training with and without affine, eval) against naive loops.
#include <cmath>
#include <string>

#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

constexpr double kEps = 1e-5;

// x (N, C, S...) flattened; per channel mean/var either from the batch or given.
std::vector<double> naive_batch_norm(const std::vector<double>& x, const Shape& s, const std::vector<double>* w,
                                     const std::vector<double>* b, const std::vector<double>* rm,
                                     const std::vector<double>* rv) {
  const int64_t N = s[0], C = s[1];
  int64_t S = 1;
  for (size_t d = 2; d < s.size(); ++d) S *= s[d];
  std::vector<double> y(x.size());
  for (int64_t c = 0; c < C; ++c) {
    double mean = 0, var = 0;
    if (rm) {
      mean = (*rm)[c];
      var = (*rv)[c];
    } else {
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < S; ++k) mean += x[(n * C + c) * S + k];
      mean /= static_cast<double>(N * S);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < S; ++k) var += std::pow(x[(n * C + c) * S + k] - mean, 2);
      var /= static_cast<double>(N * S);
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < S; ++k) {
        const size_t i = static_cast<size_t>((n * C + c) * S + k);
        y[i] = (x[i] - mean) / std::sqrt(var + kEps);
        if (w) y[i] = y[i] * (*w)[c] + (*b)[c];
      }
  }
  return y;
}

OpCase bn_train_case(const Shape& s, bool affine, bool with_running) {
  OpCase c;
  c.name = std::string("batch_norm train") + (affine ? " affine" : "") + (with_running ? " with running stats" : "") +
           " " + shape_str(s);
  c.inputs = {InputSpec::uniform(s, -2.0, 2.0)};
  if (affine) {
    c.inputs.push_back(InputSpec::uniform({s[1]}, 0.5, 1.5));
    c.inputs.push_back(InputSpec::uniform({s[1]}));
  }
  c.fn = [affine, with_running, C = s[1]](const TensorList& in) {
    Tensor rm, rv;
    if (with_running) {  // on the input's device: the GPU run of the table moves only the inputs
      rm = Tensor::zeros({C}, in[0].dtype(), in[0].device());
      rv = Tensor::ones({C}, in[0].dtype(), in[0].device());
    }
    return batch_norm(in[0], affine ? in[1] : Tensor(), affine ? in[2] : Tensor(), rm, rv, /*training=*/true, 0.1,
                      kEps);
  };
  c.reference = [s, affine](const Inputs& in) {
    return naive_batch_norm(in[0], s, affine ? &in[1] : nullptr, affine ? &in[2] : nullptr, nullptr, nullptr);
  };
  return c;
}

OpCase bn_eval_case(const Shape& s, bool affine) {
  OpCase c;
  c.name = std::string("batch_norm eval") + (affine ? " affine " : " ") + shape_str(s);
  const int64_t C = s[1];
  c.inputs = {InputSpec::uniform(s, -2.0, 2.0), InputSpec::constant_uniform({C}, -0.5, 0.5),
              InputSpec::constant_uniform({C}, 0.5, 2.0)};
  if (affine) {
    c.inputs.push_back(InputSpec::uniform({C}, 0.5, 1.5));
    c.inputs.push_back(InputSpec::uniform({C}));
  }
  c.fn = [affine](const TensorList& in) {
    return batch_norm(in[0], affine ? in[3] : Tensor(), affine ? in[4] : Tensor(), in[1], in[2], /*training=*/false,
                      0.1, kEps);
  };
  c.reference = [s, affine](const Inputs& in) {
    return naive_batch_norm(in[0], s, affine ? &in[3] : nullptr, affine ? &in[4] : nullptr, &in[1], &in[2]);
  };
  return c;
}

OpCaseRegistrar reg_bn_train_affine(bn_train_case({3, 2, 2, 3}, true, false));
OpCaseRegistrar reg_bn_train_plain(bn_train_case({2, 3, 3, 1}, false, true));
OpCaseRegistrar reg_bn_train_2d(bn_train_case({5, 3}, true, true));
// A scale after the norm makes the gradient reaching batch_norm depend on an input, so
// gradgradcheck also differentiates batch_norm_backward with respect to its incoming g.
OpCaseRegistrar reg_bn_train_scaled([] {
  const Shape s = {4, 2, 3};
  OpCase c;
  c.name = "batch_norm train then per-element scale " + shape_str(s);
  c.inputs = {InputSpec::uniform(s, -2.0, 2.0), InputSpec::uniform(s, 0.5, 1.5), InputSpec::uniform({2}, 0.5, 1.5)};
  c.fn = [](const TensorList& in) {
    return mul(batch_norm(in[0], in[2], Tensor(), Tensor(), Tensor(), true, 0.1, kEps), in[1]);
  };
  c.reference = [s](const Inputs& in) {
    const std::vector<double> zeros(2, 0.0);
    auto y = naive_batch_norm(in[0], s, &in[2], &zeros, nullptr, nullptr);
    for (size_t i = 0; i < y.size(); ++i) y[i] *= in[1][i];
    return y;
  };
  return c;
}());
OpCaseRegistrar reg_bn_eval_affine(bn_eval_case({2, 3, 2, 2}, true));
OpCaseRegistrar reg_bn_eval_2d(bn_eval_case({4, 3}, false));

}  // namespace
