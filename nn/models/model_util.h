// Small helpers shared by the model files: layer factories with the argument order the
// reference Python code uses, and Python's round().
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>

#include "engine/rng.h"
#include "nn/layers.h"

namespace dmix::nn::models_detail {

inline std::shared_ptr<Conv2d> make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                                         Generator& gen, bool bias = false, int64_t groups = 1,
                                         ConvInit init = ConvInit::HeFanOutNormal) {
  Conv2dConfig c{in, out, kernel};
  c.stride = stride;
  c.padding = padding;
  c.groups = groups;
  c.bias = bias;
  c.init = init;
  return std::make_shared<Conv2d>(c, gen);
}

inline std::shared_ptr<BatchNorm2d> make_bn(int64_t channels, double momentum = 0.1) {
  return std::make_shared<BatchNorm2d>(channels, true, momentum);
}

inline Pool2dOptions pool_options(int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode = false) {
  Pool2dOptions o;
  o.kernel = {kernel, kernel};
  o.stride = {stride, stride};
  o.padding = {padding, padding};
  o.ceil_mode = ceil_mode;
  return o;
}

// Python 3's round(x) for a float: to the nearest integer, ties to even. PyramidNet's
// widths depend on it (round(2.5) == 2), so std::round (ties away from zero) would give
// different channel counts, and checkpoints would no longer load.
inline int64_t python_round(double x) {
  const double lower = std::floor(x);
  const double frac = x - lower;  // exact for doubles of channel-count magnitude
  if (frac > 0.5) return int64_t(lower) + 1;
  if (frac < 0.5) return int64_t(lower);
  return std::fmod(lower, 2.0) == 0.0 ? int64_t(lower) : int64_t(lower) + 1;
}

}  // namespace dmix::nn::models_detail
