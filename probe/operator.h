// What every Hessian algorithm of probe/ sees: a symmetric linear map v -> Hv on flat
// vectors, plus the few vector operations the algorithms need.
//
// A flat vector is a 1-D tensor of `size` elements, of the operator's dtype, on its
// device (the model's parameters, concatenated in the operator's order). Power
// iteration, Lanczos, Hutchinson and SLQ only call `apply` and the helpers below, so
// they run unchanged on CPU or CUDA, and the tests drive them with a plain matrix.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace dmix::probe {

struct SymmetricOperator {
  int64_t size = 0;
  DType dtype = DType::f32;
  Device device = Device::cpu();
  std::function<Tensor(const Tensor& v)> apply;  // returns Hv, a new flat vector
};

// The operator x -> A x of a symmetric (n, n) matrix (its dtype and device). For tests
// and for callers who have their matrix in hand.
SymmetricOperator matrix_operator(const Tensor& matrix);

// Called by the algorithms after each Hessian-vector product: which algorithm ("power",
// "lanczos", "hutchinson", "slq"), the products it has made so far, and its current
// estimate (an eigenvalue, the running trace, the Lanczos alpha).
using ProgressFn = std::function<void(const std::string& stage, int64_t hvps, double estimate)>;

// ---- flat-vector arithmetic, through engine ops on the vectors' device ----
double dot(const Tensor& a, const Tensor& b);
double norm(const Tensor& a);
void axpy(const Tensor& y, double alpha, const Tensor& x);  // y += alpha * x, in place
Tensor gaussian_vector(const SymmetricOperator& op, Generator& gen);
Tensor rademacher_vector(const SymmetricOperator& op, Generator& gen);  // entries +1 / -1
// v / (||v|| + 1e-6), as PyHessian's `normalization` (the 1e-6 keeps a zero vector finite).
Tensor normalized(const Tensor& v);
// Gram-Schmidt against `basis` (each of unit norm), one sequential pass as PyHessian's
// `orthnormal`, then normalized().
Tensor orthonormalized(Tensor v, const std::vector<Tensor>& basis);

}  // namespace dmix::probe
