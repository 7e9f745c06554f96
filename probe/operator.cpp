// Flat-vector arithmetic for probe/'s algorithms. Every operation is an engine op on the
// vectors' own device; only the scalar results of dot products come back to the host.
#include "probe/operator.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"

namespace dmix::probe {

SymmetricOperator matrix_operator(const Tensor& matrix) {
  check(matrix.dim() == 2 && matrix.size(0) == matrix.size(1), "matrix_operator", "needs a square matrix, got ",
        matrix.str());
  SymmetricOperator op;
  op.size = matrix.size(0);
  op.dtype = matrix.dtype();
  op.device = matrix.device();
  const Tensor a = matrix.detach();
  op.apply = [a](const Tensor& v) {
    autograd::NoGradGuard no_grad;
    return matmul(a, v.reshape({-1, 1})).reshape({-1});
  };
  return op;
}

double dot(const Tensor& a, const Tensor& b) {
  check(a.shape() == b.shape(), "dot", "vectors ", a.str(), " and ", b.str(), " differ in shape");
  autograd::NoGradGuard no_grad;
  return sum(mul(a, b)).item();
}

double norm(const Tensor& a) { return std::sqrt(dot(a, a)); }

void axpy(const Tensor& y, double alpha, const Tensor& x) { y.add_(x, alpha); }

Tensor gaussian_vector(const SymmetricOperator& op, Generator& gen) {
  return gen.normal({op.size}, 0.0, 1.0, op.dtype, op.device);
}

Tensor rademacher_vector(const SymmetricOperator& op, Generator& gen) {
  autograd::NoGradGuard no_grad;
  return add_scalar(mul_scalar(gen.bernoulli({op.size}, 0.5, op.dtype, op.device), 2.0), -1.0);
}

Tensor normalized(const Tensor& v) {
  autograd::NoGradGuard no_grad;
  return mul_scalar(v, 1.0 / (norm(v) + 1e-6));
}

Tensor orthonormalized(Tensor v, const std::vector<Tensor>& basis) {
  v = v.clone();
  for (const Tensor& u : basis) axpy(v, -dot(v, u), u);
  return normalized(v);
}

}  // namespace dmix::probe
