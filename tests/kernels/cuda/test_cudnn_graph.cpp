// The host half of kernels/cuda/cudnn_graph.cpp, which needs no GPU: cuDNN itself checks
// that its graph API accepts every convolution pass as dmix describes it (tensor extents
// and strides, the group count read off the weight's extents, the output size), so the
// description is tested on every machine with cuDNN, CI included. Choosing and running
// plans needs a GPU and is tested in tests/gpu/test_conv_pool.cpp.
#include <doctest/doctest.h>

#include <string>

#include "kernels/cuda/cudnn_graph.h"
#include "kernels/error.h"

namespace cu = dmix::kernels::cuda;
using dmix::kernels::cpu::Conv2dGeometry;

namespace {

Conv2dGeometry geometry(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                        int64_t stride_h = 1, int64_t stride_w = 1, int64_t pad_h = 0, int64_t pad_w = 0,
                        int64_t dilation_h = 1, int64_t dilation_w = 1, int64_t groups = 1) {
  Conv2dGeometry g;
  g.N = N, g.C = C, g.H = H, g.W = W, g.K = K, g.R = R, g.S = S;
  g.stride_h = stride_h, g.stride_w = stride_w, g.pad_h = pad_h, g.pad_w = pad_w;
  g.dilation_h = dilation_h, g.dilation_w = dilation_w, g.groups = groups;
  return g;
}

const cu::ConvPass kPasses[] = {cu::ConvPass::Forward, cu::ConvPass::BackwardData, cu::ConvPass::BackwardFilter};

}  // namespace

TEST_CASE("cudnn graph: cuDNN accepts dmix's description of every pass of the convolutions dmix runs") {
  struct Named {
    const char* name;
    Conv2dGeometry g;
  };
  const Named cases[] = {
      {"3x3 pad 1", geometry(2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1)},
      {"3x3 stride 2", geometry(2, 4, 9, 8, 6, 3, 3, 2, 2, 1, 1)},
      {"3x2 dilation 2, stride (1,2), pad (2,1)", geometry(1, 5, 11, 10, 7, 3, 2, 1, 2, 2, 1, 2, 2)},
      {"groups 2", geometry(2, 8, 6, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2)},
      {"depthwise", geometry(2, 6, 7, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6)},
      {"depthwise x2 stride 2", geometry(1, 6, 8, 7, 12, 3, 3, 2, 2, 1, 1, 1, 1, 6)},
      {"groups 3, 2x4, stride (2,3), pad (0,1), dilation (3,2)", geometry(2, 9, 10, 11, 12, 2, 4, 2, 3, 0, 1, 3, 2, 3)},
      {"1x1 bottleneck", geometry(8, 256, 56, 56, 64, 1, 1)},
      {"ResNet-50 stem 7x7 stride 2", geometry(32, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3)},
      {"kernel as large as the padded input", geometry(2, 3, 4, 5, 4, 6, 7, 1, 1, 1, 1)},
  };
  for (const Named& c : cases)
    for (cu::ConvPass pass : kPasses)
      for (int64_t alignment : {4, 16}) {
        CAPTURE(c.name);
        CAPTURE(cu::conv_pass_name(pass));
        CAPTURE(alignment);
        CHECK_NOTHROW(cu::cudnn_graph_describe(pass, c.g, alignment));
      }
}

TEST_CASE("cudnn graph: a description cuDNN cannot accept is a dmix::Error, not a crash") {
  // The kernel does not fit the padded input: the output has no rows. cuDNN rejects the
  // (N, K, 0, Q) output tensor; dmix says which descriptor it rejected.
  const Conv2dGeometry empty_output = geometry(1, 2, 3, 3, 2, 5, 5);
  REQUIRE(empty_output.out_h() <= 0);
  for (cu::ConvPass pass : kPasses) {
    CAPTURE(cu::conv_pass_name(pass));
    try {
      cu::cudnn_graph_describe(pass, empty_output, 16);
      FAIL("cuDNN accepted a convolution with an empty output");
    } catch (const dmix::Error& e) {
      CHECK(std::string(e.what()).find("cuDNN graph") != std::string::npos);
    }
  }
  CHECK_THROWS_AS(cu::cudnn_graph_describe(cu::ConvPass::Forward, geometry(1, 2, 5, 5, 2, 3, 3), 2), dmix::Error);
}
