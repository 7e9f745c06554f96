// The DARTS evaluation networks against the reference: parameter counts of the built-in
// genotypes (with and without the auxiliary head), every state-dict name and shape, and
// the logits of small networks whose weights are set by a formula, all from
// fixtures/param_counts.json (written by fixtures/make_param_counts.py with PyTorch from
// a description of the reference). Then drop-path, a forward/backward of a tiny network on
// Fashion-MNIST-sized input, and the registry names darts_cifar / darts_imagenet.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "nas/eval_network.h"
#include "nas/operations.h"
#include "nn/models/registry.h"
#include "tests/nas/nas_test_util.h"
#include "tests/test_util.h"

using namespace dmix;
using namespace dmix::nas;
using dmix::testing::error_of;

namespace {

const nlohmann::json& fixture() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(DMIX_NAS_FIXTURES) + "/param_counts.json");
    REQUIRE(bool(in));
    return nlohmann::json::parse(in);
  }();
  return j;
}

EvalNetworkConfig config_of(const nlohmann::json& e) {
  EvalNetworkConfig c = e["model"] == "darts_imagenet" ? imagenet_network_config() : cifar_network_config();
  c.genotype = builtin_genotype(e["genotype"].get<std::string>());
  c.init_channels = e["init_channels"];
  c.layers = e["layers"];
  c.num_classes = e["num_classes"];
  c.in_channels = e["in_channels"];
  return c;
}

// The formula of make_param_counts.py: element j of tensor `name` from sin(1.7 j + offset(name)).
double name_offset(const std::string& name) {
  int64_t total = 0;
  for (size_t i = 0; i < name.size(); ++i) total += int64_t(static_cast<unsigned char>(name[i])) * int64_t(i + 1);
  return double(total % 1000) / 100.0;
}

void set_by_formula(nn::Module& m) {
  autograd::NoGradGuard no_grad;
  auto fill = [](const std::string& name, Tensor& t) {
    if (t.dtype() != DType::f64) return;  // num_batches_tracked
    const Shape shape = t.shape();
    const int64_t n = t.numel();
    const double off = name_offset(name);
    const std::string last = name.substr(name.rfind('.') + 1);
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      const double s = std::sin(1.7 * double(j) + off);
      if (last == "running_mean") v[size_t(j)] = 0.1 * s;
      else if (last == "running_var") v[size_t(j)] = 1.0 + 0.5 * s * s;
      else if (last == "weight" && shape.size() == 1) v[size_t(j)] = 1.0 + 0.1 * s;
      else if (last == "bias") v[size_t(j)] = 0.1 * s;
      else v[size_t(j)] = s / std::sqrt(double(n / shape[0]));
    }
    t.copy_(Tensor::from_vector(v, shape));
  };
  for (auto& [name, t] : m.named_parameters()) fill(name, t);
  for (auto& [name, t] : m.named_buffers()) fill(name, t);
}

Tensor formula_input(const Shape& shape) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t j = 0; j < v.size(); ++j) v[j] = std::sin(0.37 * double(j));
  return Tensor::from_vector(v, shape);
}

