// sum, mean and the broadcasting pair expand / sum_to. Each is the other's adjoint:
// sum's backward expands the gradient back, expand's backward sums it away. CPU tensors
// go to kernels/cpu (sum_dims, broadcast_to), CUDA tensors to their twins in kernels/cuda.
#include <algorithm>

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce_sum.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/reduce_sum.h"

namespace dmix {

using autograd::BackwardContext;

namespace {

// Marks the reduced dims (all when dims is empty) and returns the keepdim shape.
Shape reduced_shape(const char* op, const Shape& shape, const Dims& dims, std::vector<uint8_t>& mask) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  mask.assign(shape.size(), dims.empty() ? 1 : 0);
  for (int64_t d : dims) {
    const int64_t w = detail::wrap_dim(op, d, nd);
    check(!mask[w], op, "dim ", d, " given twice");
    mask[w] = 1;
  }
  Shape keep = shape;
  for (size_t d = 0; d < shape.size(); ++d)
    if (mask[d]) keep[d] = 1;
  return keep;
}

Shape drop_reduced(const Shape& keep, const std::vector<uint8_t>& mask) {
  Shape out;
  for (size_t d = 0; d < keep.size(); ++d)
    if (!mask[d]) out.push_back(keep[d]);
  return out;
}

// Sum of a over the masked dims, shaped `keep` (size 1 on reduced dims).
Tensor sum_kernel(const char* op, const Tensor& a, const std::vector<uint8_t>& mask, const Shape& keep) {
  Tensor out = Tensor::empty(keep, a.dtype(), a.device());
  detail::dispatch_float(op, a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int nd = static_cast<int>(a.dim());
    if constexpr (kernels::cuda::kBuilt) {
      if (a.is_cuda()) {
        kernels::cuda::sum_dims<T>(a.data<T>(), nd, a.shape().data(), mask.data(), out.data<T>(), a.device().index);
        return;
      }
    }
    kernels::cpu::sum_dims<T>(a.data<T>(), nd, a.shape().data(), mask.data(), out.data<T>());
  });
  return out;
}

}  // namespace

Tensor sum(const Tensor& a, const Dims& dims, bool keepdim) {
  detail::check_defined("sum", a, "input");
  detail::check_float("sum", a);
  std::vector<uint8_t> mask;
  const Shape keep = reduced_shape("sum", a.shape(), dims, mask);
  Tensor out = sum_kernel("sum", a, mask, keep);
  if (!keepdim) out = out.reshape(drop_reduced(keep, mask));
  // The reshape view above is recorded only if `out` had a graph; it has none yet.
  autograd::record("sum", {a}, {out}, [in_shape = a.shape(), keep](const BackwardContext& c) {
    return TensorList{expand(c.grad().reshape(keep), in_shape)};
  });
  return out;
}

Tensor mean(const Tensor& a, const Dims& dims, bool keepdim) {
  detail::check_defined("mean", a, "input");
  std::vector<uint8_t> mask;
  reduced_shape("mean", a.shape(), dims, mask);
  int64_t count = 1;
  for (size_t d = 0; d < mask.size(); ++d)
    if (mask[d]) count *= a.shape()[d];
  check(count > 0, "mean", "mean over an empty set of elements of ", a.str());
  return mul_scalar(sum(a, dims, keepdim), 1.0 / static_cast<double>(count));
}

Tensor expand(const Tensor& a, const Shape& shape) {
  detail::check_defined("expand", a, "input");
  detail::check_float("expand", a);
  if (a.shape() == shape) return a;
  check(broadcast_shapes("expand", a.shape(), shape) == shape, "expand", "cannot broadcast ", a.str(), " to ",
        shape_str(shape));
  check(shape.size() <= static_cast<size_t>(kernels::cpu::kMaxDims), "expand", "too many dims in ", shape_str(shape));
  std::vector<int64_t> strides(shape.size(), 0);
  int64_t s = 1;
  for (size_t j = 0; j < a.shape().size(); ++j) {
    const size_t i = a.shape().size() - 1 - j, o = shape.size() - 1 - j;
    strides[o] = a.shape()[i] == 1 ? 0 : s;
    s *= a.shape()[i];
  }
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  detail::dispatch_float("expand", a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int nd = static_cast<int>(shape.size());
    if constexpr (kernels::cuda::kBuilt) {
      if (a.is_cuda()) {
        kernels::cuda::broadcast_to<T>(nd, shape.data(), a.data<T>(), strides.data(), out.data<T>(), a.device().index);
        return;
      }
    }
    kernels::cpu::broadcast_to<T>(nd, shape.data(), a.data<T>(), strides.data(), out.data<T>());
  });
  autograd::record("expand", {a}, {out}, [in_shape = a.shape()](const BackwardContext& c) {
    return TensorList{sum_to(c.grad(), in_shape)};
  });
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  detail::check_defined("sum_to", g, "input");
  if (g.shape() == shape) return g;
  check(broadcast_shapes("sum_to", shape, g.shape()) == g.shape(), "sum_to", "cannot sum ", g.str(), " down to ",
        shape_str(shape));
  // Reduce the leading extra dims and the dims where the target has size 1.
  const size_t lead = g.shape().size() - shape.size();
  Dims dims;
  for (size_t d = 0; d < g.shape().size(); ++d)
    if (d < lead || (shape[d - lead] == 1 && g.shape()[d] != 1)) dims.push_back(static_cast<int64_t>(d));
  Tensor s = dims.empty() ? g : sum(g, dims, /*keepdim=*/true);
  return s.reshape(shape);
}

}  // namespace dmix
