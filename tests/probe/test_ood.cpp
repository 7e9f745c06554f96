// OOD detection metrics on hand-made scores against values worked out by hand (ties,
// all-equal scores, perfect and reversed separation), MSP and energy scores on hand
// logits, and the ImageNet-A subset-class protocol on a hand-set linear model.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <memory>

#include "augment/loader.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "nn/layers.h"
#include "nn/metrics.h"
#include "probe/ood.h"

using namespace dmix;
using namespace dmix::probe;

namespace {

// In-distribution confidences and OOD ones with ties inside each side and across them.
const std::vector<double> kIn = {0.9, 0.7, 0.7, 0.4};
const std::vector<double> kOut = {0.8, 0.7, 0.2};

std::vector<double> negated(std::vector<double> v) {
  for (double& s : v) s = -s;
  return v;
}

}  // namespace

TEST_CASE("ood: AUROC counts each pair once and a tie as one half") {
  // Pairs won by the in-distribution samples: 0.9 beats all 3; each 0.7 beats 0.2 and ties
  // 0.7 (1.5); 0.4 beats 0.2. 7 of 12.
  CHECK(auroc(kIn, kOut) == doctest::Approx(7.0 / 12.0).epsilon(1e-15));
  CHECK(auroc(kOut, kIn) == doctest::Approx(5.0 / 12.0).epsilon(1e-15));
  // Which side is positive does not matter once the scores are negated.
  CHECK(auroc(negated(kOut), negated(kIn)) == doctest::Approx(7.0 / 12.0).epsilon(1e-15));
}

TEST_CASE("ood: average precision steps once per distinct score") {
  // Thresholds 0.9, 0.8, 0.7, 0.4, 0.2 give (TP, FP) = (1,0) (1,1) (3,2) (4,2) (4,3): recall
  // rises by 1/4 at precision 1, by 2/4 at 3/5 and by 1/4 at 4/6.
  CHECK(average_precision(kIn, kOut) == doctest::Approx(0.25 + 0.5 * 0.6 + 0.25 * 4.0 / 6.0).epsilon(1e-15));
  // OOD positive, scored by negated confidence: thresholds -0.2, -0.4, -0.7, -0.8, -0.9
  // give (1,0) (1,1) (2,3) (3,3) (3,4): thirds of recall at precisions 1, 2/5 and 3/6.
  CHECK(average_precision(negated(kOut), negated(kIn)) == doctest::Approx((1.0 + 0.4 + 0.5) / 3.0).epsilon(1e-15));
}

