// The image path of image folders and `dmix predict`: decode_image's size bound, checked
// before stb_image allocates, then stb_image itself (JPEG, PNG, BMP, PNM, TGA, GIF) and the
// conversion to planar channels. Odd-sized inputs decode as grey, even-sized as RGB, so
// both conversions run without spending input bytes on a choice. The bound is lowered to
// 512 x 512: decoding garbage of the default 8192 x 8192 takes seconds under the sanitizers,
// and the decoders' code paths do not depend on the size (the default bound has its doctest).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "augment/datasets.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr int64_t kMaxPixels = 512 * 512;
  const int64_t channels = size % 2 == 1 ? 1 : 3;
  dmix::fuzz::expect_only_dmix_errors([&] {
    const dmix::Tensor image = dmix::augment::decode_image(data, size, "fuzz", channels, kMaxPixels);
    if (image.dim() != 3 || image.size(0) != channels || image.size(1) * image.size(2) > kMaxPixels) std::abort();
  });
  return 0;
}
