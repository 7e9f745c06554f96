// Module trees: PyTorch-style names, state dict round trips and the errors load reports.
#include <doctest/doctest.h>

#include "engine/ops.h"
#include "nn/layers.h"

using namespace dmix;
using namespace dmix::nn;

namespace {
struct Block : Module {
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  Block() {
    conv1 = register_module("conv1", std::make_shared<Conv2d>(Conv2dConfig{2, 3, 3, 1, 1}));
    bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(3));
  }
  Tensor forward(const Tensor& x) override { return relu((*bn1)(conv1->forward(x))); }
};

std::shared_ptr<Sequential> tiny_net() {
  auto net = std::make_shared<Sequential>();
  net->push_back(std::make_shared<Block>());
  net->push_back(std::make_shared<GlobalAvgPool>());
  net->push_back(std::make_shared<Linear>(3, 4));
  return net;
}
}  // namespace

TEST_CASE("module: parameters and buffers are named as PyTorch names them") {
  auto net = tiny_net();
  std::vector<std::string> names;
  for (auto& [n, t] : net->named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"0.conv1.weight", "0.bn1.weight", "0.bn1.bias", "2.weight", "2.bias"});
  auto sd = net->state_dict();
  CHECK(sd.count("0.bn1.running_mean"));
  CHECK(sd.count("0.bn1.num_batches_tracked"));
  CHECK(net->num_parameters() == 3 * 2 * 9 + 3 + 3 + 4 * 3 + 4);
}

TEST_CASE("module: state dict round trip reproduces the outputs") {
  default_generator().set_state(1, 0);
  auto a = tiny_net();
  default_generator().set_state(2, 0);
  auto b = tiny_net();
  a->eval();
  b->eval();
  Tensor x = Generator(3).normal({2, 2, 5, 5});
  autograd::NoGradGuard g;
  CHECK(a->forward(x).to_vector<float>() != b->forward(x).to_vector<float>());
  b->load_state_dict(a->state_dict());
  CHECK(a->forward(x).to_vector<float>() == b->forward(x).to_vector<float>());
}

TEST_CASE("module: load_state_dict reports every mismatch at once") {
  auto net = tiny_net();
  auto sd = net->state_dict();
  sd.erase("2.bias");
  sd["2.weight"] = Tensor::zeros({5, 3});
  sd["extra.weight"] = Tensor::zeros({1});
  try {
    net->load_state_dict(sd);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("3 problem(s)") != std::string::npos);
    CHECK(msg.find("missing 2.bias") != std::string::npos);
    CHECK(msg.find("2.weight has shape [5, 3], the model expects [4, 3]") != std::string::npos);
    CHECK(msg.find("unexpected extra.weight") != std::string::npos);
  }
  // PyTorch's num_batches_tracked may be absent or present.
  auto ok = net->state_dict();
  ok.erase("0.bn1.num_batches_tracked");
  CHECK_NOTHROW(net->load_state_dict(ok));
}

TEST_CASE("module: train/eval propagate and batch norm counts batches") {
  auto net = tiny_net();
  net->eval();
  CHECK_FALSE((*net)[0].training());
  net->train();
  Tensor x = Generator(4).normal({3, 2, 4, 4});
  net->forward(x);
  net->forward(x);
  CHECK(net->state_dict()["0.bn1.num_batches_tracked"].item() == 2);
}