TEST_CASE("ood: FPR at a TPR is the first threshold reaching it, ties crossing together") {
  // TPR 1/4 at 0.9 (FPR 0), 3/4 at 0.7 (FPR 2/3, the tie at 0.7 takes the OOD 0.7 along), 1 at 0.4.
  CHECK(fpr_at_tpr(kIn, kOut, 0.95) == doctest::Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(fpr_at_tpr(kIn, kOut, 0.75) == doctest::Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(fpr_at_tpr(kIn, kOut, 0.5) == doctest::Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(fpr_at_tpr(kIn, kOut, 0.25) == 0.0);
  // Positives 0..19: 19 of 20 is 95% exactly, reached at threshold 1 (not only at 0).
  std::vector<double> pos;
  for (int i = 0; i < 20; ++i) pos.push_back(i);
  CHECK(fpr_at_tpr(pos, {0.5}, 0.95) == 0.0);
  CHECK(fpr_at_tpr(pos, {0.5, 18.5}, 0.95) == 0.5);
  CHECK(fpr_at_tpr(pos, {0.5}, 1.0) == 1.0);  // every positive needs threshold 0, below the negative
  CHECK(fpr_at_tpr(pos, {-0.5}, 1.0) == 0.0);
}

TEST_CASE("ood: the four metrics together, and the degenerate cases") {
  const OodMetrics m = ood_metrics(kIn, kOut);
  CHECK(m.auroc == doctest::Approx(7.0 / 12.0).epsilon(1e-15));
  CHECK(m.aupr_in == doctest::Approx(43.0 / 60.0).epsilon(1e-15));
  CHECK(m.aupr_out == doctest::Approx(19.0 / 30.0).epsilon(1e-15));
  CHECK(m.fpr95 == doctest::Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(m.in_samples == 4);
  CHECK(m.out_samples == 3);

  SUBCASE("all scores equal: one threshold, chance AUROC, precision the base rate") {
    const OodMetrics e = ood_metrics({1, 1}, {1, 1, 1});
    CHECK(e.auroc == 0.5);
    CHECK(e.aupr_in == doctest::Approx(2.0 / 5.0).epsilon(1e-15));
    CHECK(e.aupr_out == doctest::Approx(3.0 / 5.0).epsilon(1e-15));
    CHECK(e.fpr95 == 1.0);
  }
  SUBCASE("perfect separation") {
    const OodMetrics p = ood_metrics({3, 2}, {1, 0});
    CHECK(p.auroc == 1.0);
    CHECK(p.aupr_in == 1.0);
    CHECK(p.aupr_out == 1.0);
    CHECK(p.fpr95 == 0.0);
  }
  SUBCASE("reversed separation") {
    const OodMetrics r = ood_metrics({0, 1}, {2, 3});
    CHECK(r.auroc == 0.0);
    // Thresholds 3, 2, 1, 0: (0,1) (0,2) (1,2) (2,2): recall halves at precisions 1/3 and 2/4.
    CHECK(r.aupr_in == doctest::Approx(0.5 / 3.0 + 0.5 * 0.5).epsilon(1e-15));
    CHECK(r.fpr95 == 1.0);
  }
}

TEST_CASE("ood: bad scores are errors") {
  CHECK_THROWS_WITH_AS(ood_metrics({}, {1.0}), doctest::Contains("no in-distribution sample"), Error);
  CHECK_THROWS_WITH_AS(ood_metrics({1.0}, {}), doctest::Contains("no out-of-distribution sample"), Error);
  CHECK_THROWS_WITH_AS(auroc({std::nan("")}, {1.0}), doctest::Contains("finite"), Error);
  CHECK_THROWS_WITH_AS(fpr_at_tpr({1.0}, {0.0}, 0.0), doctest::Contains("(0, 1]"), Error);
  CHECK_THROWS_WITH_AS(parse_ood_score("odin"), doctest::Contains("expected msp or energy"), Error);
  CHECK(parse_ood_score("energy") == OodScore::energy);
  CHECK(std::string(ood_score_name(OodScore::msp)) == "msp");
}

TEST_CASE("ood: max-softmax and energy scores of hand logits") {
  const double ln3 = std::log(3.0), ln4 = std::log(4.0);
  // (0, ln 3, 0, 0) has probabilities (1, 3, 1, 1) / 6; four equal logits 1/4 each; (1000, 0, 0, 0)
  // must not overflow.
  const Tensor logits = Tensor::from_vector(std::vector<float>{0, float(ln3), 0, 0,  //
                                                               1, 1, 1, 1,           //
                                                               1000, 0, 0, 0},
                                            {3, 4});
  const std::vector<double> msp = max_softmax_scores(logits);
  REQUIRE(msp.size() == 3);
  CHECK(msp[0] == doctest::Approx(0.5).epsilon(1e-6));
  CHECK(msp[1] == doctest::Approx(0.25).epsilon(1e-12));
  CHECK(msp[2] == doctest::Approx(1.0).epsilon(1e-12));
  const std::vector<double> energy = negative_energy_scores(logits);
  CHECK(energy[0] == doctest::Approx(std::log(6.0)).epsilon(1e-6));
  CHECK(energy[1] == doctest::Approx(1.0 + ln4).epsilon(1e-12));
  CHECK(energy[2] == doctest::Approx(1000.0).epsilon(1e-12));
  // T = 2 on (0, 2 ln 3): 2 logsumexp(0, ln 3) = 2 ln 4; its softmax is (1, 9) / 10.
  const Tensor two = Tensor::from_vector(std::vector<double>{0, 2 * ln3}, {1, 2});
  CHECK(negative_energy_scores(two, 2.0)[0] == doctest::Approx(2 * ln4).epsilon(1e-12));
  CHECK(max_softmax_scores(two)[0] == doctest::Approx(9.0 / 10.0).epsilon(1e-12));
  CHECK(confidence_scores(logits, OodScore::energy) == energy);
  CHECK(confidence_scores(logits, OodScore::msp) == msp);
  CHECK_THROWS_WITH_AS(negative_energy_scores(two, 0.0), doctest::Contains("temperature"), Error);
  CHECK_THROWS_WITH_AS(max_softmax_scores(Tensor::zeros({3})), doctest::Contains("(N, K)"), Error);
}

namespace {

// x (N, 1, 1, 2) -> flatten -> a linear layer with hand-set weights over 4 classes. Class 2
// (weights (1, 1), bias 1) wins every input here but belongs to no image of the "folder":
// only restricting the logits to the classes present lets the others be recognised.
class HandLinear : public nn::Module {
 public:
  HandLinear() {
    fc = register_module("fc", std::make_shared<nn::Linear>(2, 4));
    autograd::NoGradGuard no_grad;
    fc->weight.copy_(Tensor::from_vector(std::vector<float>{1, 0, 0, 1, 1, 1, 0, 0}, {4, 2}));
    fc->bias.copy_(Tensor::from_vector(std::vector<float>{0, 0, 1, 0.5f}, {4}));
  }
  Tensor forward(const Tensor& x) override { return (*fc)(x.flatten(1)); }
  std::shared_ptr<nn::Linear> fc;
};

}  // namespace

TEST_CASE("ood: logits restricted to the classes a split holds (ImageNet-A protocol)") {
  // Pixels / 255: (1, 0.2) class 0, (0.2, 0.8) class 1, (0, 0) class 3, (0.6, 0.4) class 1.
  // Logits (x, y, x + y + 1, 0.5): class 2 always wins; among classes {0, 1, 3} the first three
  // images are recognised and the last one is taken for class 0 (0.6 beats 0.4 and 0.5).
  augment::Dataset d;
  d.images = Tensor::from_vector(std::vector<uint8_t>{255, 51, 51, 204, 0, 0, 153, 102}, {4, 1, 1, 2});
  d.labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 3, 1}, {4});
  d.num_classes = 4;
  d.class_names = {"a", "b", "c", "d"};
  d.name = "hand";
  augment::LoaderOptions o;
  o.batch_size = 3;
  o.shuffle = false;
  o.num_workers = 0;
  augment::DataLoader loader(d, o);
  HandLinear model;

  const std::vector<int64_t> classes = classes_present(d.labels);
  CHECK(classes == std::vector<int64_t>{0, 1, 3});
  const Outputs full = collect_outputs(model, loader);
  CHECK(full.logits.shape() == Shape{4, 4});
  CHECK(nn::count_topk_correct(full.logits, full.labels, 1) == 0);

  const Outputs kept = collect_outputs(model, loader, classes);
  REQUIRE(kept.logits.shape() == Shape{4, 3});
  CHECK(kept.logits.to_vector<float>() == restrict_logits(full.logits, classes).to_vector<float>());
  CHECK(kept.logits.to_vector<float>()[2] == doctest::Approx(0.5));  // class 3's logit in column 2
  const Tensor labels = restrict_labels(kept.labels, classes);
  CHECK(labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 1});
  CHECK(nn::count_topk_correct(kept.logits, labels, 1) == 3);

  CHECK_THROWS_WITH_AS(restrict_labels(kept.labels, {0, 1}), doctest::Contains("label 3 is not among the 2"), Error);
  CHECK_THROWS_WITH_AS(restrict_logits(full.logits, {0, 4}), doctest::Contains("class 4 is outside"), Error);
  CHECK_THROWS_WITH_AS(restrict_logits(full.logits, {1, 1}), doctest::Contains("class 1 is listed twice"), Error);
}
