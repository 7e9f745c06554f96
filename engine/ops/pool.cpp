// Pooling ops. Every backward is itself an op with a backward, so pooling layers can be
// differentiated any number of times:
//   max_pool2d           backward: max_pool2d_backward (scatter of g to the arg max indices)
//   max_pool2d_backward  backward: max_pool2d_gather (read gg at the same indices), and back
//   avg_pool2d and adaptive_avg_pool2d are linear: backward is the adjoint op, whose
//   backward is the forward op again.
// Devices: CPU tensors run kernels/cpu/pool2d.h, CUDA tensors kernels/cuda/pool2d.h (the
// same results bit for bit). The arg max indices live on the input's device.
#include "engine/ops/pool.h"

#include <sstream>

#include "engine/ops/common.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/pool2d.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/pool2d.h"

namespace dmix {

using autograd::BackwardContext;
namespace k = kernels::cpu;
namespace cu = kernels::cuda;

namespace {

std::string options_str(const Pool2dOptions& o) {
  std::ostringstream os;
  os << "kernel (" << o.kernel[0] << ", " << o.kernel[1] << "), stride (" << o.stride[0] << ", " << o.stride[1]
     << "), padding (" << o.padding[0] << ", " << o.padding[1] << "), ceil_mode " << o.ceil_mode;
  return os.str();
}

void check_input(const char* op, const Tensor& x) {
  detail::check_defined(op, x, "input");
  detail::check_float(op, x);
  detail::check_dim(op, x, 4, "input (N, C, H, W)");
}

// The kernel geometry for input shape x, checking the options as PyTorch does.
k::Pool2dGeometry geometry(const char* op, const Shape& x, const Pool2dOptions& o) {
  check(x.size() == 4, op, "input must be 4-D (N, C, H, W), got ", shape_str(x));
  k::Pool2dGeometry g;
  g.planes = x[0] * x[1], g.H = x[2], g.W = x[3];
  g.kernel_h = o.kernel[0], g.kernel_w = o.kernel[1];
  g.stride_h = o.stride[0] == 0 ? o.kernel[0] : o.stride[0];
  g.stride_w = o.stride[1] == 0 ? o.kernel[1] : o.stride[1];
  g.pad_h = o.padding[0], g.pad_w = o.padding[1];
  check(g.kernel_h >= 1 && g.kernel_w >= 1 && g.stride_h >= 1 && g.stride_w >= 1 && g.pad_h >= 0 && g.pad_w >= 0,
        op, "invalid options: ", options_str(o), " (kernel >= 1, stride >= 0 with 0 meaning the kernel, padding >= 0)");
  check(2 * g.pad_h <= g.kernel_h && 2 * g.pad_w <= g.kernel_w, op, "padding must be at most half the kernel, got ",
        options_str(o));
  g.out_h = k::pool2d_output_size(g.H, g.kernel_h, g.stride_h, g.pad_h, o.ceil_mode);
  g.out_w = k::pool2d_output_size(g.W, g.kernel_w, g.stride_w, g.pad_w, o.ceil_mode);
  check(g.out_h >= 1 && g.out_w >= 1, op, "kernel ", g.kernel_h, "x", g.kernel_w, " is larger than the padded input ",
        g.H + 2 * g.pad_h, "x", g.W + 2 * g.pad_w, " (input ", shape_str(x), ", ", options_str(o), ")");
  return g;
}

Shape output_shape(const Shape& x, int64_t out_h, int64_t out_w) { return {x[0], x[1], out_h, out_w}; }

void check_grad_shape(const char* op, const Tensor& grad_out, const Shape& want) {
  check(grad_out.shape() == want, op, "grad_out ", shape_str(grad_out.shape()), " does not match the output shape ",
        shape_str(want));
}

// ---- max pooling's closed pair: scatter to the arg max and gather from it ----

// The pair carries the forward's geometry g: the CUDA backward collects per input cell
// from the outputs whose window covers it.
Tensor max_pool2d_gather(const Tensor& x, const Tensor& indices, const k::Pool2dGeometry& g);

void check_indices(const char* op, const Tensor& t, const Tensor& indices) {
  check(indices.dtype() == DType::i64 && indices.device() == t.device(), op, "indices ", indices.str(),
        " must be i64 on the device of ", t.str());
}

// gx = zeros(input_shape); gx.plane[indices] += g: max_pool2d's backward.
Tensor max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Shape& input_shape,
                           const k::Pool2dGeometry& g) {
  const char* op = "max_pool2d_backward";
  detail::check_float(op, grad_out);
  check_indices(op, grad_out, indices);
  check_grad_shape(op, grad_out, indices.shape());
  Tensor gx = Tensor::empty(input_shape, grad_out.dtype(), grad_out.device());
  const int64_t planes = input_shape[0] * input_shape[1];
  detail::dispatch_float(op, grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (grad_out.is_cuda()) {
        cu::max_pool2d_backward<T>(g, grad_out.data<T>(), indices.data<int64_t>(), gx.data<T>(),
                                   grad_out.device().index);
        return;
      }
    }
    k::max_pool2d_scatter<T>(planes, input_shape[2] * input_shape[3], indices.size(2) * indices.size(3),
                             grad_out.data<T>(), indices.data<int64_t>(), gx.data<T>());
  });
  autograd::record(op, {grad_out}, {gx}, [indices, g](const BackwardContext& c) {
    return TensorList{max_pool2d_gather(c.grad(), indices, g)};
  });
  return gx;
}

