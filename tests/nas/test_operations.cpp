// The PC-DARTS primitives: the index order, output shapes at stride 1 and 2 (even and odd
// sizes), PyTorch's state-dict names with and without affine BN, the semantics of the
// pools, skip and zero, FactorizedReduce against its definition, and first- and
// second-order gradient checks of every primitive in f64.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "engine/ops.h"
#include "nas/operations.h"
#include "tests/nas/nas_test_util.h"
#include "tests/test_util.h"

using namespace dmix;
using namespace dmix::nas;
using dmix::testing::error_of;

namespace {

std::set<std::string> state_names(const nn::Module& m) {
  std::set<std::string> out;
  for (const auto& [name, t] : m.state_dict()) out.insert(name);
  return out;
}

Shape state_shape(const nn::Module& m, const std::string& name) {
  const auto state = m.state_dict();
  auto it = state.find(name);
  REQUIRE_MESSAGE(it != state.end(), "no entry ", name);
  return it->second.shape();
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  REQUIRE(va.size() == vb.size());
  double worst = 0;
  for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::abs(va[i] - vb[i]));
  return worst;
}

}  // namespace

TEST_CASE("primitives: PC-DARTS's eight names in its index order") {
  const std::vector<std::string> want{"none",         "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                                      "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"};
  CHECK(primitives() == want);
  CHECK(is_primitive("dil_conv_5x5"));
  CHECK_FALSE(is_primitive("sep_conv_7x7"));
}

TEST_CASE("primitives: output shapes at stride 1 and 2, even and odd sizes, affine or not") {
  Generator gen(3);
  for (const std::string& name : primitives())
    for (bool affine : {true, false})
      for (int64_t size : {8, 7}) {
        CAPTURE(name);
        CAPTURE(affine);
        CAPTURE(size);
        const Tensor x = gen.normal({2, 4, size, size});
        auto s1 = make_primitive(name, 4, 1, affine, gen);
        auto s2 = make_primitive(name, 4, 2, affine, gen);
        CHECK(s1->forward(x).shape() == Shape{2, 4, size, size});
        CHECK(s2->forward(x).shape() == Shape{2, 4, (size + 1) / 2, (size + 1) / 2});
      }
}

TEST_CASE("primitives: bad names, strides and channels are one-line errors") {
  CHECK(error_of([] { make_primitive("sep_conv_7x7", 4, 1, true); }).find("unknown primitive 'sep_conv_7x7'") !=
        std::string::npos);
  CHECK(error_of([] { make_primitive("max_pool_3x3", 4, 3, true); }).find("stride must be 1 or 2") !=
        std::string::npos);
  CHECK(error_of([] { make_primitive("sep_conv_3x3", 0, 1, true); }).find("channels must be positive") !=
        std::string::npos);
  CHECK(error_of([] { FactorizedReduce(4, 5, true); }).find("output channels must be even") != std::string::npos);
}

TEST_CASE("primitives: PyTorch's state-dict names and shapes (operations.py's attributes)") {
  Generator gen(4);
  auto sep = make_primitive("sep_conv_5x5", 6, 2, true, gen);
  CHECK(state_shape(*sep, "op.1.weight") == Shape{6, 1, 5, 5});
  CHECK(state_shape(*sep, "op.2.weight") == Shape{6, 6, 1, 1});
  CHECK(state_shape(*sep, "op.3.weight") == Shape{6});
  CHECK(state_shape(*sep, "op.5.weight") == Shape{6, 1, 5, 5});
  CHECK(state_shape(*sep, "op.6.weight") == Shape{6, 6, 1, 1});
  CHECK(state_shape(*sep, "op.7.running_var") == Shape{6});
  CHECK(state_names(*sep).size() == 4 + 2 * 5);  // 4 convs, 2 BNs of 5 entries
  CHECK(sep->num_parameters() == 2 * (6 * 25 + 36 + 12));

  auto dil = make_primitive("dil_conv_3x3", 6, 1, true, gen);
  CHECK(state_names(*dil) == std::set<std::string>{"op.1.weight", "op.2.weight", "op.3.weight", "op.3.bias",
                                                   "op.3.running_mean", "op.3.running_var",
                                                   "op.3.num_batches_tracked"});
  auto reduce = make_primitive("skip_connect", 6, 2, true, gen);
  CHECK(state_names(*reduce) == std::set<std::string>{"conv_1.weight", "conv_2.weight", "bn.weight", "bn.bias",
                                                      "bn.running_mean", "bn.running_var",
                                                      "bn.num_batches_tracked"});
  CHECK(state_shape(*reduce, "conv_2.weight") == Shape{3, 6, 1, 1});

  // The search network's BNs are not affine: running statistics only.
  auto plain = make_primitive("dil_conv_5x5", 6, 1, false, gen);
  CHECK(state_names(*plain) == std::set<std::string>{"op.1.weight", "op.2.weight", "op.3.running_mean",
                                                     "op.3.running_var", "op.3.num_batches_tracked"});
  CHECK(plain->num_parameters() == 6 * 25 + 36);
  ReLUConvBN rcb(5, 6, 1, 1, 0, false, gen);
  CHECK(state_names(rcb) == std::set<std::string>{"op.1.weight", "op.2.running_mean", "op.2.running_var",
                                                  "op.2.num_batches_tracked"});
  for (const char* name : {"none", "max_pool_3x3", "avg_pool_3x3"})
    CHECK(make_primitive(name, 6, 2, true, gen)->state_dict().empty());
  CHECK(make_primitive("skip_connect", 6, 1, true, gen)->state_dict().empty());
}

TEST_CASE("primitives: skip, zero and the pools do what the reference's do") {
  Generator gen(5);
  const Tensor x = gen.normal({2, 3, 5, 5});
  auto skip = make_primitive("skip_connect", 3, 1, true, gen);
  CHECK(is_identity(*skip));
  CHECK(max_abs_diff(skip->forward(x).to(DType::f64), x.to(DType::f64)) == 0.0);
  CHECK_FALSE(is_identity(*make_primitive("skip_connect", 4, 2, true, gen)));
  CHECK_FALSE(is_identity(*make_primitive("max_pool_3x3", 4, 1, true, gen)));

  const Tensor zero = make_primitive("none", 3, 2, true, gen)->forward(x);
  CHECK(zero.shape() == Shape{2, 3, 3, 3});
  for (float v : zero.to_vector<float>()) CHECK(v == 0.0f);

  // The average excludes the padding: a corner window of a constant image averages to the constant.
  const Tensor ones = Tensor::ones({1, 1, 4, 4});
  for (float v : make_primitive("avg_pool_3x3", 1, 1, true, gen)->forward(ones).to_vector<float>()) CHECK(v == 1.0f);
  // max pool pads with -inf, not zeros: an all-negative image keeps its values.
  const Tensor negative = Tensor::full({1, 1, 4, 4}, -2.0);
  for (float v : make_primitive("max_pool_3x3", 1, 2, true, gen)->forward(negative).to_vector<float>())
    CHECK(v == -2.0f);
}

TEST_CASE("FactorizedReduce: concat of conv_1 on x and conv_2 on x[:, :, 1:, 1:] of relu(x), then BN") {
  Generator gen(6);
  FactorizedReduce fr(3, 4, true, gen);
  fr.eval();  // BN with running statistics 0 and 1: y = x / sqrt(1 + eps)
  for (int64_t size : {6, 5}) {
    CAPTURE(size);
    const Tensor x = gen.normal({2, 3, size, size});
    const Tensor h = relu(x);
    const int64_t out = (size + 1) / 2;
    const Tensor a = conv2d(h, fr.conv_1->weight, Tensor(), fr.conv_1->options);
    // The shifted half: x[1::2, 1::2], with a zero row/column past an odd border.
    std::vector<float> shifted_input(size_t(2 * 3 * out * out), 0.0f);
    const auto hv = h.to_vector<float>();
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < out; ++i)
          for (int64_t j = 0; j < out; ++j) {
            const int64_t si = 2 * i + 1, sj = 2 * j + 1;
            if (si < size && sj < size)
              shifted_input[size_t(((n * 3 + c) * out + i) * out + j)] =
                  hv[size_t(((n * 3 + c) * size + si) * size + sj)];
          }
    const Tensor b = conv2d(Tensor::from_vector(shifted_input, {2, 3, out, out}), fr.conv_2->weight, Tensor(), {});
    const Tensor want = mul_scalar(cat({a, b}, 1), 1.0 / std::sqrt(1.0 + 1e-5));
    CHECK(max_abs_diff(fr.forward(x).to(DType::f64), want.to(DType::f64)) < 1e-5);
  }
}

