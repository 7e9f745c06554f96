// The GPU suite's main: runs doctest as usual, and on a machine without a usable GPU
// turns a clean run (every GPU case skipped) into exit code 77, which CTest reports as
// "Skipped" (SKIP_RETURN_CODE) rather than "Passed".
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "tests/gpu/gpu_test_util.h"

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int status = context.run();
  if (context.shouldExit() || status != 0) return status;
  if (!dmix::gpu_test::has_gpu()) {
    std::printf("dmix GPU suite: no usable GPU here; the GPU test cases were skipped, not passed\n");
    return 77;
  }
  return 0;
}