// y = x.plane[indices], shaped like indices: the adjoint of max_pool2d_backward.
Tensor max_pool2d_gather(const Tensor& x, const Tensor& indices, const k::Pool2dGeometry& g) {
  const char* op = "max_pool2d_gather";
  detail::check_float(op, x);
  check_indices(op, x, indices);
  Tensor y = Tensor::empty(indices.shape(), x.dtype(), x.device());
  const int64_t planes = x.size(0) * x.size(1), in_size = x.size(2) * x.size(3);
  const int64_t out_size = indices.size(2) * indices.size(3);
  detail::dispatch_float(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (x.is_cuda()) {
        cu::max_pool2d_gather<T>(planes, in_size, out_size, x.data<T>(), indices.data<int64_t>(), y.data<T>(),
                                 x.device().index);
        return;
      }
    }
    k::max_pool2d_gather<T>(planes, in_size, out_size, x.data<T>(), indices.data<int64_t>(), y.data<T>());
  });
  autograd::record(op, {x}, {y}, [indices, g, input_shape = x.shape()](const BackwardContext& c) {
    return TensorList{max_pool2d_backward(c.grad(), indices, input_shape, g)};
  });
  return y;
}

// ---- the adjoints of the linear pools ----

Tensor avg_pool2d_backward(const Tensor& grad_out, const Shape& input_shape, const Pool2dOptions& opt) {
  const char* op = "avg_pool2d_backward";
  detail::check_float(op, grad_out);
  const k::Pool2dGeometry g = geometry(op, input_shape, opt);
  check_grad_shape(op, grad_out, output_shape(input_shape, g.out_h, g.out_w));
  Tensor gx = Tensor::empty(input_shape, grad_out.dtype(), grad_out.device());
  detail::dispatch_float(op, grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (grad_out.is_cuda()) {
        cu::avg_pool2d_backward<T>(g, opt.count_include_pad, grad_out.data<T>(), gx.data<T>(), grad_out.device().index);
        return;
      }
    }
    k::avg_pool2d_backward<T>(g, opt.count_include_pad, grad_out.data<T>(), gx.data<T>());
  });
  autograd::record(op, {grad_out}, {gx},
                   [opt](const BackwardContext& c) { return TensorList{avg_pool2d(c.grad(), opt)}; });
  return gx;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& grad_out, const Shape& input_shape) {
  const char* op = "adaptive_avg_pool2d_backward";
  detail::check_float(op, grad_out);
  check(grad_out.dim() == 4 && grad_out.size(0) == input_shape[0] && grad_out.size(1) == input_shape[1], op,
        "grad_out ", shape_str(grad_out.shape()), " does not match the input ", shape_str(input_shape));
  const int64_t out_h = grad_out.size(2), out_w = grad_out.size(3);
  Tensor gx = Tensor::empty(input_shape, grad_out.dtype(), grad_out.device());
  detail::dispatch_float(op, grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t planes = input_shape[0] * input_shape[1];
    if constexpr (cu::kBuilt) {
      if (grad_out.is_cuda()) {
        cu::adaptive_avg_pool2d_backward<T>(planes, input_shape[2], input_shape[3], out_h, out_w, grad_out.data<T>(),
                                            gx.data<T>(), grad_out.device().index);
        return;
      }
    }
    k::adaptive_avg_pool2d_backward<T>(planes, input_shape[2], input_shape[3], out_h, out_w, grad_out.data<T>(),
                                       gx.data<T>());
  });
  autograd::record(op, {grad_out}, {gx}, [out_h, out_w](const BackwardContext& c) {
    return TensorList{adaptive_avg_pool2d(c.grad(), out_h, out_w)};
  });
  return gx;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt) {
  const char* op = "max_pool2d";
  check_input(op, x);
  const k::Pool2dGeometry g = geometry(op, x.shape(), opt);
  const Shape out_shape = output_shape(x.shape(), g.out_h, g.out_w);
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor indices = Tensor::empty(out_shape, DType::i64, x.device());
  detail::dispatch_float(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (x.is_cuda()) {
        cu::max_pool2d_forward<T>(g, x.data<T>(), y.data<T>(), indices.data<int64_t>(), x.device().index);
        return;
      }
    }
    k::max_pool2d_forward<T>(g, x.data<T>(), y.data<T>(), indices.data<int64_t>());
  });
  autograd::record(op, {x}, {y}, [indices, g, input_shape = x.shape()](const BackwardContext& c) {
    return TensorList{max_pool2d_backward(c.grad(), indices, input_shape, g)};
  });
  return y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt) {
  const char* op = "avg_pool2d";
  check_input(op, x);
  const k::Pool2dGeometry g = geometry(op, x.shape(), opt);
  Tensor y = Tensor::empty(output_shape(x.shape(), g.out_h, g.out_w), x.dtype(), x.device());
  detail::dispatch_float(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (x.is_cuda()) {
        cu::avg_pool2d_forward<T>(g, opt.count_include_pad, x.data<T>(), y.data<T>(), x.device().index);
        return;
      }
    }
    k::avg_pool2d_forward<T>(g, opt.count_include_pad, x.data<T>(), y.data<T>());
  });
  autograd::record(op, {x}, {y}, [opt, input_shape = x.shape()](const BackwardContext& c) {
    return TensorList{avg_pool2d_backward(c.grad(), input_shape, opt)};
  });
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  const char* op = "adaptive_avg_pool2d";
  check_input(op, x);
  check(out_h >= 1 && out_w >= 1, op, "output size must be positive, got ", out_h, "x", out_w, " for input ", x.str());
  check(x.size(2) >= 1 && x.size(3) >= 1, op, "input ", x.str(), " has an empty spatial dim");
  Tensor y = Tensor::empty(output_shape(x.shape(), out_h, out_w), x.dtype(), x.device());
  detail::dispatch_float(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t planes = x.size(0) * x.size(1);
    if constexpr (cu::kBuilt) {
      if (x.is_cuda()) {
        cu::adaptive_avg_pool2d_forward<T>(planes, x.size(2), x.size(3), out_h, out_w, x.data<T>(), y.data<T>(),
                                           x.device().index);
        return;
      }
    }
    k::adaptive_avg_pool2d_forward<T>(planes, x.size(2), x.size(3), out_h, out_w, x.data<T>(), y.data<T>());
  });
  autograd::record(op, {x}, {y}, [input_shape = x.shape()](const BackwardContext& c) {
    return TensorList{adaptive_avg_pool2d_backward(c.grad(), input_shape)};
  });
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  check_input("global_avg_pool2d", x);
  return mean(x, {2, 3});
}

}  // namespace dmix
