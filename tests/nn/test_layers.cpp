// Layer initialisation: each scheme's weights follow the distribution its reference code
// draws from (sample moments against the exact ones, and the uniform's hard bound).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "nn/layers.h"

using namespace dmix;
using namespace dmix::nn;

namespace {

struct Moments {
  double mean = 0, std = 0, max_abs = 0;
  size_t n = 0;
};

Moments moments_of(const Tensor& t) {
  Moments m;
  const float* p = t.data<float>();
  m.n = static_cast<size_t>(t.numel());
  double sum = 0, sq = 0;
  for (size_t i = 0; i < m.n; ++i) {
    sum += p[i];
    sq += double(p[i]) * p[i];
    m.max_abs = std::max(m.max_abs, std::abs(double(p[i])));
  }
  m.mean = sum / double(m.n);
  m.std = std::sqrt(sq / double(m.n) - m.mean * m.mean);
  return m;
}

}  // namespace

TEST_CASE("Conv2d init: He fan-out normal, N(0, 2 / (out * k * k))") {
  Generator gen(11);
  Conv2dConfig c{64, 128, 3};
  const Conv2d conv(c, gen);
  const Moments m = moments_of(conv.weight);
  const double sigma = std::sqrt(2.0 / (128.0 * 9.0));
  CHECK(m.n == size_t{128 * 64 * 9});
  // The sample std of n normals has relative error ~1/sqrt(2n) = 0.3%; allow 2%.
  CHECK(m.std == doctest::Approx(sigma).epsilon(0.02));
  CHECK(std::abs(m.mean) < 5.0 * sigma / std::sqrt(double(m.n)));
  CHECK(m.max_abs > 3.5 * sigma);  // a normal's tails, not a bounded draw
}

TEST_CASE("Conv2d init: PyTorch's default, U(-b, b) with b = 1 / sqrt(in / groups * k * k)") {
  for (int64_t groups : {1, 4}) {
    CAPTURE(groups);
    Generator gen(12);
    Conv2dConfig c{64, 128, 3};
    c.groups = groups;
    c.bias = true;
    c.init = ConvInit::PyTorchDefault;
    const Conv2d conv(c, gen);
    const double bound = 1.0 / std::sqrt(64.0 / double(groups) * 9.0);
    const Moments w = moments_of(conv.weight);
    CHECK(w.max_abs <= bound);
    CHECK(w.max_abs > 0.99 * bound);
    CHECK(w.std == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.02));
    CHECK(std::abs(w.mean) < 5.0 * bound / std::sqrt(3.0 * double(w.n)));
    const Moments b = moments_of(conv.bias);
    CHECK(b.max_abs <= bound);
  }
}
