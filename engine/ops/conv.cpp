// conv2d and its two adjoints, each an op whose backward is made of the other two:
//   y  = conv2d(x, w)                   dx = conv2d_backward_input(g, w)   dw = conv2d_backward_weight(g, x)
//   gx = conv2d_backward_input(g, w)    dg = conv2d(gg, w)                 dw = conv2d_backward_weight(g, gg)
//   gw = conv2d_backward_weight(g, x)   dg = conv2d(x, gg)                 dx = conv2d_backward_input(g, gg)
// All three are bilinear, and <conv2d(x, w), g> = <x, backward_input(g, w)> = <w, backward_weight(g, x)>,
// which gives every line above. So convolutions differentiate any number of times.
//
// Devices: CPU tensors run kernels/cpu/conv2d.h (im2col + GEMM); CUDA tensors run
// kernels/cuda/conv2d.h, cuDNN or the handwritten kernels as DMIX_CUDA_CONV chooses.
// Every operand must be on the input's device.
#include "engine/ops/conv.h"

#include <sstream>

#include "engine/ops/common.h"
#include "engine/ops/reduce.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cuda/build_config.h"
#include "kernels/cuda/conv2d.h"

namespace dmix {

using autograd::BackwardContext;
namespace k = kernels::cpu;
namespace cu = kernels::cuda;

namespace {

std::string options_str(const Conv2dOptions& o) {
  std::ostringstream os;
  os << "stride (" << o.stride[0] << ", " << o.stride[1] << "), padding (" << o.padding[0] << ", " << o.padding[1]
     << "), dilation (" << o.dilation[0] << ", " << o.dilation[1] << "), groups " << o.groups;
  return os.str();
}

// The kernel geometry for an input of shape x and a weight of shape w, after checking
// that they and the options describe a convolution with a non-empty output.
k::Conv2dGeometry geometry(const char* op, const Shape& x, const Shape& w, const Conv2dOptions& o) {
  check(x.size() == 4, op, "input must be 4-D (N, C, H, W), got ", shape_str(x));
  check(w.size() == 4, op, "weight must be 4-D (K, C/groups, R, S), got ", shape_str(w));
  check(o.stride[0] >= 1 && o.stride[1] >= 1 && o.padding[0] >= 0 && o.padding[1] >= 0 && o.dilation[0] >= 1 &&
            o.dilation[1] >= 1 && o.groups >= 1,
        op, "invalid options: ", options_str(o), " (stride and dilation must be >= 1, padding >= 0, groups >= 1)");
  check(x[1] >= 1 && x[2] >= 1 && x[3] >= 1, op, "input ", shape_str(x), " has an empty channel or spatial dim");
  check(w[0] >= 1 && w[1] >= 1 && w[2] >= 1 && w[3] >= 1, op, "weight ", shape_str(w), " has an empty dim");
  check(x[1] % o.groups == 0, op, "input channels ", x[1], " (input ", shape_str(x), ") are not divisible by groups ",
        o.groups);
  check(w[0] % o.groups == 0, op, "output channels ", w[0], " (weight ", shape_str(w),
        ") are not divisible by groups ", o.groups);
  check(w[1] * o.groups == x[1], op, "weight ", shape_str(w), " expects ", w[1] * o.groups, " input channels (",
        w[1], " per group x ", o.groups, " groups), but the input ", shape_str(x), " has ", x[1]);
  const int64_t span_h = o.dilation[0] * (w[2] - 1) + 1, span_w = o.dilation[1] * (w[3] - 1) + 1;
  check(span_h <= x[2] + 2 * o.padding[0] && span_w <= x[3] + 2 * o.padding[1], op, "kernel ", w[2], "x", w[3],
        " (dilated ", span_h, "x", span_w, ") is larger than the padded input ", x[2] + 2 * o.padding[0], "x",
        x[3] + 2 * o.padding[1], " (input ", shape_str(x), ", ", options_str(o), ")");
  k::Conv2dGeometry g;
  g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3];
  g.K = w[0], g.R = w[2], g.S = w[3];
  g.stride_h = o.stride[0], g.stride_w = o.stride[1];
  g.pad_h = o.padding[0], g.pad_w = o.padding[1];
  g.dilation_h = o.dilation[0], g.dilation_w = o.dilation[1];
  g.groups = o.groups;
  return g;
}

Shape output_shape(const k::Conv2dGeometry& g) { return {g.N, g.K, g.out_h(), g.out_w()}; }

void check_float_operands(const char* op, const Tensor& a, const char* a_name, const Tensor& b, const char* b_name) {
  detail::check_defined(op, a, a_name);
  detail::check_defined(op, b, b_name);
  detail::check_float(op, a);
  detail::check_same_dtype_device(op, a, b);
}

// A gradient handed to an adjoint must have the forward's output shape.
void check_grad_shape(const char* op, const Tensor& grad_out, const k::Conv2dGeometry& g, const Shape& x,
                      const Shape& w) {
  check(grad_out.shape() == output_shape(g), op, "grad_out ", shape_str(grad_out.shape()),
        " does not match the output shape ", shape_str(output_shape(g)), " of input ", shape_str(x), " and weight ",
        shape_str(w));
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opt) {
  const char* op = "conv2d";
  check_float_operands(op, x, "input", weight, "weight");
  const k::Conv2dGeometry g = geometry(op, x.shape(), weight.shape(), opt);
  const bool has_bias = bias.defined();
  if (has_bias) {
    detail::check_same_dtype_device(op, x, bias);
    check(bias.shape() == Shape{g.K}, op, "bias must have shape [", g.K, "] for weight ", shape_str(weight.shape()),
          ", got ", shape_str(bias.shape()));
  }
  Tensor y = Tensor::empty(output_shape(g), x.dtype(), x.device());
  detail::dispatch_float(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* b = has_bias ? bias.data<T>() : nullptr;
    if constexpr (cu::kBuilt) {
      if (x.is_cuda()) {
        cu::conv2d_forward<T>(g, x.data<T>(), weight.data<T>(), b, y.data<T>(), x.device().index);
        return;
      }
    }
    k::conv2d_forward<T>(g, x.data<T>(), weight.data<T>(), b, y.data<T>());
  });
  TensorList inputs = {x, weight};
  if (has_bias) inputs.push_back(bias);
  autograd::record(op, inputs, {y}, [x, weight, opt, has_bias](const BackwardContext& c) {
    TensorList grads(has_bias ? 3 : 2);
    if (c.needs(0)) grads[0] = conv2d_backward_input(c.grad(), weight, x.shape(), opt);
    if (c.needs(1)) grads[1] = conv2d_backward_weight(c.grad(), x, weight.shape(), opt);
    if (has_bias && c.needs(2)) grads[2] = sum(c.grad(), {0, 2, 3});
    return grads;
  });
  return y;
}

Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dOptions& opt) {
  const char* op = "conv2d_backward_input";
  check_float_operands(op, grad_out, "grad_out", weight, "weight");
  const k::Conv2dGeometry g = geometry(op, input_shape, weight.shape(), opt);
  check_grad_shape(op, grad_out, g, input_shape, weight.shape());
  Tensor gx = Tensor::empty(input_shape, grad_out.dtype(), grad_out.device());
  detail::dispatch_float(op, grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (grad_out.is_cuda()) {
        cu::conv2d_backward_input<T>(g, grad_out.data<T>(), weight.data<T>(), gx.data<T>(), grad_out.device().index);
        return;
      }
    }
    k::conv2d_backward_input<T>(g, grad_out.data<T>(), weight.data<T>(), gx.data<T>());
  });
  autograd::record(op, {grad_out, weight}, {gx}, [grad_out, weight, opt](const BackwardContext& c) {
    return TensorList{c.needs(0) ? conv2d(c.grad(), weight, Tensor(), opt) : Tensor(),
                      c.needs(1) ? conv2d_backward_weight(grad_out, c.grad(), weight.shape(), opt) : Tensor()};
  });
  return gx;
}

Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dOptions& opt) {
  const char* op = "conv2d_backward_weight";
  check_float_operands(op, grad_out, "grad_out", x, "input");
  const k::Conv2dGeometry g = geometry(op, x.shape(), weight_shape, opt);
  check_grad_shape(op, grad_out, g, x.shape(), weight_shape);
  Tensor gw = Tensor::empty(weight_shape, grad_out.dtype(), grad_out.device());
  detail::dispatch_float(op, grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (cu::kBuilt) {
      if (grad_out.is_cuda()) {
        cu::conv2d_backward_weight<T>(g, grad_out.data<T>(), x.data<T>(), gw.data<T>(), grad_out.device().index);
        return;
      }
    }
    k::conv2d_backward_weight<T>(g, grad_out.data<T>(), x.data<T>(), gw.data<T>());
  });
  autograd::record(op, {grad_out, x}, {gw}, [grad_out, x, opt](const BackwardContext& c) {
    return TensorList{c.needs(0) ? conv2d(x, c.grad(), Tensor(), opt) : Tensor(),
                      c.needs(1) ? conv2d_backward_input(grad_out, c.grad(), x.shape(), opt) : Tensor()};
  });
  return gw;
}

}  // namespace dmix