TEST_CASE("primitives: first- and second-order gradient checks in f64 (input and parameters), stride 1 and 2") {
  Generator gen(7);
  for (const std::string& name : primitives()) {
    if (name == "none") continue;  // a constant: checked below
    for (int64_t stride : {1, 2})
      for (bool affine : {true, false}) {
        CAPTURE(name);
        CAPTURE(stride);
        CAPTURE(affine);
        auto op = make_primitive(name, 2, stride, affine, gen);
        nas::testing::to_f64(*op);
        // Training mode: BN on batch statistics, the richer derivative.
        const Tensor x = gen.normal({2, 2, 5, 5}, 0.0, 1.0, DType::f64);
        const nas::testing::GradcheckErrors e = nas::testing::gradcheck_module(*op, x, 11);
        CHECK(e.first < 1e-5);
        CHECK(e.second < 1e-4);
      }
  }
  // ReLUConvBN, and FactorizedReduce on an odd size (its padded path).
  ReLUConvBN rcb(3, 2, 3, 2, 1, true, gen);
  nas::testing::to_f64(rcb);
  const auto e1 = nas::testing::gradcheck_module(rcb, gen.normal({2, 3, 5, 5}, 0, 1, DType::f64), 12);
  CHECK(e1.first < 1e-5);
  CHECK(e1.second < 1e-4);
  FactorizedReduce fr(3, 4, true, gen);
  nas::testing::to_f64(fr);
  const auto e2 = nas::testing::gradcheck_module(fr, gen.normal({2, 3, 5, 5}, 0, 1, DType::f64), 13);
  CHECK(e2.first < 1e-5);
  CHECK(e2.second < 1e-4);
}

TEST_CASE("none: zeros that carry no gradient, in the input's dtype and device") {
  Zero z(2);
  const Tensor x = Tensor::ones({1, 2, 4, 3}, DType::f64);
  const Tensor y = z.forward(x);
  CHECK(y.dtype() == DType::f64);
  CHECK(y.shape() == Shape{1, 2, 2, 2});
  CHECK_FALSE(y.requires_grad());
}
