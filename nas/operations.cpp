#include "nas/operations.h"

#include <algorithm>

#include "engine/error.h"
#include "engine/ops.h"

namespace dmix::nas {

namespace {

std::shared_ptr<nn::Conv2d> conv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding,
                                 int64_t dilation, int64_t groups, Generator& gen) {
  nn::Conv2dConfig c{c_in, c_out, kernel, stride, padding, dilation, groups};
  c.init = nn::ConvInit::PyTorchDefault;
  return std::make_shared<nn::Conv2d>(c, gen);
}

void check_channels(const char* op, int64_t c_in, int64_t c_out, int64_t stride) {
  check(c_in > 0 && c_out > 0, op, "channels must be positive, got ", c_in, " -> ", c_out);
  check(stride >= 1, op, "stride must be positive, got ", stride);
}

}  // namespace

const std::vector<std::string>& primitives() {
  static const std::vector<std::string> names{"none",         "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                                              "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"};
  return names;
}

bool is_primitive(const std::string& name) {
  const auto& names = primitives();
  return std::find(names.begin(), names.end(), name) != names.end();
}

ReLUConvBN::ReLUConvBN(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, bool affine,
                       Generator& gen) {
  check_channels("ReLUConvBN", c_in, c_out, stride);
  op = register_module("op", std::make_shared<nn::Sequential>());
  op->push_back(std::make_shared<nn::ReLU>());
  op->push_back(conv(c_in, c_out, kernel, stride, padding, 1, 1, gen));
  op->push_back(std::make_shared<nn::BatchNorm2d>(c_out, affine));
}

DilConv::DilConv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                 bool affine, Generator& gen) {
  check_channels("DilConv", c_in, c_out, stride);
  op = register_module("op", std::make_shared<nn::Sequential>());
  op->push_back(std::make_shared<nn::ReLU>());
  op->push_back(conv(c_in, c_in, kernel, stride, padding, dilation, c_in, gen));
  op->push_back(conv(c_in, c_out, 1, 1, 0, 1, 1, gen));
  op->push_back(std::make_shared<nn::BatchNorm2d>(c_out, affine));
}

SepConv::SepConv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, bool affine,
                 Generator& gen) {
  check_channels("SepConv", c_in, c_out, stride);
  op = register_module("op", std::make_shared<nn::Sequential>());
  op->push_back(std::make_shared<nn::ReLU>());
  op->push_back(conv(c_in, c_in, kernel, stride, padding, 1, c_in, gen));
  op->push_back(conv(c_in, c_in, 1, 1, 0, 1, 1, gen));
  op->push_back(std::make_shared<nn::BatchNorm2d>(c_in, affine));
  op->push_back(std::make_shared<nn::ReLU>());
  op->push_back(conv(c_in, c_in, kernel, 1, padding, 1, c_in, gen));
  op->push_back(conv(c_in, c_out, 1, 1, 0, 1, 1, gen));
  op->push_back(std::make_shared<nn::BatchNorm2d>(c_out, affine));
}

FactorizedReduce::FactorizedReduce(int64_t c_in, int64_t c_out, bool affine, Generator& gen) {
  check_channels("FactorizedReduce", c_in, c_out, 2);
  check(c_out % 2 == 0, "FactorizedReduce", "output channels must be even, got ", c_out);
  conv_1 = register_module("conv_1", conv(c_in, c_out / 2, 1, 2, 0, 1, 1, gen));
  conv_2 = register_module("conv_2", conv(c_in, c_out / 2, 1, 2, 0, 1, 1, gen));
  bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(c_out, affine));
}

Tensor FactorizedReduce::forward(const Tensor& x) {
  check(x.dim() == 4, "FactorizedReduce", "expects (N, C, H, W), got ", x.dim(), " dimensions");
  const Tensor h = relu(x);
  const int64_t H = h.size(2), W = h.size(3);
  Tensor shifted;
  if (H % 2 == 0 && W % 2 == 0) {
    shifted = conv_2->forward(narrow(narrow(h, 2, 1, H - 1), 3, 1, W - 1));
  } else {
    // Padding 1 samples rows -1, 1, 3, ...: dropping the first gives rows 1, 3, ..., and on
    // an odd side the last of them is the zero padding past the border.
    Conv2dOptions padded = conv_2->options;
    padded.padding = {1, 1};
    const Tensor y = conv2d(h, conv_2->weight, Tensor(), padded);
    shifted = narrow(narrow(y, 2, 1, (H + 1) / 2), 3, 1, (W + 1) / 2);
  }
  return bn->forward(cat({conv_1->forward(h), shifted}, 1));
}

Tensor Zero::forward(const Tensor& x) {
  check(x.dim() == 4, "Zero", "expects (N, C, H, W), got ", x.dim(), " dimensions");
  const int64_t h = (x.size(2) + stride - 1) / stride, w = (x.size(3) + stride - 1) / stride;
  return Tensor::zeros({x.size(0), x.size(1), h, w}, x.dtype(), x.device());
}

std::shared_ptr<nn::Module> make_primitive(const std::string& name, int64_t channels, int64_t stride, bool affine,
                                           Generator& gen) {
  check(is_primitive(name), "make_primitive", "unknown primitive '", name, "'");
  check(stride == 1 || stride == 2, "make_primitive", name, ": stride must be 1 or 2, got ", stride);
  check(channels > 0, "make_primitive", name, ": channels must be positive, got ", channels);
  Pool2dOptions pool;
  pool.kernel = {3, 3};
  pool.stride = {stride, stride};
  pool.padding = {1, 1};
  if (name == "none") return std::make_shared<Zero>(stride);
  if (name == "max_pool_3x3") return std::make_shared<nn::MaxPool2d>(pool);
  if (name == "avg_pool_3x3") {
    pool.count_include_pad = false;
    return std::make_shared<nn::AvgPool2d>(pool);
  }
  if (name == "skip_connect") {
    if (stride == 1) return std::make_shared<nn::Identity>();
    return std::make_shared<FactorizedReduce>(channels, channels, affine, gen);
  }
  if (name == "sep_conv_3x3") return std::make_shared<SepConv>(channels, channels, 3, stride, 1, affine, gen);
  if (name == "sep_conv_5x5") return std::make_shared<SepConv>(channels, channels, 5, stride, 2, affine, gen);
  if (name == "dil_conv_3x3") return std::make_shared<DilConv>(channels, channels, 3, stride, 2, 2, affine, gen);
  return std::make_shared<DilConv>(channels, channels, 5, stride, 4, 2, affine, gen);  // dil_conv_5x5
}

bool is_identity(const nn::Module& op) { return dynamic_cast<const nn::Identity*>(&op) != nullptr; }

}  // namespace dmix::nas
