// The DARTS / PC-DARTS search space: its 8 primitive operations and the two building blocks
// the cells preprocess their inputs with (ReLUConvBN, FactorizedReduce), as the reference
// (quark0/darts, yuhuixu1993/PC-DARTS operations.py) defines them, with PyTorch's attribute
// names so state dicts match: a ReLUConvBN / SepConv / DilConv keeps its layers in a
// Sequential named `op` ("op.1.weight" is the first convolution), FactorizedReduce has
// `conv_1`, `conv_2` and `bn`.
//
// Every op maps C channels to C channels; stride 2 halves the resolution (rounding up).
// `affine` is the BatchNorm flag: true in the evaluation networks, false in the search
// network, whose BNs then hold running statistics only. Convolutions carry no bias and
// draw their weights as nn.Conv2d does by default (the reference keeps PyTorch's init).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "nn/layers.h"

namespace dmix::nas {

// PC-DARTS's PRIMITIVES, in the index order its architecture weights alpha use:
// none, max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3,
// dil_conv_5x5.
const std::vector<std::string>& primitives();
bool is_primitive(const std::string& name);

// ReLU -> conv k x k (C_in -> C_out, stride, padding) -> BN.
class ReLUConvBN : public nn::Module {
 public:
  ReLUConvBN(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, bool affine,
             Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override { return op->forward(x); }
  std::shared_ptr<nn::Sequential> op;
};

// ReLU -> depthwise k x k (stride, padding, dilation) -> 1x1 (C_in -> C_out) -> BN.
class DilConv : public nn::Module {
 public:
  DilConv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation, bool affine,
          Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override { return op->forward(x); }
  std::shared_ptr<nn::Sequential> op;
};

// The separable convolution applied twice: [ReLU -> depthwise k x k (stride) -> 1x1 -> BN]
// then [ReLU -> depthwise k x k (stride 1) -> 1x1 (C_in -> C_out) -> BN], eight layers in `op`.
class SepConv : public nn::Module {
 public:
  SepConv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, bool affine,
          Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override { return op->forward(x); }
  std::shared_ptr<nn::Sequential> op;
};

// Halves the resolution without losing every other pixel: ReLU, then two 1x1 stride-2
// convolutions of C_out/2 channels each, the second on the input shifted by one pixel
// (x[:, :, 1:, 1:]), concatenated along channels, then BN. The reference needs an even
// height and width (the halves differ in size otherwise); here an odd side is padded by
// one zero at its far end for the shifted half, so both halves have ceil(H/2) rows and
// even sides compute exactly the reference.
class FactorizedReduce : public nn::Module {
 public:
  FactorizedReduce(int64_t c_in, int64_t c_out, bool affine, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Conv2d> conv_1, conv_2;
  std::shared_ptr<nn::BatchNorm2d> bn;
};

// `none`: zeros of the shape x[:, :, ::stride, ::stride], on x's device and dtype. The
// reference multiplies that slice by 0; no gradient flows through either way, and a
// constant costs nothing.
class Zero : public nn::Module {
 public:
  explicit Zero(int64_t stride) : stride(stride) {}
  Tensor forward(const Tensor& x) override;
  int64_t stride;
};

// The primitive `name` for C channels at stride 1 or 2: pools (3x3, padding 1; the average
// excludes the padding from its count), identity or FactorizedReduce for skip_connect,
// SepConv 3x3 / 5x5 (padding 1 / 2), DilConv 3x3 / 5x5 (dilation 2, padding 2 / 4), Zero.
// An unknown name or a stride other than 1 or 2 is a dmix::Error.
std::shared_ptr<nn::Module> make_primitive(const std::string& name, int64_t channels, int64_t stride, bool affine,
                                           Generator& gen = default_generator());

// Whether `op` passes its input through unchanged (skip_connect at stride 1): drop-path
// leaves such edges alone.
bool is_identity(const nn::Module& op);

}  // namespace dmix::nas
