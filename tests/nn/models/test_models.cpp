// Models: exact parameter counts and PyTorch names (so checkpoints move both ways),
// block semantics (shortcuts, widening), output shapes on Fashion-MNIST- and CIFAR-sized
// inputs, the registry, FLOP counting, and overfitting one small batch.
//
// Every expected parameter count and FLOP figure below was checked against PyTorch 1.13 /
// torchvision 0.14 running the reference definitions (CutMix-PyTorch pyramidnet.py,
// torchvision resnet.py, Co-Mixup preresnet.py / wide_resnet.py / resnext.py), and by a
// separate count by hand. In the same check, each model's dmix state dict loaded into the
// PyTorch model with strict=True, and outputs (train and eval mode) and updated running
// statistics agreed to ~1e-5.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "engine/ops.h"
#include "nn/models/flops.h"
#include "nn/models/model_util.h"
#include "nn/models/preact_resnet.h"
#include "nn/models/pyramidnet.h"
#include "nn/models/registry.h"
#include "nn/models/resnet.h"
#include "nn/models/resnext.h"
#include "nn/models/wide_resnet.h"
#include "nn/optim.h"

using namespace dmix;
using namespace dmix::nn;

namespace {

std::set<std::string> keys(const Module& m) {
  std::set<std::string> out;
  for (auto& [name, t] : m.state_dict()) out.insert(name);
  return out;
}

Shape param_shape(const Module& m, const std::string& name) {
  for (auto& [n, t] : m.named_parameters())
    if (n == name) return t.shape();
  FAIL("no parameter ", name);
  return {};
}

PyramidNetConfig pyramid(int64_t depth, double alpha, int64_t classes, int64_t in_channels = 3,
                         bool bottleneck = true) {
  PyramidNetConfig c;
  c.depth = depth;
  c.alpha = alpha;
  c.num_classes = classes;
  c.in_channels = in_channels;
  c.bottleneck = bottleneck;
  return c;
}

bool all_finite(const Tensor& t) {
  for (float v : t.to_vector<float>())
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

TEST_CASE("python_round rounds half to even, as the PyramidNet widths require") {
  using models_detail::python_round;
  CHECK(python_round(0.5) == 0);
  CHECK(python_round(1.5) == 2);
  CHECK(python_round(2.5) == 2);
  CHECK(python_round(3.5) == 4);
  CHECK(python_round(17.7777) == 18);
  CHECK(python_round(16.4999) == 16);
  CHECK(python_round(80.0) == 80);
}

TEST_CASE("PyramidNet: exact parameter counts and widths of the CutMix CIFAR-100 models") {
  Generator gen(1);
  PyramidNet p110(pyramid(110, 64, 100), gen);
  CHECK(p110.num_parameters() == 1725300);
  CHECK(p110.stage_blocks() == std::vector<int64_t>{12, 12, 12});
  CHECK(param_shape(p110, "layer1.0.conv1.weight") == Shape{18, 16, 1, 1});  // round(16 + 64/36)
  CHECK(p110.feature_channels() == 320);                                    // 4 * (16 + 64)
  CHECK(param_shape(p110, "fc.weight") == Shape{100, 320});

  PyramidNet p200(pyramid(200, 240, 100), gen);
  CHECK(p200.num_parameters() == 26844952);
  CHECK(p200.stage_blocks() == std::vector<int64_t>{22, 22, 22});
  CHECK(param_shape(p200, "layer1.0.conv1.weight") == Shape{20, 16, 1, 1});
  CHECK(p200.feature_channels() == 1024);
}

TEST_CASE("PyramidNet: other variants count as the reference definition does") {
  Generator gen(2);
  CHECK(PyramidNet(pyramid(20, 48, 10, 1), gen).num_parameters() == 214970);
  CHECK(PyramidNet(pyramid(110, 48, 10, 3, false), gen).num_parameters() == 1772706);
  PyramidNetConfig in50 = pyramid(50, 300, 1000);
  in50.imagenet = true;
  PyramidNet p50(in50, gen);
  CHECK(p50.num_parameters() == 16854202);
  CHECK(p50.stage_blocks() == std::vector<int64_t>{3, 4, 6, 3});
  CHECK(param_shape(p50, "conv1.weight") == Shape{64, 3, 7, 7});
  PyramidNetConfig in18 = pyramid(18, 100, 1000);
  in18.imagenet = true;
  CHECK(PyramidNet(in18, gen).num_parameters() == 2273494);  // basic blocks by the depth table
}

TEST_CASE("PyramidNet: widths follow Python's half-to-even round of the running width") {
  // depth 11, bottleneck: one block per stage; alpha 1.5 adds exactly 0.5 per block, so the
  // widths are round(16.5)=16, round(17.0)=17, round(17.5)=18 (std::round would give 17, 17, 18).
  Generator gen(3);
  PyramidNet net(pyramid(11, 1.5, 10), gen);
  CHECK(param_shape(net, "layer1.0.conv1.weight") == Shape{16, 16, 1, 1});
  CHECK(param_shape(net, "layer2.0.conv1.weight") == Shape{17, 64, 1, 1});
  CHECK(param_shape(net, "layer3.0.conv1.weight") == Shape{18, 68, 1, 1});
  CHECK(param_shape(net, "layer3.0.conv3.weight") == Shape{72, 18, 1, 1});
  CHECK(net.feature_channels() == 72);
}

TEST_CASE("PyramidNet: parameter and buffer names are CutMix-PyTorch's") {
  Generator gen(4);
  PyramidNet net(pyramid(110, 64, 100), gen);
  const auto k = keys(net);
  for (const char* name :
       {"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.num_batches_tracked",
        "layer1.0.bn1.weight", "layer1.0.conv1.weight", "layer1.0.bn2.running_var", "layer1.0.conv2.weight",
        "layer1.0.bn3.bias", "layer1.0.conv3.weight", "layer1.0.bn4.weight", "layer2.0.conv2.weight",
        "layer3.11.bn4.running_mean", "bn_final.weight", "bn_final.running_var", "fc.weight", "fc.bias"})
    CHECK_MESSAGE(k.count(name) == 1, name);
  // Parameter-free shortcuts: nothing named downsample, no 1x1 projection anywhere.
  for (const auto& name : k) CHECK_MESSAGE(name.find("downsample") == std::string::npos, name);
  CHECK(k.count("layer4.0.bn1.weight") == 0);
  // 36 bottlenecks x (4 BN + 3 conv) + stem conv + 2 BN + fc: parameters 36*11 + 1 + 4 + 2.
  CHECK(net.named_parameters().size() == 36 * 11 + 7);
  // Basic blocks: bn1 conv1 bn2 conv2 bn3 only.
  PyramidNet basic(pyramid(20, 48, 10, 3, false), gen);
  const auto kb = keys(basic);
  CHECK(kb.count("layer1.0.bn3.weight") == 1);
  CHECK(kb.count("layer1.0.conv3.weight") == 0);
  CHECK(param_shape(basic, "layer1.0.conv1.weight") == Shape{21, 16, 3, 3});  // round(16 + 48/9)
}

TEST_CASE("PyramidNet bottleneck: the shortcut is pooled (ceil mode) and zero-padded, no ReLU after the sum") {
  Generator gen(5);
  PyramidBottleneck block(4, 3, 2, gen);
  block.eval();
  // A zero last BN makes the residual exactly zero, so the output is the shortcut alone.
  {
    autograd::NoGradGuard no_grad;
    block.bn4->weight.zero_();
    block.bn4->bias.zero_();
  }
  Tensor x = gen.normal({1, 4, 5, 5});
  Tensor y = block(x);
  REQUIRE(y.shape() == Shape{1, 12, 3, 3});
  auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  bool negative_seen = false;
  for (int64_t c = 0; c < 12; ++c)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        double want = 0.0;
        if (c < 4) {  // mean of the in-range part of the 2x2 window
          int count = 0;
          for (int64_t r = 2 * i; r < std::min<int64_t>(2 * i + 2, 5); ++r)
            for (int64_t s = 2 * j; s < std::min<int64_t>(2 * j + 2, 5); ++s, ++count) want += xv[(c * 5 + r) * 5 + s];
          want /= count;
        }
        const float got = yv[(c * 3 + i) * 3 + j];
        negative_seen = negative_seen || got < 0;
        CHECK(got == doctest::Approx(want).epsilon(1e-5));
      }
  CHECK(negative_seen);
}

TEST_CASE("PyramidNet basic block: identity shortcut with zero channels appended") {
  Generator gen(6);
  PyramidBasicBlock block(3, 5, 1, gen);
  block.eval();
  {
    autograd::NoGradGuard no_grad;
    block.bn3->weight.zero_();
    block.bn3->bias.zero_();
  }
  Tensor x = gen.normal({2, 3, 4, 4});
  Tensor y = block(x);
  REQUIRE(y.shape() == Shape{2, 5, 4, 4});
  CHECK(narrow(y, 1, 0, 3).to_vector<float>() == x.to_vector<float>());
  for (float v : narrow(y, 1, 3, 2).to_vector<float>()) CHECK(v == 0.0f);
}

TEST_CASE("ResNet: exact torchvision parameter counts (1000 classes)") {
  Generator gen(7);
  const std::pair<int64_t, int64_t> expected[] = {
      {18, 11689512}, {34, 21797672}, {50, 25557032}, {101, 44549160}, {152, 60192808}};
  for (const auto& e : expected) {
    const int64_t depth = e.first, count = e.second;  // not a structured binding: CHECK_MESSAGE captures it
    ResNetConfig c;
    c.depth = depth;
    CHECK_MESSAGE(ResNet(c, gen).num_parameters() == count, "resnet", depth);
  }
}

TEST_CASE("ResNet: torchvision names, v1.5 strides and projection shortcuts") {
  Generator gen(8);
  ResNetConfig c;
  ResNet r50(c, gen);
  const auto k = keys(r50);
  for (const char* name :
       {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.0.bn3.weight",
        "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_var", "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.weight", "layer4.2.conv3.weight", "fc.weight", "fc.bias"})
    CHECK_MESSAGE(k.count(name) == 1, name);
  CHECK(k.count("layer1.1.downsample.0.weight") == 0);
  CHECK(k.count("layer2.0.downsample.0.bias") == 0);
  // torchvision's resnet50: 161 parameter tensors, 320 state-dict entries.
  CHECK(r50.named_parameters().size() == 161);
  CHECK(k.size() == 320);
  auto& first = dynamic_cast<ResNetBottleneck&>((*r50.layers[1])[0]);
  CHECK(first.conv1->options.stride == std::array<int64_t, 2>{1, 1});
  CHECK(first.conv2->options.stride == std::array<int64_t, 2>{2, 2});  // v1.5
  CHECK(first.downsample != nullptr);
  CHECK(param_shape(r50, "layer2.0.downsample.0.weight") == Shape{512, 256, 1, 1});

  c.depth = 18;
  c.in_channels = 1;
  c.num_classes = 10;
  ResNet r18(c, gen);
  const auto k18 = keys(r18);
  CHECK(k18.count("layer1.0.downsample.0.weight") == 0);
  CHECK(k18.count("layer2.0.downsample.0.weight") == 1);
  CHECK(k18.count("layer1.0.conv3.weight") == 0);
  CHECK(param_shape(r18, "conv1.weight") == Shape{64, 1, 7, 7});
  CHECK(param_shape(r18, "fc.weight") == Shape{10, 512});

  c.depth = 20;
  CHECK_THROWS_AS(ResNet(c, gen), Error);
}

TEST_CASE("ResNet basic block: ReLU after the addition") {
  Generator gen(9);
  ResNetBasicBlock block(4, 4, 1, gen);
  block.eval();
  {
    autograd::NoGradGuard no_grad;
    block.bn2->weight.zero_();
    block.bn2->bias.zero_();
  }
  Tensor x = gen.normal({1, 4, 3, 3});
  CHECK(block(x).to_vector<float>() == relu(x).to_vector<float>());
}

TEST_CASE("CIFAR models from PuzzleMix / Co-Mixup: counts and names") {
  Generator gen(10);
  PreActResNet preact(PreActResNetConfig{}, gen);
  CHECK(preact.num_parameters() == 11171146);
  const auto kp = keys(preact);
  for (const char* name : {"conv1.weight", "layer1.0.bn1.weight", "layer1.0.conv2.weight", "layer2.0.shortcut.0.weight",
                           "layer4.1.bn2.running_var", "linear.weight", "linear.bias"})
    CHECK_MESSAGE(kp.count(name) == 1, name);
  CHECK(kp.count("layer1.0.shortcut.0.weight") == 0);
  CHECK(kp.count("bn1.weight") == 0);  // no final BN in this PreActResNet

  WideResNet wrn(WideResNetConfig{}, gen);
  CHECK(wrn.num_parameters() == 10965866);
  const auto kw = keys(wrn);
  for (const char* name : {"conv1.weight", "conv1.bias", "layer1.0.bn1.weight", "layer1.0.conv1.bias",
                           "layer1.0.shortcut.0.weight", "layer1.0.shortcut.0.bias", "layer3.1.conv2.weight",
                           "bn1.running_var", "linear.weight"})
    CHECK_MESSAGE(kw.count(name) == 1, name);
  CHECK(kw.count("layer1.1.shortcut.0.weight") == 0);
  CHECK(wrn.bn1->momentum == 0.9);
  auto& wblock = dynamic_cast<WideBasicBlock&>((*wrn.layers[1])[0]);
  CHECK(wblock.conv1->options.stride == std::array<int64_t, 2>{1, 1});
  CHECK(wblock.conv2->options.stride == std::array<int64_t, 2>{2, 2});  // stride on the second conv

  ResNeXt rx(ResNeXtConfig{}, gen);
  CHECK(rx.num_parameters() == 4845002);
  const auto kx = keys(rx);
  for (const char* name : {"conv_1_3x3.weight", "bn_1.weight", "stage_1.0.conv_reduce.weight", "stage_1.0.bn_reduce.bias",
                           "stage_1.0.conv_conv.weight", "stage_1.0.bn.running_mean", "stage_1.0.conv_expand.weight",
                           "stage_1.0.bn_expand.weight", "stage_1.0.downsample.0.weight", "stage_1.0.downsample.1.weight",
                           "stage_3.2.bn_expand.running_var", "classifier.weight", "classifier.bias"})
    CHECK_MESSAGE(kx.count(name) == 1, name);
  CHECK(param_shape(rx, "stage_1.0.conv_conv.weight") == Shape{96, 24, 3, 3});  // 4 groups of 24
  CHECK(param_shape(rx, "stage_3.0.conv_conv.weight") == Shape{384, 96, 3, 3});
  for (float b : rx.classifier->bias.to_vector<float>()) CHECK(b == 0.0f);
}

TEST_CASE("every CIFAR-sized model gives (N, classes) on 1x28x28 and 3x32x32 inputs") {
  Generator gen(11);
  const char* names[] = {"pyramidnet20_a48", "pyramidnet20_a48_basic", "pyramidnet110_a64", "preactresnet18",
                         "wrn16_8",          "resnext29_4_24",         "resnet18",          "pyramidnet18_a48_imagenet"};
  for (const char* name : names) {
    for (int64_t in_channels : {1, 3}) {
      const int64_t size = in_channels == 1 ? 28 : 32, classes = in_channels == 1 ? 10 : 100;
      auto model = make_model(name, classes, in_channels, gen);
      model->eval();
      autograd::NoGradGuard no_grad;
      Tensor y = model->forward(gen.normal({2, in_channels, size, size}));
      CHECK_MESSAGE((y.shape() == Shape{2, classes}), name, " on ", in_channels, "x", size, "x", size);
      CHECK_MESSAGE(all_finite(y), name);
    }
  }
}

TEST_CASE("every parameter of a PyramidNet receives a gradient; training updates BN statistics") {
  Generator gen(12);
  auto model = make_model("pyramidnet20_a48", 4, 1, gen);
  Tensor x = gen.normal({2, 1, 12, 12});
  Tensor labels = Tensor::from_vector<int64_t>({1, 3}, {2});
  cross_entropy(model->forward(x), labels).backward();
  for (const auto& named : model->named_parameters()) {
    const std::string& name = named.first;  // not a structured binding: CHECK_MESSAGE captures it
    const Tensor& p = named.second;
    CHECK_MESSAGE(p.grad().defined(), name);
    if (p.grad().defined()) CHECK_MESSAGE(p.grad().shape() == p.shape(), name);
  }
  const auto state = model->state_dict();
  CHECK(state.at("bn_final.num_batches_tracked").item() == 1.0);
  const auto mean = state.at("layer1.0.bn1.running_mean").to_vector<float>();
  CHECK(std::any_of(mean.begin(), mean.end(), [](float v) { return v != 0.0f; }));
}

TEST_CASE("a state dict loads into a fresh model of the same name and reproduces its outputs") {
  for (const char* name : {"pyramidnet20_a48", "resnext29_4_24"}) {
    Generator g1(13), g2(14);
    auto a = make_model(name, 10, 1, g1), b = make_model(name, 10, 1, g2);
    a->eval();
    b->eval();
    autograd::NoGradGuard no_grad;
    Tensor x = g1.normal({2, 1, 16, 16});
    CHECK(a->forward(x).to_vector<float>() != b->forward(x).to_vector<float>());
    b->load_state_dict(a->state_dict());
    CHECK_MESSAGE(a->forward(x).to_vector<float>() == b->forward(x).to_vector<float>(), name);
  }
}

TEST_CASE("registry: names, patterns and errors") {
  const auto names = model_names();
  for (const char* want : {"pyramidnet110_a64", "pyramidnet200_a240", "pyramidnet20_a48", "resnet18", "resnet34",
                           "resnet50", "resnet101", "resnet152", "preactresnet18", "wrn16_8", "resnext29_4_24"})
    CHECK_MESSAGE(std::find(names.begin(), names.end(), want) != names.end(), want);

  Generator gen(15);
  auto p = make_model("pyramidnet110_a64", 100, 3, gen);
  CHECK(p->num_parameters() == 1725300);
  auto small = std::dynamic_pointer_cast<PyramidNet>(make_model("pyramidnet20_a48", 10, 1, gen));
  REQUIRE(small);
  CHECK(small->stage_blocks() == std::vector<int64_t>{2, 2, 2});
  CHECK(small->num_parameters() == 214970);
  auto basic = std::dynamic_pointer_cast<PyramidNet>(make_model("pyramidnet110_a48_basic", 10, 3, gen));
  REQUIRE(basic);
  CHECK(!basic->config().bottleneck);
  CHECK(basic->stage_blocks() == std::vector<int64_t>{18, 18, 18});
  auto imagenet = std::dynamic_pointer_cast<PyramidNet>(make_model("pyramidnet18_a48_imagenet", 10, 3, gen));
  REQUIRE(imagenet);
  CHECK(imagenet->config().imagenet);
  CHECK(imagenet->stage_blocks() == std::vector<int64_t>{2, 2, 2, 2});
  // resnet18 with a 1-channel stem and 10 classes: 11,689,512 - 64*49*(3-1) - 512*990 - 990.
  auto r18 = std::dynamic_pointer_cast<ResNet>(make_model("resnet18", 10, 1, gen));
  REQUIRE(r18);
  CHECK(r18->num_parameters() == 11175370);
  auto wrn = std::dynamic_pointer_cast<WideResNet>(make_model("wrn16_8", 100, 3, gen));
  REQUIRE(wrn);
  CHECK(wrn->num_parameters() == 11012036);
  CHECK(make_model("resnext29_4_24", 100, 3, gen)->num_parameters() == 4937252);
  CHECK(make_model("preactresnet18", 100, 3, gen)->num_parameters() == 11217316);

  for (const char* bad : {"resnet20", "vgg16", "pyramidnet5_a48", "wrn17_2", "resnext30_4_24", ""}) {
    try {
      make_model(bad, 10, 3, gen);
      FAIL("no error for ", bad);
    } catch (const Error& e) {
      const std::string msg = e.what();
      CHECK_MESSAGE(msg.find("resnet50") != std::string::npos, msg);
      CHECK_MESSAGE(msg.find("pyramidnet110_a64") != std::string::npos, msg);
    }
  }
  CHECK_THROWS_AS(make_model("resnet18", 0, 3, gen), Error);
}

TEST_CASE("forward FLOPs: 2 x multiply-adds of conv and linear layers") {
  Generator gen(16);
  // Hand counts from the layer shapes (resnet18: the familiar 1.814 G multiply-adds at 224x224).
  ResNetConfig c;
  c.depth = 18;
  ResNet r18(c, gen);
  r18.train();
  const FlopCount count = count_forward_flops(r18, {3, 224, 224});
  CHECK(count.total() == 3628146688LL);
  CHECK(count.linear == 2 * 512 * 1000);
  CHECK(r18.training());
  CHECK(r18.bn1->num_batches_tracked.item() == 0.0);  // counted in eval mode

  auto p20 = make_model("pyramidnet20_a48", 10, 1, gen);
  CHECK(forward_flops_per_image(*p20, {1, 28, 28}) == 84031104);

  // Grouped convolutions count C/groups inputs per output.
  auto rx = make_model("resnext29_4_24", 10, 3, gen);
  const FlopCount grouped = count_forward_flops(*rx, {3, 8, 8});
  CHECK(grouped.conv > 0);
  Conv2dConfig g{8, 8, 3};
  g.padding = 1;
  g.groups = 4;
  Conv2d conv(g, gen);
  CHECK(forward_flops_per_image(conv, {8, 5, 5}) == 2 * 8 * 5 * 5 * 2 * 3 * 3);
}

TEST_CASE("a small PyramidNet overfits one batch") {
  Generator gen(17);
  auto model = make_model("pyramidnet20_a48", 4, 1, gen);
  model->train();
  Tensor x = gen.normal({8, 1, 12, 12});
  Tensor labels = Tensor::from_vector<int64_t>({0, 1, 2, 3, 0, 1, 2, 3}, {8});
  SgdOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  SGD opt(model->named_parameters(), o);
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(model->forward(x), labels);
    loss.backward();
    opt.step();
    last = loss.item();
    if (step == 0) first = last;
  }
  INFO("loss ", first, " -> ", last);
  CHECK(first > 1.0);
  CHECK(last < 0.05);
}
