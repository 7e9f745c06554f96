// Conv2dOptions from stride, padding, dilation and groups in one call: shared by the conv
// op-table rows (rows_conv.cpp) and the conv tests (test_conv.cpp).
#pragma once
#include <array>
#include <cstdint>

#include "engine/ops/conv.h"

namespace dmix::testing {

inline Conv2dOptions conv_options(std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                                  std::array<int64_t, 2> dilation = {1, 1}, int64_t groups = 1) {
  Conv2dOptions o;
  o.stride = stride;
  o.padding = padding;
  o.dilation = dilation;
  o.groups = groups;
  return o;
}

}  // namespace dmix::testing
