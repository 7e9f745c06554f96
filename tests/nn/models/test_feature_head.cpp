// The feature / classifier split of every model kind (logits = classifier(features(x)),
// exactly), the error for a model it does not know, and Module::modules().
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "nn/layers.h"
#include "nn/models/feature_head.h"
#include "nn/models/registry.h"

using namespace dmix;
using namespace dmix::nn;

namespace {

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

}  // namespace

TEST_CASE("feature_head: classifier(features(x)) is the model's output, features are the classifier's input") {
  autograd::NoGradGuard no_grad;
  Generator gen(3);
  const Tensor x = gen.normal({2, 3, 32, 32});
  for (const char* name : {"pyramidnet8_a8_basic", "resnet18", "preactresnet18", "wrn10_1", "resnext11_2_4"}) {
    CAPTURE(std::string(name));
    auto model = make_model(name, 5, 3, gen);
    model->eval();
    REQUIRE(has_feature_head(*model));
    const FeatureHead head = feature_head(*model);
    const Tensor f = head.features(x);
    CHECK(f.dim() == 2);
    CHECK(f.size(0) == 2);
    CHECK(f.size(1) == head.classifier->weight.size(1));
    CHECK(same_values(head.classifier->forward(f), model->forward(x)));
  }
}

TEST_CASE("feature_head: a Sequential ending in Linear splits before it; other models are an error") {
  autograd::NoGradGuard no_grad;
  Generator gen(4);
  auto linear = std::make_shared<Linear>(6, 3, true, gen);
  Sequential seq(
      {std::make_shared<Flatten>(), std::make_shared<Linear>(8, 6, true, gen), std::make_shared<ReLU>(), linear});
  const Tensor x = gen.normal({4, 2, 2, 2});
  const FeatureHead head = feature_head(seq);
  CHECK(head.classifier == linear.get());
  CHECK(head.features(x).shape() == Shape{4, 6});
  CHECK(same_values(head.classifier->forward(head.features(x)), seq.forward(x)));

  Sequential no_linear_end(
      {std::make_shared<Flatten>(), std::make_shared<Linear>(8, 6, true, gen), std::make_shared<ReLU>()});
  CHECK_FALSE(has_feature_head(no_linear_end));
  CHECK_THROWS_WITH_AS(feature_head(no_linear_end), doctest::Contains("Sequential ending in a Linear"), Error);
}

TEST_CASE("Module::modules lists the tree depth-first; set_training_flag changes one module only") {
  Generator gen(5);
  auto inner = std::make_shared<Sequential>(
      std::vector<std::shared_ptr<Module>>{std::make_shared<Dropout>(0.5, gen), std::make_shared<ReLU>()});
  Sequential outer({std::make_shared<Flatten>(), inner, std::make_shared<Linear>(2, 2, true, gen)});
  const std::vector<Module*> all = outer.modules();
  REQUIRE(all.size() == 6);
  CHECK(all[0] == &outer);
  CHECK(all[2] == inner.get());
  CHECK(dynamic_cast<Dropout*>(all[3]) != nullptr);
  CHECK(dynamic_cast<Linear*>(all[5]) != nullptr);
  outer.eval();
  all[3]->set_training_flag(true);
  CHECK(all[3]->training());
  CHECK_FALSE(all[2]->training());
  CHECK_FALSE(all[5]->training());
}
