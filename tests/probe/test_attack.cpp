// Adversarial attacks (probe/attack.h): FGSM's closed form on a linear model, the eps-ball
// and [0, 1] constraints, eps = 0, the order FGSM <= PGD <= APGD-CE of the loss reached,
// targeted attacks, step-by-step references written with engine ops, seeds, restarts,
// transfer evaluation and the one-line errors.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "probe/attack.h"
#include "tests/probe/fixtures.h"

namespace dmix::probe {
namespace {

using testing::host;

// logits = W flatten(x) + b: two classes over 2x2 single-channel images.
class LinearPixels : public nn::Module {
 public:
  explicit LinearPixels(int64_t classes = 2, uint64_t seed = 5) {
    Generator gen(seed);
    fc = register_module("fc", std::make_shared<nn::Linear>(4, classes, true, gen));
  }
  Tensor forward(const Tensor& x) override { return (*fc)(x.flatten(1)); }
  std::shared_ptr<nn::Linear> fc;
};

// conv 3x3 (1 -> 6) -> relu -> linear over 8x8 images, 3 classes; trained below.
class SmallNet : public nn::Module {
 public:
  SmallNet() {
    Generator gen(11);
    conv = register_module("conv", std::make_shared<nn::Conv2d>(nn::Conv2dConfig{1, 6, 3, 1, 1, 1, 1, true}, gen));
    fc = register_module("fc", std::make_shared<nn::Linear>(6 * 8 * 8, 3, true, gen));
  }
  Tensor forward(const Tensor& x) override { return (*fc)(relu((*conv)(x)).flatten(1)); }
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::Linear> fc;
};

// Images of class c: noise in [0, 0.6] with a brighter bar over rows 2c and 2c + 1.
void bar_images(int64_t n, uint64_t seed, Tensor& x, Tensor& y) {
  Generator gen(seed);
  x = gen.uniform({n, 1, 8, 8}, 0.0, 0.6);
  y = gen.randint({n}, 0, 3);
  const std::vector<int64_t> labels = y.to_vector<int64_t>();
  float* p = x.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 2 * labels[i]; r < 2 * labels[i] + 2; ++r)
      for (int64_t c = 0; c < 8; ++c) p[i * 64 + r * 8 + c] += 0.25f;
}

std::shared_ptr<SmallNet> trained_small_net() {
  auto net = std::make_shared<SmallNet>();
  Tensor x, y;
  bar_images(96, 1, x, y);
  for (int step = 0; step < 60; ++step) {
    net->zero_grad();
    cross_entropy((*net)(x), y).backward();
    autograd::NoGradGuard no_grad;
    for (Tensor& p : net->parameters()) p.add_(p.grad(), -0.5);
  }
  return net;
}

double mean_loss(AttackModel& m, const Tensor& x, const Tensor& y) {
  const std::vector<double> l = per_sample_cross_entropy(m.logits(x), y);
  double s = 0;
  for (double v : l) s += v;
  return s / double(l.size());
}

AttackOptions options_for(AttackKind kind, double eps) {
  AttackOptions o = default_attack_options(kind);
  o.eps = eps;
  if (kind == AttackKind::pgd && eps > 0) o.step = eps / 4;
  if (kind == AttackKind::pgd_l2 && eps > 0) o.step = eps / 5;
  return o;
}

const std::vector<AttackKind> kAllKinds = {AttackKind::fgsm, AttackKind::pgd, AttackKind::pgd_l2, AttackKind::apgd_ce};

TEST_CASE("attack: FGSM on a linear model is eps times the sign of the weight row difference") {
  LinearPixels lin;
  const std::vector<float> w = lin.fc->weight.to_vector<float>(), b = lin.fc->bias.to_vector<float>();
  NormalizedModel model(lin, {0.5f}, {0.25f});
  Generator gen(2);
  const Tensor x = gen.uniform({6, 1, 2, 2}, 0.1, 0.9);  // eps below keeps every step inside [0, 1]
  const Tensor y = gen.randint({6}, 0, 2);
  const std::vector<float> xs = x.to_vector<float>();
  const std::vector<int64_t> ys = y.to_vector<int64_t>();

  // The input gradient, by hand: d CE / d x = (1 - p_y) (w_other - w_y) / std, over N for the mean.
  const LossGradient r = model.loss_gradient(x, y);
  const std::vector<double> g = host(r.gradient);
  for (int64_t i = 0; i < 6; ++i) {
    double z[2];
    for (int k = 0; k < 2; ++k) {
      z[k] = b[k];
      for (int d = 0; d < 4; ++d) z[k] += w[k * 4 + d] * (xs[i * 4 + d] - 0.5) / 0.25;
    }
    const int64_t yi = ys[i], other = 1 - yi;
    const double p_y = 1 / (1 + std::exp(z[other] - z[yi]));
    for (int d = 0; d < 4; ++d)
      CHECK(g[i * 4 + d] == doctest::Approx((1 - p_y) * (w[other * 4 + d] - w[yi * 4 + d]) / 0.25 / 6).epsilon(1e-4));
  }

  AttackOptions o = default_attack_options(AttackKind::fgsm);
  o.eps = 0.05;
  Generator unused(0);
  const std::vector<double> adv = host(attack(model, x, y, o, unused));
  for (int64_t i = 0; i < 6; ++i)
    for (int d = 0; d < 4; ++d) {
      const double diff = w[(1 - ys[i]) * 4 + d] - w[ys[i] * 4 + d];
      CHECK(adv[i * 4 + d] - xs[i * 4 + d] == doctest::Approx(o.eps * (diff > 0 ? 1 : -1)).epsilon(1e-5));
    }
}

TEST_CASE("attack: every attack stays in the eps-ball and in [0, 1]") {
  testing::TinyCnn cnn;
  NormalizedModel model(cnn, {0.4f, 0.6f}, {0.3f, 0.2f});
  Generator data(4);
  // Pixels at 0 and 1 too, where clipping to [0, 1] binds.
  const Tensor x = clamp(data.uniform({8, 2, 6, 6}, -0.3, 1.3), 0.0, 1.0);
  const Tensor y = data.randint({8}, 0, 3);
  for (AttackKind kind : kAllKinds) {
    CAPTURE(attack_name(kind));
    const AttackOptions o = options_for(kind, kind == AttackKind::pgd_l2 ? 0.5 : 0.1);
    Generator gen(9);
    const Tensor adv = attack(model, x, y, o, gen);
    const std::vector<double> a = host(adv), c = host(x);
    CHECK(*std::min_element(a.begin(), a.end()) >= 0.0);
    CHECK(*std::max_element(a.begin(), a.end()) <= 1.0);
    double moved = 0;
    for (size_t i = 0; i < a.size(); ++i) moved = std::max(moved, std::abs(a[i] - c[i]));
    CHECK(moved > 0);
    if (kind == AttackKind::pgd_l2) {
      for (double norm : host(sample_norms(adv - x))) CHECK(norm <= o.eps * (1 + 1e-5));
    } else {
      CHECK(moved <= o.eps + 1e-6);
    }
  }
}

TEST_CASE("attack: eps = 0 returns the clean images and the clean error exactly (eval-mode batch norm)") {
  testing::TinyCnn cnn;
  cnn.train();
  Generator data(6);
  const Tensor x = data.uniform({10, 2, 5, 5});
  const Tensor y = data.randint({10}, 0, 3);
  for (AttackKind kind : kAllKinds) {
    CAPTURE(attack_name(kind));
    NormalizedModel model(cnn, {0.5f, 0.5f}, {0.5f, 0.5f});
    const AttackOptions o = options_for(kind, 0.0);
    Generator gen(1);
    CHECK(host(attack(model, x, y, o, gen)) == host(x));
    TensorBatches batches(x, y, 4);
    TransferOptions t;
    t.attack = o;
    const AttackEvaluation e = evaluate_attack(model, batches, t);
    CHECK(e.clean.images == 10);
    CHECK(e.adversarial.top1_wrong == e.clean.top1_wrong);
    CHECK(e.adversarial.top5_wrong == e.clean.top5_wrong);
  }
  CHECK(cnn.training());  // the wrapper put the mode back
  for (auto& [name, p] : cnn.named_parameters()) CHECK(p.requires_grad());
}

TEST_CASE("attack: on a trained model PGD reaches a higher loss than FGSM, and APGD-CE than PGD") {
  auto net = trained_small_net();
  NormalizedModel model(*net, {}, {});
  Tensor x, y;
  bar_images(48, 2, x, y);
  const double clean = mean_loss(model, x, y);
  std::vector<double> loss;
  for (AttackKind kind : {AttackKind::fgsm, AttackKind::pgd, AttackKind::apgd_ce}) {
    Generator gen(3);
    const Tensor adv = attack(model, x, y, options_for(kind, 0.1), gen);
    loss.push_back(mean_loss(model, adv, y));
  }
  MESSAGE("mean cross-entropy: clean " << clean << ", FGSM " << loss[0] << ", PGD " << loss[1] << ", APGD-CE "
                                       << loss[2]);
  CHECK(clean < 0.5);  // the model learnt the bars
  CHECK(loss[0] > clean);
  CHECK(loss[1] >= loss[0]);
  CHECK(loss[2] >= loss[1]);
}

TEST_CASE("attack: targeted attacks on a linear model reach their target") {
  // Class k scores 10 times pixel k: every class wins somewhere in [0, 1]^4.
  LinearPixels lin(3, 8);
  {
    autograd::NoGradGuard no_grad;
    lin.fc->weight.copy_(Tensor::from_vector(std::vector<float>{10, 0, 0, 0, 0, 10, 0, 0, 0, 0, 10, 0}, {3, 4}));
    lin.fc->bias.zero_();
  }
  NormalizedModel model(lin, {}, {});
  Generator data(12);
  const Tensor x = data.uniform({9, 1, 2, 2}, 0.3, 0.7);
  const Tensor target = data.randint({9}, 0, 3);
  for (AttackKind kind : kAllKinds) {
    CAPTURE(attack_name(kind));
    AttackOptions o = options_for(kind, kind == AttackKind::pgd_l2 ? 2.0 : 1.0);
    o.targeted = true;
    if (kind == AttackKind::pgd) o.steps = 20;
    Generator gen(5);
    const Tensor adv = attack(model, x, target, o, gen);
    const std::vector<bool> hit = fooled(model.logits(adv), target, true);
    for (int64_t i = 0; i < 9; ++i) {
      CAPTURE(i);
      CHECK(hit[i]);
    }
  }
}

// The model evaluated by hand: (x - mean) / std into the module, mean cross-entropy, input gradient.
Tensor reference_gradient(nn::Module& net, const Tensor& adv, const Tensor& y, const Tensor& mean, const Tensor& std) {
  Tensor a = adv.detach().clone().set_requires_grad();
  const Tensor loss = cross_entropy(net((a - mean) / std), y);
  return autograd::grad({loss}, {a})[0];
}

TEST_CASE("attack: FGSM and PGD without random start equal step-by-step references in engine ops") {
  testing::TinyCnn cnn;
  Generator data(7);
  const Tensor x = data.uniform({6, 2, 5, 5});
  const Tensor y = data.randint({6}, 0, 3);
  const Tensor mean = Tensor::from_vector(std::vector<float>{0.3f, 0.7f}, {1, 2, 1, 1});
  const Tensor std = Tensor::from_vector(std::vector<float>{0.2f, 0.4f}, {1, 2, 1, 1});
  const double eps = 8.0 / 255, alpha = 2.0 / 255;
  std::vector<double> fgsm_ref, pgd_ref, l2_ref;
  {
    cnn.eval();
    fgsm_ref = host(clamp(x + eps * sign(reference_gradient(cnn, x, y, mean, std)), 0.0, 1.0));
    Tensor adv = x;
    for (int s = 0; s < 10; ++s) {  // torchattacks pgd.py, lines 76-78
      adv = adv + alpha * sign(reference_gradient(cnn, adv, y, mean, std));
      const Tensor delta = clamp(adv - x, -eps, eps);
      adv = clamp(x + delta, 0.0, 1.0);
    }
    pgd_ref = host(adv);
    adv = x;
    for (int s = 0; s < 10; ++s) {  // torchattacks pgdl2.py
      const Tensor g = reference_gradient(cnn, adv, y, mean, std);
      const Tensor gn = sqrt(sum((g * g).reshape({6, -1}), {1})).reshape({6, 1, 1, 1}) + 1e-10;
      adv = adv + 0.2 * (g / gn);
      Tensor delta = adv - x;
      const std::vector<float> dn = sqrt(sum((delta * delta).reshape({6, -1}), {1})).to_vector<float>();
      std::vector<float> factor(6);
      for (int i = 0; i < 6; ++i) factor[i] = std::min(1.0f, 1.0f / dn[i]);
      delta = delta * Tensor::from_vector(factor, {6, 1, 1, 1});
      adv = clamp(x + delta, 0.0, 1.0);
    }
    l2_ref = host(adv);
  }
  NormalizedModel model(cnn, {0.3f, 0.7f}, {0.2f, 0.4f});
  Generator gen(0);
  AttackOptions o = default_attack_options(AttackKind::fgsm);
  CHECK(host(attack(model, x, y, o, gen)) == fgsm_ref);
  o = default_attack_options(AttackKind::pgd);
  o.random_start = false;
  CHECK(host(attack(model, x, y, o, gen)) == pgd_ref);
  o = default_attack_options(AttackKind::pgd_l2);
  o.random_start = false;
  CHECK(host(attack(model, x, y, o, gen)) == l2_ref);
}

TEST_CASE("attack: the same seed gives the same adversarial images, another seed others") {
  testing::TinyCnn cnn;
  NormalizedModel model(cnn, {}, {});
  Generator data(8);
  const Tensor x = data.uniform({5, 2, 5, 5});
  const Tensor y = data.randint({5}, 0, 3);
  for (AttackKind kind : {AttackKind::pgd, AttackKind::pgd_l2, AttackKind::apgd_ce}) {
    CAPTURE(attack_name(kind));
    AttackOptions o = options_for(kind, kind == AttackKind::pgd_l2 ? 0.5 : 0.05);
    o.steps = 5;
    Generator a(42), b(42), c(43);
    const std::vector<double> first = host(attack(model, x, y, o, a));
    CHECK(host(attack(model, x, y, o, b)) == first);
    CHECK(host(attack(model, x, y, o, c)) != first);
  }
}

TEST_CASE("attack: a restart only adds fooled points") {
  auto net = trained_small_net();
  NormalizedModel model(*net, {}, {});
  Tensor x, y;
  bar_images(32, 3, x, y);
  for (AttackKind kind : {AttackKind::pgd, AttackKind::apgd_ce}) {
    CAPTURE(attack_name(kind));
    AttackOptions o = options_for(kind, 0.08);
    o.steps = 10;
    Generator g1(4), g2(4);
    const std::vector<bool> once = fooled(model.logits(attack(model, x, y, o, g1)), y, false);
    o.restarts = 3;
    const std::vector<bool> thrice = fooled(model.logits(attack(model, x, y, o, g2)), y, false);
    int64_t n1 = 0, n3 = 0;
    for (size_t i = 0; i < once.size(); ++i) {
      if (once[i]) CHECK(thrice[i]);
      n1 += once[i];
      n3 += thrice[i];
    }
    MESSAGE(attack_name(kind) << ": fooled " << n1 << " of 32 with 1 run, " << n3 << " with 3");
  }
}

TEST_CASE("attack: transfer evaluation puts the white-box figure on the diagonal") {
  auto a = trained_small_net();
  SmallNet b_net;  // untrained: another model
  NormalizedModel ma(*a, {}, {}), mb(b_net, {}, {});
  Tensor x, y;
  bar_images(20, 5, x, y);
  TransferOptions t;
  t.attack = options_for(AttackKind::pgd, 0.1);
  t.seed = 3;
  int64_t calls = 0;
  t.on_batch = [&](size_t, const augment::Batch& clean, const Tensor& adv, const Tensor&) {
    CHECK(adv.shape() == clean.images.shape());
    ++calls;
  };
  TensorBatches batches(x, y, 8);
  const auto table = transfer_evaluation({&ma, &mb}, {&ma, &mb}, batches, t);
  CHECK(calls == 2 * 3);
  TensorBatches again(x, y, 8);
  t.on_batch = nullptr;
  const AttackEvaluation white = evaluate_attack(ma, again, t);
  CHECK(table[0][0].adversarial.top1_wrong == white.adversarial.top1_wrong);
  CHECK(table[0][0].clean.top1_wrong == white.clean.top1_wrong);
  CHECK(table[1][0].clean.top1_wrong == white.clean.top1_wrong);
  CHECK(table[0][0].adversarial.top1_error() >= table[1][0].adversarial.top1_error());
  MESSAGE("on the trained model: clean " << white.clean.top1_error() << "%, white-box PGD "
                                         << table[0][0].adversarial.top1_error() << "%, transferred from another "
                                         << table[1][0].adversarial.top1_error() << "%");

  t.attack.targeted = true;
  t.target_class = 2;
  TensorBatches targeted(x, y, 8);
  const AttackEvaluation hit = evaluate_attack(ma, targeted, t);
  CHECK(hit.adversarial.target_hits > hit.clean.target_hits);
}

TEST_CASE("attack: bad options and inputs are one-line errors") {
  testing::TinyCnn cnn;
  NormalizedModel model(cnn, {}, {});
  Generator gen(0);
  const Tensor x = gen.uniform({2, 2, 4, 4});
  const Tensor y = Tensor::from_vector(std::vector<int64_t>{0, 1}, {2});
  AttackOptions o;
  o.eps = 1.5;
  CHECK_THROWS_WITH_AS(attack(model, x, y, o, gen), doctest::Contains("eps must lie in [0, 1]"), Error);
  o = AttackOptions{};
  CHECK_THROWS_WITH_AS(attack(model, x * 2.0, y, o, gen), doctest::Contains("must be pixels in [0, 1]"), Error);
  CHECK_NOTHROW(attack(model, x + 1e-7, y, o, gen));  // round-off of un-normalised pixels
  o.random_start = false;
  o.restarts = 2;
  CHECK_THROWS_WITH_AS(attack(model, x, y, o, gen), doctest::Contains("restarts need a random start"), Error);
  CHECK_THROWS_WITH_AS(parse_attack_kind("cw"), doctest::Contains("fgsm, pgd, pgd-l2 or apgd-ce"), Error);
  CHECK_THROWS_WITH_AS(NormalizedModel(cnn, {0.5f}, {0.0f}), doctest::Contains("std must be positive"), Error);
  NormalizedModel three(cnn, {0.5f, 0.5f, 0.5f}, {1, 1, 1});
  CHECK_THROWS_WITH_AS(three.logits(x), doctest::Contains("3 channels but the images 2"), Error);
}

}  // namespace
}  // namespace dmix::probe
