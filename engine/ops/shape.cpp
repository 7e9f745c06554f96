// Data-movement ops: cat, narrow, zero padding, channel shuffle, index_select /
// index_add, and dropout. Every tensor is seen as (outer, size along dim, inner) so the
// copies are strided row copies (kernels/cpu/gather.h, on a GPU kernels/cuda/gather.h;
// both give the same bits, index_add included).
//
// Indices are checked on the host (range errors name the position), so a CUDA index is
// copied to the host first, which waits for the device. An index may live on the CPU
// while the data is on a GPU (permutations are drawn on the host); it is copied over.
//
// Backward formulas, each an op with a backward of its own, so they differentiate again:
//   cat            -> narrow of the gradient per input
//   narrow         -> pad (zeros around the gradient)        pad -> narrow
//   pad_channels   -> narrow
//   channel_shuffle(groups) -> channel_shuffle(channels / groups), its inverse
//   index_select   -> index_add                         index_add -> index_select
//   dropout        -> recorded as mul(x, mask)
#include "engine/ops/shape.h"

#include <utility>
#include <vector>

#include "engine/ops/common.h"
#include "engine/ops/elementwise.h"
#include "engine/rng.h"
#include "kernels/cpu/gather.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/gather.h"

namespace dmix {
namespace {

namespace k = kernels::cpu;
namespace cu = kernels::cuda;
using autograd::BackwardContext;

// Calls f(T{}) for every dtype the copy kernels handle.
template <class F>
void dispatch_copyable(const char* op, DType t, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); break;
    case DType::f64: f(double{}); break;
    case DType::i64: f(int64_t{}); break;
    case DType::u8: f(uint8_t{}); break;
    default: fail(op, "does not support dtype ", dtype_name(t));
  }
}

// A shape seen as (outer, size, inner) around one dim.
struct DimView {
  int64_t outer = 1, size = 1, inner = 1;
};

DimView view_around(const Shape& shape, int64_t dim) {
  DimView v;
  for (int64_t d = 0; d < dim; ++d) v.outer *= shape[d];
  v.size = shape[dim];
  for (size_t d = static_cast<size_t>(dim) + 1; d < shape.size(); ++d) v.inner *= shape[d];
  return v;
}

void check_has_dims(const char* op, const Tensor& x, int64_t at_least) {
  check(x.dim() >= at_least, op, "expects a tensor with at least ", at_least, " dim(s), got ", shape_str(x.shape()));
}

// Checks every index value against [0, size) and returns the index on `device`, where
// the kernel reads it.
Tensor checked_index(const char* op, const Tensor& index, int64_t size, int64_t dim, const Shape& shape,
                     Device device) {
  check(index.dtype() == DType::i64, op, "index must be i64, got ", dtype_name(index.dtype()));
  check(index.dim() == 1, op, "index must be 1-D, got ", shape_str(index.shape()));
  check(index.is_cpu() || index.device() == device, op, "index is on ", index.device().str(), " but the tensor is on ",
        device.str(), "; put it on the cpu or on ", device.str());
  const Tensor host = index.is_cpu() ? index : index.detach().to(Device::cpu());
  const int64_t* idx = host.data<int64_t>();
  for (int64_t j = 0; j < host.numel(); ++j) {
    check(idx[j] >= 0 && idx[j] < size, op, "index ", idx[j], " at position ", j, " is out of range [0, ", size,
          ") for dim ", dim, " of ", shape_str(shape));
  }
  return index.device() == device ? index : index.detach().to(device);
}

// The strided row copy of gather.h on the tensors' device.
template <class T>
void copy_rows_on(Device device, const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t rows,
                  int64_t cols) {
  if constexpr (cu::kBuilt) {
    if (device.is_cuda()) {
      cu::copy_rows<T>(src, src_stride, dst, dst_stride, rows, cols, device.index);
      return;
    }
  }
  k::copy_rows<T>(src, src_stride, dst, dst_stride, rows, cols);
}

