// Matrix products: matmul, linear and transpose. Forward through the GEMM kernels;
// backward as engine ops, so it differentiates again.
//
// Which GEMM runs:
//   cpu:       kernels::cpu::gemm (OpenBLAS or handwritten; DMIX_GEMM=openblas|handwritten)
//   cuda, f32: kernels::cuda::gemm_cublas (fp32; TF32 only if kernels::cuda::set_allow_tf32),
//              or the handwritten gemm_tiled when the environment has DMIX_CUDA_GEMM=tiled
//              (DMIX_CUDA_GEMM=cublas, or unset, is the default; anything else is an error).
//              Read once, at the first CUDA product.
//   cuda, f64: kernels::cuda::gemm_tiled for doubles (kernels/cuda/gemm_f64.h).
//
// All products go through one internal op, product(a, b, ta, tb) = op(a) * op(b),
// where op transposes when its flag is set. Its gradients are products of the same
// kind with other flags, so no backward ever materialises a transposed copy:
//   C = op(A) op(B), G = dL/dC
//   dA = G op(B)^T   (or, when A is stored transposed, op(B) G^T)
//   dB = op(A)^T G   (or, when B is stored transposed, G^T op(A))
#include "engine/ops/linalg.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "engine/ops/common.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/gather.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/transpose.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/gather.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_f64.h"
#include "kernels/cuda/transpose.h"

namespace dmix {

using autograd::BackwardContext;
namespace k = kernels::cpu;
namespace cu = kernels::cuda;

namespace {

struct ProductDims {
  int64_t M, N, K;
};

// Rows and columns of op(t) for a stored 2-D tensor t.
int64_t op_rows(const Tensor& t, bool trans) { return trans ? t.size(1) : t.size(0); }
int64_t op_cols(const Tensor& t, bool trans) { return trans ? t.size(0) : t.size(1); }

void check_operands(const char* op, const Tensor& a, const Tensor& b) {
  detail::check_defined(op, a, "first operand");
  detail::check_defined(op, b, "second operand");
  detail::check_same_dtype_device(op, a, b);
  detail::check_float(op, a);
  check(a.dim() == 2 && b.dim() == 2, op, "expects 2-D operands, got ", shape_str(a.shape()), " and ",
        shape_str(b.shape()));
}

enum class CudaGemm { cuBLAS, Tiled };

CudaGemm parse_cuda_gemm() {
  const char* env = std::getenv("DMIX_CUDA_GEMM");
  const std::string choice = env ? env : "";
  if (choice.empty() || choice == "cublas") return CudaGemm::cuBLAS;
  if (choice == "tiled") return CudaGemm::Tiled;
  fail("matmul", "environment variable DMIX_CUDA_GEMM must be 'cublas' or 'tiled', got '", choice, "'");
}

CudaGemm cuda_gemm() {
  static const CudaGemm choice = parse_cuda_gemm();
  return choice;
}

// op(a) * op(b) into out (shape M x N), out = product + (accumulate ? out : 0).
void run_gemm(const Tensor& a, const Tensor& b, bool ta, bool tb, const ProductDims& d, Tensor& out, bool accumulate) {
  // BLAS wants leading dimensions >= 1 even for matrices without columns.
  const int64_t lda = std::max<int64_t>(1, a.size(1)), ldb = std::max<int64_t>(1, b.size(1));
  const int64_t ldc = std::max<int64_t>(1, d.N);
  detail::dispatch_float("matmul", a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T beta = T(accumulate ? 1 : 0);
    const T* A = a.data<T>();
    const T* B = b.data<T>();
    T* C = out.data<T>();
    if constexpr (cu::kBuilt) {
      if (a.is_cuda()) {
        if constexpr (sizeof(T) == 8) {
          cu::gemm_tiled(ta, tb, d.M, d.N, d.K, T(1), A, lda, B, ldb, beta, C, ldc, a.device().index);
        } else if (cuda_gemm() == CudaGemm::Tiled) {
          cu::gemm_tiled(ta, tb, d.M, d.N, d.K, T(1), A, lda, B, ldb, beta, C, ldc, a.device().index);
        } else {
          cu::gemm_cublas(ta, tb, d.M, d.N, d.K, T(1), A, lda, B, ldb, beta, C, ldc, a.device().index);
        }
        return;
      }
    }
    k::gemm(ta, tb, d.M, d.N, d.K, T(1), A, lda, B, ldb, beta, C, ldc);
  });
}

// The recorded product op behind matmul and every matmul/linear gradient.
Tensor product(const char* op, const Tensor& a, const Tensor& b, bool ta, bool tb) {
  check_operands(op, a, b);
  const ProductDims d{op_rows(a, ta), op_cols(b, tb), op_cols(a, ta)};
  check(op_rows(b, tb) == d.K, op, "inner sizes differ: ", shape_str(a.shape()), (ta ? "^T" : ""), " x ",
        shape_str(b.shape()), (tb ? "^T" : ""));
  Tensor out = Tensor::empty({d.M, d.N}, a.dtype(), a.device());
  run_gemm(a, b, ta, tb, d, out, /*accumulate=*/false);

  autograd::record(op, {a, b}, {out}, [a, b, ta, tb](const BackwardContext& c) {
    const Tensor& g = c.grad();
    Tensor ga, gb;
    if (c.needs(0)) ga = ta ? product("matmul", b, g, tb, true) : product("matmul", g, b, false, !tb);
    if (c.needs(1)) gb = tb ? product("matmul", g, a, true, ta) : product("matmul", a, g, !ta, false);
    return TensorList{ga, gb};
  });
  return out;
}

// y (rows x out) = x (rows x in) * w^T + bias, recorded as one op.
Tensor linear_2d(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const char* op = "linear";
  const ProductDims d{x.size(0), w.size(0), x.size(1)};
  Tensor y = Tensor::empty({d.M, d.N}, x.dtype(), x.device());
  if (bias.defined()) {
    // Every row of y starts as the bias (a row copy with source stride 0); the GEMM then adds x w^T.
    detail::dispatch_float(op, x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (cu::kBuilt) {
        if (x.is_cuda()) {
          cu::copy_rows<T>(bias.data<T>(), 0, y.data<T>(), d.N, d.M, d.N, x.device().index);
          return;
        }
      }
      k::copy_rows<T>(bias.data<T>(), 0, y.data<T>(), d.N, d.M, d.N);
    });
  }
  run_gemm(x, w, false, true, d, y, /*accumulate=*/bias.defined());