double max_relative_diff(const Tensor& got, const std::vector<double>& want) {
  const auto g = got.to_vector<double>();
  REQUIRE(g.size() == want.size());
  double worst = 0, scale = 1e-12;
  for (size_t i = 0; i < g.size(); ++i) {
    worst = std::max(worst, std::abs(g[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return worst / scale;
}

// A cell genotype whose 8 edges are all `op`, each node reading inputs 0 and 1.
Genotype uniform_genotype(const std::string& op) {
  std::vector<GenotypeEdge> edges;
  for (int i = 0; i < 4; ++i) {
    edges.emplace_back(op, 0);
    edges.emplace_back(op, 1);
  }
  return {edges, {2, 3, 4, 5}, edges, {2, 3, 4, 5}};
}

}  // namespace

TEST_CASE("EvalNetwork: the built-in genotypes' parameter counts equal the reference's") {
  Generator gen(1);
  REQUIRE(fixture()["networks"].size() == 8);
  for (const auto& e : fixture()["networks"]) {
    CAPTURE(e.dump());
    EvalNetwork net(config_of(e), gen);
    CHECK(net.num_parameters() == e["params"].get<int64_t>());
    CHECK(net.num_parameters_without_auxiliary() == e["params_without_auxiliary"].get<int64_t>());
  }
  // Without the head, the network is the rest.
  const auto& first = fixture()["networks"][0];
  EvalNetworkConfig no_aux = config_of(first);
  no_aux.auxiliary = false;
  EvalNetwork plain(no_aux, gen);
  CHECK_FALSE(plain.has_auxiliary());
  CHECK(plain.num_parameters() == first["params_without_auxiliary"].get<int64_t>());
  // The papers' figures (without the head, in 0.1M): PC-DARTS 3.6M on CIFAR-10 and 5.3M on
  // ImageNet, DARTS (second order) 3.3M and 4.7M.
  auto reported = [](const std::string& model, const std::string& genotype) -> int64_t {
    for (const auto& e : fixture()["networks"])
      if (e["model"] == model && e["genotype"] == genotype)
        return std::llround(e["params_without_auxiliary"].get<double>() / 1e5);
    FAIL("no fixture entry for ", model, " ", genotype);
    return 0;
  };
  CHECK(reported("darts_cifar", "PC_DARTS_cifar") == 36);
  CHECK(reported("darts_imagenet", "PC_DARTS_image") == 53);
  CHECK(reported("darts_cifar", "DARTS_V2") == 33);
  CHECK(reported("darts_imagenet", "DARTS_V2") == 47);
}

TEST_CASE("EvalNetwork: every state-dict name and shape is the reference's") {
  Generator gen(2);
  REQUIRE(fixture()["state_dicts"].size() == 2);
  for (const auto& e : fixture()["state_dicts"]) {
    CAPTURE(e["model"].get<std::string>());
    EvalNetwork net(config_of(e), gen);
    const nn::StateDict state = net.state_dict();
    std::set<std::string> want;
    for (const auto& t : e["tensors"]) {
      const std::string name = t[0];
      want.insert(name);
      CAPTURE(name);
      auto it = state.find(name);
      REQUIRE(it != state.end());
      CHECK(it->second.shape() == t[1].get<Shape>());
    }
    std::set<std::string> got;
    for (const auto& [name, t] : state) got.insert(name);
    CHECK(got == want);
  }
}

TEST_CASE("EvalNetwork: logits and auxiliary logits equal the reference's for the same weights (f64)") {
  Generator gen(3);
  REQUIRE(fixture()["forward"].size() == 2);
  for (const auto& e : fixture()["forward"]) {
    CAPTURE(e["model"].get<std::string>());
    EvalNetwork net(config_of(e), gen);
    nas::testing::to_f64(net);
    set_by_formula(net);
    const Tensor x = formula_input(e["input_shape"].get<Shape>());
    net.eval();
    CHECK(max_relative_diff(net.forward(x), e["eval_logits"].get<std::vector<double>>()) < 1e-9);
    CHECK_FALSE(net.auxiliary_logits().defined());
    net.train();
    CHECK(max_relative_diff(net.forward(x), e["train_logits"].get<std::vector<double>>()) < 1e-9);
    REQUIRE(net.auxiliary_logits().defined());
    CHECK(max_relative_diff(net.auxiliary_logits(), e["train_auxiliary_logits"].get<std::vector<double>>()) < 1e-9);
  }
}

TEST_CASE("EvalNetwork: a tiny network (5 cells, C = 8) on 1x28x28 input, forward and backward") {
  Generator gen(4);
  EvalNetworkConfig c = cifar_network_config();
  c.layers = 5;
  c.init_channels = 8;
  c.in_channels = 1;
  EvalNetwork net(c, gen);
  const Tensor x = gen.normal({3, 1, 28, 28});
  const Tensor y = Tensor::from_vector(std::vector<int64_t>{1, 7, 3}, {3});
  net.set_drop_path_prob(0.2);
  const Tensor logits = net.forward(x);
  CHECK(logits.shape() == Shape{3, 10});
  // 28x28 gives the auxiliary head a 7x7 map, where it pools adaptively to 2x2.
  REQUIRE(net.auxiliary_logits().defined());
  CHECK(net.auxiliary_logits().shape() == Shape{3, 10});
  const Tensor loss = add(cross_entropy(logits, y), mul_scalar(cross_entropy(net.auxiliary_logits(), y), 0.4));
  loss.backward();
  int64_t without_grad = 0;
  for (const auto& [name, p] : net.named_parameters()) {
    if (!p.grad().defined()) {
      ++without_grad;
      continue;
    }
    const auto g = p.grad().to_vector<float>();
    CHECK_MESSAGE(std::all_of(g.begin(), g.end(), [](float v) { return std::isfinite(v); }), name);
  }
  CHECK(without_grad == 0);
  // The ImageNet network on a small image too: its stems quarter, then halve.
  EvalNetworkConfig ci = imagenet_network_config();
  ci.layers = 3;
  ci.init_channels = 8;
  ci.num_classes = 5;
  EvalNetwork image(ci, gen);
  CHECK(image.forward(gen.normal({2, 3, 64, 64})).shape() == Shape{2, 5});
  CHECK(image.auxiliary_logits().shape() == Shape{2, 5});
}

TEST_CASE("drop-path: identity edges untouched; other edges dropped per sample, kept ones scaled by 1/(1 - p)") {
  Generator gen(5);
  default_generator().set_state(17, 0);
  // All edges skip_connect: identities, never dropped.
  {
    EvalCell cell(uniform_genotype("skip_connect"), 4, 4, 4, false, false, gen);
    const Tensor s = gen.normal({6, 4, 5, 5});
    const auto plain = cell.forward(s, s, 0.0).to_vector<float>();
    CHECK(cell.forward(s, s, 0.6).to_vector<float>() == plain);
  }
  // All edges avg_pool_3x3 (no parameters, nothing random of its own): a node sums two
  // edges, each kept (and scaled by 1/keep) or zeroed per sample.
  EvalCell cell(uniform_genotype("avg_pool_3x3"), 4, 4, 4, false, false, gen);
  const int64_t n = 400;
  const Tensor s = gen.normal({n, 4, 3, 3});
  const double p = 0.3, keep = 1.0 - p;
  const auto plain = cell.forward(s, s, 0.0).to_vector<float>();
  const auto dropped = cell.forward(s, s, p).to_vector<float>();
  // One sample's one node: 4 channels x 9 pixels, out of 16 channels per sample.
  const size_t node_size = 4 * 9, sample_size = 16 * 9;
  int64_t zero = 0, whole = 0;
  double dropped_dot_plain = 0, plain_dot_plain = 0;
  for (int64_t i = 0; i < n; ++i) {
    const size_t at = size_t(i) * sample_size;  // node 2 of sample i
    bool all_zero = true, all_whole = true;
    for (size_t k = at; k < at + node_size; ++k) {
      all_zero = all_zero && dropped[k] == 0.0f;
      all_whole = all_whole && std::abs(dropped[k] - plain[k] / keep) < 1e-5 * (1.0 + std::abs(plain[k]));
    }
    zero += all_zero;
    whole += all_whole;
    for (size_t k = at; k < at + sample_size; ++k) {
      dropped_dot_plain += double(dropped[k]) * plain[k];
      plain_dot_plain += double(plain[k]) * plain[k];
    }
  }
  // Both edges dropped with probability p^2 = 0.09, both kept with keep^2 = 0.49.
  CHECK(zero > 0.09 * n - 3 * std::sqrt(0.09 * 0.91 * n));
  CHECK(zero < 0.09 * n + 3 * std::sqrt(0.09 * 0.91 * n));
  CHECK(whole > 0.49 * n - 3 * std::sqrt(0.49 * 0.51 * n));
  CHECK(whole < 0.49 * n + 3 * std::sqrt(0.49 * 0.51 * n));
  // The mean is preserved: E[dropped] = plain elementwise, so <dropped, plain> / <plain, plain>
  // is 1 up to sampling noise (its standard deviation here is about 0.03).
  CHECK(std::abs(dropped_dot_plain / plain_dot_plain - 1.0) < 0.15);
  // Evaluation mode never drops.
  cell.eval();
  CHECK(cell.forward(s, s, p).to_vector<float>() == cell.forward(s, s, 0.0).to_vector<float>());
}

TEST_CASE("drop-path: the network's probability, and its checks") {
  EvalNetworkConfig c = cifar_network_config();
  c.layers = 3;
  c.init_channels = 4;
  EvalNetwork net(c);
  CHECK(net.drop_path_prob() == 0.0);
  net.set_drop_path_prob(0.3);
  CHECK(net.drop_path_prob() == 0.3);
  CHECK(error_of([&] { net.set_drop_path_prob(1.0); }).find("must be in [0, 1)") != std::string::npos);
  CHECK(error_of([&] { net.forward(Tensor::zeros({1, 1, 8, 8})); }).find("expects (N, 3, H, W)") !=
        std::string::npos);
}

TEST_CASE("registry: darts_cifar and darts_imagenet with settings, and their errors") {
  register_models();
  register_models();  // idempotent
  const auto names = nn::model_names();
  CHECK(std::count(names.begin(), names.end(), "darts_cifar") == 1);
  CHECK(std::count(names.begin(), names.end(), "darts_imagenet") == 1);
  Generator gen(6);
  nn::ModelSettings s{{"genotype", "DARTS_V2"}, {"layers", "4"}, {"init_channels", "6"}, {"auxiliary", "false"}};
  auto m = nn::make_model("darts_cifar", 7, 2, s, gen);
  auto* net = dynamic_cast<EvalNetwork*>(m.get());
  REQUIRE(net != nullptr);
  CHECK(net->config().genotype == builtin_genotype("DARTS_V2"));
  CHECK(net->config().layers == 4);
  CHECK(net->config().init_channels == 6);
  CHECK_FALSE(net->has_auxiliary());
  CHECK(net->config().num_classes == 7);
  CHECK(net->config().in_channels == 2);
  // The settings that rebuild it name the genotype by its JSON text.
  const nn::ModelSettings canonical = eval_network_settings(net->config());
  CHECK(canonical.at("genotype") == genotype_to_json(builtin_genotype("DARTS_V2")));
  CHECK(eval_network_config("darts_cifar", 7, 2, canonical).genotype == builtin_genotype("DARTS_V2"));
  // Defaults: the reference sizes and the PC-DARTS genotypes.
  const EvalNetworkConfig image = eval_network_config("darts_imagenet", 1000, 3, {});
  CHECK(image.layers == 14);
  CHECK(image.init_channels == 48);
  CHECK(image.imagenet);
  CHECK(image.genotype == builtin_genotype("PC_DARTS_image"));
  CHECK(eval_network_config("darts_cifar", 10, 3, {}).genotype == builtin_genotype("PC_DARTS_cifar"));

  CHECK(error_of([&] { nn::make_model("darts_cifar", 10, 3, {{"depth", "3"}}, gen); })
            .find("unknown setting 'depth'") != std::string::npos);
  CHECK(error_of([&] { nn::make_model("darts_cifar", 10, 3, {{"layers", "x"}}, gen); })
            .find("layers must be a positive integer") != std::string::npos);
  CHECK(error_of([&] { nn::make_model("darts_cifar", 10, 3, {{"auxiliary", "yes"}}, gen); })
            .find("auxiliary must be true or false") != std::string::npos);
  CHECK(error_of([&] { nn::make_model("darts_cifar", 10, 3, {{"genotype", "{}"}}, gen); })
            .find("missing field 'normal'") != std::string::npos);
  CHECK(error_of([&] { nn::make_model("darts_imagenet", 10, 3, {{"init_channels", "5"}}, gen); })
            .find("even init_channels") != std::string::npos);
  // A checkpoint's settings must fit its weights (so its metadata cannot ask for a larger network).
  EvalNetworkConfig small = eval_network_config("darts_cifar", 10, 1, {{"layers", "4"}, {"init_channels", "4"}});
  const nn::StateDict state = EvalNetwork(small, gen).state_dict();
  check_weights_fit(small, state, "f.safetensors");
  EvalNetworkConfig deeper = small, wider = small;
  deeper.layers = 5;
  wider.init_channels = 400;
  CHECK(error_of([&] { check_weights_fit(deeper, state, "f.safetensors"); })
            .find("f.safetensors: layers 5 does not match the cells the file holds") != std::string::npos);
  CHECK(error_of([&] { check_weights_fit(wider, state, "f.safetensors"); })
            .find("init_channels 400 needs a stem.0.weight of 1200 rows, which the file holds as [12, 1, 3, 3]") !=
        std::string::npos);
  // nn's own families take no settings.
  CHECK(error_of([&] { nn::make_model("resnet18", 10, 3, {{"layers", "3"}}, gen); }).find("takes no settings") !=
        std::string::npos);
}