// x with `before` zeros ahead of it and `after` zeros behind it along dim.
Tensor pad_dim(const char* op, const Tensor& x, int64_t dim, int64_t before, int64_t after) {
  Shape out_shape = x.shape();
  out_shape[dim] += before + after;
  Tensor y = Tensor::zeros(out_shape, x.dtype(), x.device());
  const DimView v = view_around(x.shape(), dim);
  dispatch_copyable(op, x.dtype(), [&](auto t) {
    using T = decltype(t);
    copy_rows_on<T>(x.device(), x.data<T>(), v.size * v.inner, y.data<T>() + before * v.inner,
                    out_shape[dim] * v.inner, v.outer, v.size * v.inner);
  });
  autograd::record(op, {x}, {y}, [dim, before, size = v.size](const BackwardContext& ctx) -> TensorList {
    return {narrow(ctx.grad(), dim, before, size)};
  });
  return y;
}

}  // namespace

Tensor cat(const TensorList& xs, int64_t dim) {
  const char* op = "cat";
  check(!xs.empty(), op, "needs at least one tensor");
  for (const Tensor& x : xs) detail::check_defined(op, x, "input");
  const Tensor& first = xs[0];
  check_has_dims(op, first, 1);
  dim = detail::wrap_dim(op, dim, first.dim());
  std::vector<int64_t> offsets, sizes;
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    detail::check_same_dtype_device(op, first, x);
    bool matches = x.dim() == first.dim();
    for (int64_t d = 0; matches && d < x.dim(); ++d) matches = d == dim || x.size(d) == first.size(d);
    check(matches, op, "input ", i, " has shape ", shape_str(x.shape()), " but input 0 has ", shape_str(first.shape()),
          "; shapes must match except along dim ", dim);
    offsets.push_back(total);
    sizes.push_back(x.size(dim));
    total += x.size(dim);
  }
  Shape out_shape = first.shape();
  out_shape[dim] = total;
  Tensor y = Tensor::empty(out_shape, first.dtype(), first.device());
  const DimView out = view_around(out_shape, dim);
  dispatch_copyable(op, first.dtype(), [&](auto t) {
    using T = decltype(t);
    for (size_t i = 0; i < xs.size(); ++i) {
      copy_rows_on<T>(y.device(), xs[i].data<T>(), sizes[i] * out.inner, y.data<T>() + offsets[i] * out.inner,
                      total * out.inner, out.outer, sizes[i] * out.inner);
    }
  });
  autograd::record(op, xs, {y}, [dim, offsets, sizes](const BackwardContext& ctx) -> TensorList {
    TensorList grads(offsets.size());
    for (size_t i = 0; i < offsets.size(); ++i) {
      if (ctx.needs(i)) grads[i] = narrow(ctx.grad(), dim, offsets[i], sizes[i]);
    }
    return grads;
  });
  return y;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  const char* op = "narrow";
  detail::check_defined(op, x, "x");
  check_has_dims(op, x, 1);
  dim = detail::wrap_dim(op, dim, x.dim());
  const DimView v = view_around(x.shape(), dim);
  check(start >= 0 && length >= 0 && start <= v.size - length, op, "range [", start, ", ", start + length,
        ") is out of bounds for size ", v.size, " of dim ", dim, " of ", shape_str(x.shape()));
  Shape out_shape = x.shape();
  out_shape[dim] = length;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch_copyable(op, x.dtype(), [&](auto t) {
    using T = decltype(t);
    copy_rows_on<T>(x.device(), x.data<T>() + start * v.inner, v.size * v.inner, y.data<T>(), length * v.inner,
                    v.outer, length * v.inner);
  });
  autograd::record(op, {x}, {y}, [dim, start, length, size = v.size](const BackwardContext& ctx) -> TensorList {
    return {pad_dim("narrow_backward", ctx.grad(), dim, start, size - start - length)};
  });
  return y;
}

Tensor pad_channels(const Tensor& x, int64_t extra) {
  const char* op = "pad_channels";
  detail::check_defined(op, x, "x");
  check_has_dims(op, x, 2);
  check(extra >= 0, op, "extra channels must be >= 0, got ", extra);
  return pad_dim(op, x, 1, 0, extra);
}

