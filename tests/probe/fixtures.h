// Shared by the probe/ tests: symmetric matrices with a known spectrum, a small CNN with
// batch norm that runs in f64, and helpers to read flat vectors.
#pragma once
#include <cmath>
#include <memory>
#include <vector>

#include "engine/ops.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "probe/operator.h"

namespace dmix::probe::testing {

// The spectrum the matrix tests know: distinct, of both signs, with the top three by
// magnitude (10, -7, 5) different from the top three algebraically (10, 5, 3).
inline std::vector<double> known_spectrum() { return {10, -7, 5, 3, 2.5, 1, 0.5, 0.2, 0.05, -0.3, -1, -2}; }

inline Tensor diagonal_matrix(const std::vector<double>& values) {
  const int64_t n = static_cast<int64_t>(values.size());
  std::vector<double> m(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) m[static_cast<size_t>(i * n + i)] = values[i];
  return Tensor::from_vector(m, {n, n});
}

// Q diag(spectrum) Q^T in f64, Q the product of two Householder reflections (orthogonal,
// and dense enough that no coordinate is an eigenvector).
inline Tensor matrix_with_spectrum(const std::vector<double>& spectrum, uint64_t seed = 3) {
  const int64_t n = static_cast<int64_t>(spectrum.size());
  Generator gen(seed);
  Tensor q = diagonal_matrix(std::vector<double>(spectrum.size(), 1.0));
  for (int r = 0; r < 2; ++r) {  // q <- q (I - 2 u u^T / u^T u)
    const Tensor u = gen.normal({n, 1}, 0, 1, DType::f64);
    q = q - matmul(matmul(q, u), transpose(u)) * (2.0 / sum(u * u).item());
  }
  const Tensor d = Tensor::from_vector(spectrum, {1, n});
  return matmul(q * d, transpose(q));  // q * d scales column j by spectrum[j]
}

// Every parameter and buffer of a model converted to f64 in place (the handles the layers
// hold see the change, as with Module::to).
inline void to_f64(nn::Module& model) {
  auto convert = [](const Tensor& t) {
    if (t.dtype() == DType::f64 || t.dtype() == DType::i64) return;
    const Tensor d = t.detach().to(DType::f64);
    TensorImpl& impl = t.impl();
    impl.storage = d.impl().storage;
    impl.offset = d.impl().offset;
    impl.dtype = DType::f64;
  };
  for (auto& [name, t] : model.named_parameters()) convert(t);
  for (auto& [name, t] : model.named_buffers()) convert(t);
}

// conv 3x3 (2 -> 3) -> batch norm -> tanh -> conv 3x3 stride 2 (3 -> 4) -> batch norm -> tanh
// -> global pool -> linear 4 -> 3. Smooth (tanh, not ReLU), so central differences of the
// gradient are accurate; 191 parameters.
class TinyCnn : public nn::Module {
 public:
  explicit TinyCnn(uint64_t seed = 21) {
    Generator gen(seed);
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(nn::Conv2dConfig{2, 3, 3, 1, 1}, gen));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(3));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(nn::Conv2dConfig{3, 4, 3, 2, 1}, gen));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(4));
    fc = register_module("fc", std::make_shared<nn::Linear>(4, 3, true, gen));
    // Non-trivial affine and running statistics, so that eval mode differs from the identity.
    autograd::NoGradGuard no_grad;
    bn1->weight.copy_(gen.uniform({3}, 0.5, 1.5));
    bn1->bias.copy_(gen.normal({3}, 0, 0.2));
    bn1->running_mean.copy_(gen.normal({3}, 0, 0.1));
    bn1->running_var.copy_(gen.uniform({3}, 0.5, 2.0));
    bn2->running_mean.copy_(gen.normal({4}, 0, 0.1));
    bn2->running_var.copy_(gen.uniform({4}, 0.5, 2.0));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = tanh((*bn1)((*conv1)(x)));
    h = tanh((*bn2)((*conv2)(h)));
    return (*fc)(global_avg_pool2d(h));
  }
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::Linear> fc;
};

inline std::vector<double> host(const Tensor& t) { return t.to(Device::cpu()).to(DType::f64).to_vector<double>(); }

inline double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace dmix::probe::testing