  TensorList inputs{x, w};
  if (bias.defined()) inputs.push_back(bias);
  autograd::record(op, inputs, {y}, [x, w, has_bias = bias.defined()](const BackwardContext& c) {
    const Tensor& g = c.grad();
    TensorList grads(has_bias ? 3 : 2);
    if (c.needs(0)) grads[0] = product("matmul", g, w, false, false);
    if (c.needs(1)) grads[1] = product("matmul", g, x, true, false);
    if (has_bias && c.needs(2)) grads[2] = sum(g, {0});
    return grads;
  });
  return y;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) { return product("matmul", a, b, false, false); }

Tensor transpose(const Tensor& a) {
  const char* op = "transpose";
  detail::check_defined(op, a, "input");
  detail::check_float(op, a);
  check(a.dim() == 2, op, "expects a 2-D tensor, got ", shape_str(a.shape()));
  const int64_t R = a.size(0), C = a.size(1);
  Tensor out = Tensor::empty({C, R}, a.dtype(), a.device());
  detail::dispatch_float(op, a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (a.is_cuda()) {
        cu::transpose<T>(a.data<T>(), R, C, out.data<T>(), a.device().index);
        return;
      }
    }
    k::transpose<T>(a.data<T>(), R, C, out.data<T>());
  });
  autograd::record(op, {a}, {out}, [](const BackwardContext& c) { return TensorList{transpose(c.grad())}; });
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const char* op = "linear";
  detail::check_defined(op, x, "input");
  detail::check_defined(op, weight, "weight");
  detail::check_same_dtype_device(op, x, weight);
  detail::check_float(op, x);
  check(weight.dim() == 2, op, "weight must be 2-D (out, in), got ", shape_str(weight.shape()));
  check(x.dim() >= 1 && x.size(-1) == weight.size(1), op, "input ", shape_str(x.shape()),
        " does not end in the weight's in-features: weight ", shape_str(weight.shape()));
  if (bias.defined()) {
    detail::check_same_dtype_device(op, x, bias);
    check(bias.dim() == 1 && bias.size(0) == weight.size(0), op, "bias ", shape_str(bias.shape()),
          " does not match weight ", shape_str(weight.shape()), " (expected [", weight.size(0), "])");
  }
  if (x.dim() == 2) return linear_2d(x, weight, bias);

  // Leading dims are a batch: flatten them (a free view), multiply, restore.
  const int64_t in = weight.size(1), out = weight.size(0);
  const int64_t rows = in == 0 ? shape_numel(Shape(x.shape().begin(), x.shape().end() - 1)) : x.numel() / in;
  Shape y_shape(x.shape().begin(), x.shape().end() - 1);
  y_shape.push_back(out);
  return linear_2d(x.reshape({rows, in}), weight, bias).reshape(y_shape);
}

}  // namespace dmix