Tensor channel_shuffle(const Tensor& x, int64_t groups) {
  const char* op = "channel_shuffle";
  detail::check_defined(op, x, "x");
  check_has_dims(op, x, 2);
  const DimView v = view_around(x.shape(), 1);
  check(groups >= 1 && v.size % groups == 0, op, "groups must be >= 1 and divide the ", v.size, " channels of ",
        shape_str(x.shape()), ", got ", groups);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_copyable(op, x.dtype(), [&](auto t) {
    using T = decltype(t);
    if constexpr (cu::kBuilt) {
      if (x.is_cuda()) {
        cu::channel_shuffle<T>(x.data<T>(), v.outer, groups, v.size / groups, v.inner, y.data<T>(), x.device().index);
        return;
      }
    }
    k::channel_shuffle<T>(x.data<T>(), v.outer, groups, v.size / groups, v.inner, y.data<T>());
  });
  autograd::record(op, {x}, {y}, [inverse_groups = v.size / groups](const BackwardContext& ctx) -> TensorList {
    return {channel_shuffle(ctx.grad(), inverse_groups)};
  });
  return y;
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "index_select";
  detail::check_defined(op, x, "x");
  detail::check_defined(op, index, "index");
  check_has_dims(op, x, 1);
  dim = detail::wrap_dim(op, dim, x.dim());
  const DimView v = view_around(x.shape(), dim);
  const Tensor idx = checked_index(op, index, v.size, dim, x.shape(), x.device());
  const int64_t m = index.numel();
  Shape out_shape = x.shape();
  out_shape[dim] = m;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch_copyable(op, x.dtype(), [&](auto t) {
    using T = decltype(t);
    if constexpr (cu::kBuilt) {
      if (x.is_cuda()) {
        cu::index_select<T>(x.data<T>(), v.outer, v.size, v.inner, idx.data<int64_t>(), m, y.data<T>(),
                            x.device().index);
        return;
      }
    }
    k::index_select<T>(x.data<T>(), v.outer, v.size, v.inner, idx.data<int64_t>(), m, y.data<T>());
  });
  autograd::record(op, {x}, {y}, [dim, index, size = v.size](const BackwardContext& ctx) -> TensorList {
    return {index_add(ctx.grad(), dim, index, size)};
  });
  return y;
}

Tensor index_add(const Tensor& src, int64_t dim, const Tensor& index, int64_t size) {
  const char* op = "index_add";
  detail::check_defined(op, src, "src");
  detail::check_defined(op, index, "index");
  check_has_dims(op, src, 1);
  dim = detail::wrap_dim(op, dim, src.dim());
  check(size >= 0, op, "size must be >= 0, got ", size);
  const DimView v = view_around(src.shape(), dim);
  Shape out_shape = src.shape();
  out_shape[dim] = size;
  const Tensor idx = checked_index(op, index, size, dim, out_shape, src.device());
  check(index.numel() == v.size, op, "index has ", index.numel(), " entries but src ", shape_str(src.shape()), " has ",
        v.size, " along dim ", dim);
  Tensor y = Tensor::zeros(out_shape, src.dtype(), src.device());
  dispatch_copyable(op, src.dtype(), [&](auto t) {
    using T = decltype(t);
    if constexpr (cu::kBuilt) {
      if (src.is_cuda()) {
        cu::index_add<T>(src.data<T>(), v.outer, v.size, v.inner, idx.data<int64_t>(), size, y.data<T>(),
                         src.device().index);
        return;
      }
    }
    k::index_add<T>(src.data<T>(), v.outer, v.size, v.inner, idx.data<int64_t>(), size, y.data<T>());
  });
  autograd::record(op, {src}, {y}, [dim, index](const BackwardContext& ctx) -> TensorList {
    return {index_select(ctx.grad(), dim, index)};
  });
  return y;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  const char* op = "dropout";
  detail::check_defined(op, x, "x");
  check(p >= 0.0 && p < 1.0, op, "p must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  detail::check_float(op, x);
  // The mask is drawn on x's device: a seed gives the same mask on the CPU and a GPU.
  // It needs no gradient, so scaling it records nothing.
  const Tensor mask = mul_scalar(gen.bernoulli(x.shape(), 1.0 - p, x.dtype(), x.device()), 1.0 / (1.0 - p));
  return mul(x, mask);
}

}  // namespace dmix
