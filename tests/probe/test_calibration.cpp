// Expected calibration error and reliability bins against a hand computation: Guo et al.'s
// 15 equal-width bins, open below and closed above, weighted by the share of samples.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/error.h"
#include "probe/calibration.h"

using namespace dmix;
using namespace dmix::probe;

TEST_CASE("calibration: ECE of hand-made confidences over 15 bins") {
  // Bin m holds (m/15, (m+1)/15]. 0.6 = 9/15 is an upper edge: bin 8, with 0.55. 0.62 opens
  // bin 9. 0.95 and 1.0 share bin 14. 0.05 is alone in bin 0.
  const std::vector<double> confidence = {0.55, 0.6, 0.62, 0.95, 1.0, 0.05};
  const std::vector<bool> correct = {true, false, true, true, true, false};
  const plot::ReliabilityBins r = reliability_bins(confidence, correct);
  REQUIRE(r.count.size() == 15);
  REQUIRE(r.confidence.size() == 15);
  REQUIRE(r.accuracy.size() == 15);
  CHECK(r.count[0] == 1);
  CHECK(r.count[8] == 2);
  CHECK(r.count[9] == 1);
  CHECK(r.count[14] == 2);
  long long total = 0;
  for (long long c : r.count) total += c;
  CHECK(total == 6);
  CHECK(r.confidence[8] == doctest::Approx(0.575));
  CHECK(r.accuracy[8] == doctest::Approx(0.5));
  CHECK(r.confidence[14] == doctest::Approx(0.975));
  CHECK(r.accuracy[14] == 1.0);
  CHECK(std::isnan(r.confidence[3]));
  CHECK(std::isnan(r.accuracy[3]));
  // (1/6)|0 - 0.05| + (2/6)|0.5 - 0.575| + (1/6)|1 - 0.62| + (2/6)|1 - 0.975|
  const double ece = (0.05 + 2 * 0.075 + 0.38 + 2 * 0.025) / 6;
  CHECK(r.ece == doctest::Approx(ece).epsilon(1e-12));
}

TEST_CASE("calibration: perfect calibration and the bin count") {
  // 4 samples at 0.75 with 3 right: accuracy equals confidence.
  const plot::ReliabilityBins r = reliability_bins({0.75, 0.75, 0.75, 0.75}, {true, true, false, true});
  CHECK(r.ece == doctest::Approx(0.0));
  // With 2 bins, 0.5 is bin 0's upper edge.
  const plot::ReliabilityBins two = reliability_bins({0.5, 0.51}, {true, false}, 2);
  CHECK(two.count == std::vector<long long>{1, 1});
  CHECK(two.ece == doctest::Approx(0.5 * 0.5 + 0.5 * 0.51).epsilon(1e-12));
}

TEST_CASE("calibration: from logits, the max softmax and the first of tied top classes") {
  // (0, ln 3): confidence 3/4 at class 1, right. (ln 7, 0): 7/8 at class 0, wrong. (2, 2): 1/2 at
  // class 0, the first of the tie, wrong.
  const Tensor logits = Tensor::from_vector(std::vector<double>{0, std::log(3.0), std::log(7.0), 0, 2, 2}, {3, 2});
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 1, 1}, {3});
  const plot::ReliabilityBins r = reliability_bins(logits, labels);
  // 0.75 in bin 11 (11/15, 12/15], 0.875 in bin 13 (13/15, 14/15], 0.5 in bin 7 (7/15, 8/15].
  CHECK(r.count[11] == 1);
  CHECK(r.count[13] == 1);
  CHECK(r.count[7] == 1);
  CHECK(r.accuracy[11] == 1.0);
  CHECK(r.accuracy[13] == 0.0);
  CHECK(r.accuracy[7] == 0.0);
  CHECK(r.ece == doctest::Approx((0.25 + 0.875 + 0.5) / 3).epsilon(1e-12));
}

TEST_CASE("calibration: bad input is an error") {
  CHECK_THROWS_WITH_AS(reliability_bins(std::vector<double>{}, std::vector<bool>{}), doctest::Contains("no sample"),
                       Error);
  CHECK_THROWS_WITH_AS(reliability_bins({0.5}, {true, false}), doctest::Contains("1 confidences but 2"), Error);
  CHECK_THROWS_WITH_AS(reliability_bins({1.5}, {true}), doctest::Contains("outside [0, 1]"), Error);
  CHECK_THROWS_WITH_AS(reliability_bins({0.5}, {true}, 0), doctest::Contains("at least one bin"), Error);
  const Tensor logits = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(reliability_bins(logits, Tensor::from_vector(std::vector<int64_t>{0, 3}, {2})),
                       doctest::Contains("label 3 is outside [0, 3)"), Error);
}
