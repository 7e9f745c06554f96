// Optimizers and schedules against update rules worked by hand (PyTorch's formulas).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/ops.h"
#include "nn/optim.h"
#include "nn/schedule.h"

using namespace dmix;
using namespace dmix::nn;

namespace {
Tensor param(const std::vector<float>& v) { return Tensor::from_vector(v, {int64_t(v.size())}).set_requires_grad(); }
void set_grad(Tensor& p, const std::vector<float>& g) { p.set_grad(Tensor::from_vector(g, {int64_t(g.size())})); }
}  // namespace

TEST_CASE("SGD: momentum, Nesterov and coupled weight decay follow PyTorch's rule") {
  Tensor p = param({1.0f, -2.0f});
  SgdOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 0.01;
  o.nesterov = true;
  SGD sgd({{"p", p}}, o);
  set_grad(p, {0.5f, 0.25f});
  sgd.step();
  // d = g + wd p; buf = d; p -= lr (d + m buf)
  double d0 = 0.5 + 0.01 * 1.0, p0 = 1.0 - 0.1 * (d0 + 0.9 * d0);
  CHECK(p.to_vector<float>()[0] == doctest::Approx(p0).epsilon(1e-6));
  set_grad(p, {0.5f, 0.25f});
  sgd.step();
  double d1 = 0.5 + 0.01 * p0, b1 = 0.9 * d0 + d1, p1 = p0 - 0.1 * (d1 + 0.9 * b1);
  CHECK(p.to_vector<float>()[0] == doctest::Approx(p1).epsilon(1e-6));
  CHECK(sgd.steps() == 2);
}

TEST_CASE("SGD: state round trip continues identically") {
  Tensor p = param({1.0f}), q = param({1.0f});
  SgdOptions o;
  SGD a({{"w", p}}, o), b({{"w", q}}, o);
  set_grad(p, {1.0f});
  a.step();
  b.load_state_dict(a.state_dict());
  {
    autograd::NoGradGuard g;
    q.copy_(p);
  }
  set_grad(p, {0.3f});
  set_grad(q, {0.3f});
  a.step();
  b.step();
  CHECK(p.to_vector<float>() == q.to_vector<float>());
  Adam adam({{"w", q}}, AdamOptions{});
  CHECK_THROWS_AS(adam.load_state_dict(a.state_dict()), Error);
}

TEST_CASE("Adam: the first step moves each parameter by lr against the gradient's sign") {
  Tensor p = param({1.0f, 1.0f});
  AdamOptions o;
  o.lr = 0.01;
  Adam adam({{"p", p}}, o);
  set_grad(p, {3.0f, -0.2f});
  adam.step();
  auto v = p.to_vector<float>();
  CHECK(v[0] == doctest::Approx(1.0 - 0.01).epsilon(1e-5));
  CHECK(v[1] == doctest::Approx(1.0 + 0.01).epsilon(1e-5));
}

TEST_CASE("clip_grad_norm scales the global norm down to the limit") {
  Tensor a = param({0, 0}), b = param({0});
  set_grad(a, {3, 0});
  set_grad(b, {4});
  CHECK(clip_grad_norm({a, b}, 1.0) == doctest::Approx(5.0));
  CHECK(a.grad().to_vector<float>()[0] == doctest::Approx(0.6).epsilon(1e-5));
  CHECK(b.grad().to_vector<float>()[0] == doctest::Approx(0.8).epsilon(1e-5));
}

TEST_CASE("LR schedules: multistep fractions, cosine, warm-up, bad specs") {
  auto s = LrSchedule::parse("multistep:0.75,0.9", 0.25, 300);
  CHECK(s.lr_at(0) == doctest::Approx(0.25));
  CHECK(s.lr_at(224.9) == doctest::Approx(0.25));
  CHECK(s.lr_at(225) == doctest::Approx(0.025));
  CHECK(s.lr_at(270) == doctest::Approx(0.0025));
  auto c = LrSchedule::parse("cosine", 0.1, 10);
  CHECK(c.lr_at(5) == doctest::Approx(0.05));
  CHECK(c.lr_at(10) == doctest::Approx(0.0));
  c.warmup_epochs = 1;
  CHECK(c.lr_at(0.5) == doctest::Approx(0.5 * 0.1 * 0.5 * (1 + std::cos(M_PI * 0.05))));
  CHECK_THROWS_AS(LrSchedule::parse("step", 0.1, 10), Error);
  CHECK_THROWS_AS(LrSchedule::parse("multistep:a", 0.1, 10), Error);
}
