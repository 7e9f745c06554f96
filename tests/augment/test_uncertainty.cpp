// Uncertainty subsampling: loss statistics against hand computation, the anchor-conditioned
// Dirichlet draws against the closed-form moments, label weights against pixel counts,
// the scorer against a composite-by-composite recomputation, reproducibility across batch
// sizes and thread counts, exact per-class counts for both selection rules, K-Center
// against a brute-force greedy, MC dropout, and the subset / scores files.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>
#include <nlohmann/json.hpp>

#include "augment/loader.h"
#include "augment/subsample.h"
#include "augment/uncertainty.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "kernels/cpu/threads.h"
#include "nn/layers.h"

using namespace dmix;
using namespace dmix::augment;

namespace {

// n images 1 x S x S whose pixels depend on (i, pixel); label i % classes.
Dataset synthetic(int64_t n, int64_t S, int64_t classes) {
  std::vector<uint8_t> pixels(static_cast<size_t>(n * S * S));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < S * S; ++p)
      pixels[static_cast<size_t>(i * S * S + p)] = static_cast<uint8_t>((i * 37 + p * 11 + (p * p) % 17) % 256);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = i % classes;
  Dataset d;
  d.images = Tensor::from_vector(pixels, {n, 1, S, S});
  d.labels = Tensor::from_vector(labels, {n});
  d.num_classes = classes;
  d.class_names.resize(static_cast<size_t>(classes));
  d.name = "synthetic";
  return d;
}

Pipeline normalizing() {
  Pipeline p;
  p.mean = {0.5f};
  p.std = {0.25f};
  return p;
}

// conv -> ReLU -> global pool -> linear: tiny, with a feature / classifier split.
std::shared_ptr<nn::Sequential> tiny_model(int64_t classes, uint64_t seed) {
  Generator gen(seed);
  nn::Conv2dConfig c{1, 6, 3};
  c.padding = 1;
  c.bias = true;
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(c, gen), std::make_shared<nn::ReLU>(), std::make_shared<nn::GlobalAvgPool>(),
      std::make_shared<nn::Linear>(6, classes, true, gen)});
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("dmix_unc_" + std::to_string(getpid()) + "_" + name)).string();
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

}  // namespace

TEST_CASE("summarize_losses: mean, population std and CV by hand") {
  const LossSummary s = summarize_losses({1.0, 2.0, 3.0, 4.0});
  CHECK(s.mean == doctest::Approx(2.5).epsilon(1e-15));
  // variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
  CHECK(s.std == doctest::Approx(std::sqrt(1.25)).epsilon(1e-15));
  CHECK(s.cv == doctest::Approx(std::sqrt(1.25) / 2.5).epsilon(1e-15));

  const LossSummary t = summarize_losses({0.2, 0.7, 0.3});  // mean 0.4; squares 0.04 + 0.09 + 0.01
  CHECK(t.mean == doctest::Approx(0.4).epsilon(1e-14));
  CHECK(t.std == doctest::Approx(std::sqrt(0.14 / 3.0)).epsilon(1e-14));
  CHECK(t.cv == doctest::Approx(std::sqrt(0.14 / 3.0) / 0.4).epsilon(1e-14));

  const LossSummary flat = summarize_losses({0.5, 0.5, 0.5});
  CHECK(flat.std == 0.0);
  CHECK(flat.cv == 0.0);
  CHECK(summarize_losses({0.0, 0.0}).cv == 0.0);
  CHECK_THROWS_AS(summarize_losses({}), Error);
}

TEST_CASE("anchor_draws: the anchor keeps phi exactly; the others follow (1 - phi) Dir(alpha \\ alpha_i)") {
  for (int64_t K : {3, 4}) {
    CAPTURE(K);
    UncertaintyOptions o;
    o.k = K;
    o.draws = 20000;
    o.seed = 11;
    const double phi = o.anchor_share, a = o.alpha, a0 = a * static_cast<double>(K - 1);
    const std::vector<int64_t> pool = iota(50);
    const std::vector<AnchorDraw> draws = anchor_draws(pool, 7, 28, 28, o);
    REQUIRE(static_cast<int64_t>(draws.size()) == o.draws);

    // Closed form of Dir(a, ..., a) with K-1 components: E = 1/(K-1),
    // Var = a (a0 - a) / (a0^2 (a0 + 1)), Cov = -a^2 / (a0^2 (a0 + 1)).
    const double mean_ref = 1.0 / static_cast<double>(K - 1);
    const double var_ref = a * (a0 - a) / (a0 * a0 * (a0 + 1.0));
    const double cov_ref = -a * a / (a0 * a0 * (a0 + 1.0));
    std::vector<double> x1, x2;
    for (const AnchorDraw& d : draws) {
      REQUIRE(d.sources.size() == static_cast<size_t>(K));
      CHECK(d.shares[0] == phi);
      CHECK(d.sources[0] == 7);
      double total = 0.0;
      for (double s : d.shares) total += s;
      CHECK(total == doctest::Approx(1.0).epsilon(1e-12));
      for (int64_t k = 1; k < K; ++k) CHECK(d.sources[static_cast<size_t>(k)] != 7);  // partners are not the anchor
      x1.push_back(d.shares[1] / (1.0 - phi));
      x2.push_back(d.shares[2] / (1.0 - phi));
    }
    const double n = static_cast<double>(x1.size());
    double m1 = 0, m2 = 0;
    for (size_t i = 0; i < x1.size(); ++i) m1 += x1[i] / n, m2 += x2[i] / n;
    double v1 = 0, c12 = 0, fourth = 0;
    for (size_t i = 0; i < x1.size(); ++i) {
      v1 += (x1[i] - m1) * (x1[i] - m1) / n;
      c12 += (x1[i] - m1) * (x2[i] - m2) / n;
      fourth += std::pow(x1[i] - m1, 4) / n;
    }
    // Five standard errors of each estimate.
    CHECK(std::abs(m1 - mean_ref) < 5.0 * std::sqrt(var_ref / n));
    CHECK(std::abs(m2 - mean_ref) < 5.0 * std::sqrt(var_ref / n));
    CHECK(std::abs(v1 - var_ref) < 5.0 * std::sqrt((fourth - v1 * v1) / n));
    CHECK(std::abs(c12 - cov_ref) < 5.0 * std::sqrt(fourth / n));
  }
}

TEST_CASE("anchor_draws: draw m is a pure function of (seed, anchor); bad options are errors") {
  UncertaintyOptions o;
  o.seed = 5;
  const std::vector<int64_t> pool = iota(30);
  const std::vector<AnchorDraw> ten = anchor_draws(pool, 4, 16, 16, o);
  o.draws = 4;
  const std::vector<AnchorDraw> four = anchor_draws(pool, 4, 16, 16, o);
  for (size_t m = 0; m < four.size(); ++m) {
    CHECK(four[m].sources == ten[m].sources);
    CHECK(four[m].shares == ten[m].shares);
    CHECK(four[m].weights == ten[m].weights);
  }
  o.seed = 6;
  CHECK(anchor_draws(pool, 4, 16, 16, o)[0].shares != four[0].shares);

  UncertaintyOptions bad;
  bad.anchor_share = 1.0;
  CHECK_THROWS_WITH_AS(anchor_draws(pool, 0, 8, 8, bad), doctest::Contains("anchor_share"), Error);
  bad = UncertaintyOptions();
  bad.draws = 1;
  CHECK_THROWS_WITH_AS(anchor_draws(pool, 0, 8, 8, bad), doctest::Contains("draws"), Error);
  bad = UncertaintyOptions();
  bad.anchor_depth = 3;
  CHECK_THROWS_WITH_AS(anchor_draws(pool, 0, 8, 8, bad), doctest::Contains("anchor_depth"), Error);
  CHECK_THROWS_WITH_AS(anchor_draws({3}, 0, 8, 8, UncertaintyOptions()), doctest::Contains("at least 2"), Error);
}

TEST_CASE("anchor composites: label weights are the pixel fractions; the anchor's outer ring has a fixed size") {
  // Image i is filled with the value i + 1, so every composite pixel names its source.
  const int64_t H = 28, W = 28, N = 12;
  std::vector<std::vector<float>> plain(N);
  for (int64_t i = 0; i < N; ++i) plain[static_cast<size_t>(i)].assign(H * W, static_cast<float>(i + 1));
  for (int64_t depth : {0, 2}) {
    CAPTURE(depth);
    UncertaintyOptions o;
    o.anchor_depth = depth;
    o.draws = 40;
    o.seed = 2;
    const std::vector<AnchorDraw> draws = anchor_draws(iota(N), 5, H, W, o);
    std::vector<float> out(static_cast<size_t>(o.draws * H * W));
    render_composites(
        draws, [&](int64_t i) { return plain[static_cast<size_t>(i)].data(); }, 1, H, W, out.data());
    for (size_t m = 0; m < draws.size(); ++m) {
      const AnchorDraw& d = draws[m];
      CHECK(d.sources[static_cast<size_t>(depth)] == 5);
      CHECK(d.shares[static_cast<size_t>(depth)] == o.anchor_share);
      std::map<int64_t, double> weight_of, pixels_of;
      for (size_t k = 0; k < d.sources.size(); ++k) weight_of[d.sources[k]] += d.weights[k];
      for (int64_t p = 0; p < H * W; ++p)
        pixels_of[static_cast<int64_t>(out[m * H * W + p]) - 1] += 1.0 / static_cast<double>(H * W);
      for (auto& [source, w] : weight_of) CHECK(pixels_of[source] == doctest::Approx(w).epsilon(1e-12));
      if (depth == 0) {
        // Box 0 keeps side round(28 sqrt(2/3)) = 23, so the anchor's ring is always 784 - 529 pixels.
        CHECK(d.boxes[0].height == 23);
        CHECK(d.boxes[0].width == 23);
        CHECK(d.weights[0] == doctest::Approx(255.0 / 784.0).epsilon(1e-15));
      }
    }
  }
}

TEST_CASE("composite_loss: the soft-label cross-entropy, weights of a shared class added") {
  AnchorDraw d;
  d.sources = {0, 1, 2};
  d.weights = {0.5, 0.3, 0.2};
  const int64_t labels[3] = {2, 0, 2};  // the anchor and the last partner share class 2
  const float logits[3] = {1.0f, -0.5f, 2.0f};
  const double lse = std::log(std::exp(1.0) + std::exp(-0.5) + std::exp(2.0));
  const double expected = -(0.3 * (1.0 - lse) + 0.7 * (2.0 - lse));
  CHECK(composite_loss(d, labels, logits, 3) == doctest::Approx(expected).epsilon(1e-12));
}

TEST_CASE("score_uncertainty: every loss is the model's soft-label loss on its composite") {
  const Dataset data = synthetic(24, 8, 3);
  auto model = tiny_model(3, 1);
  model->train();
  UncertaintyOptions o;
  o.seed = 9;
  o.draws = 5;
  o.batch_size = 12;
  o.keep_losses = true;
  int64_t last_done = 0, calls = 0;
  o.progress = [&](int64_t done, int64_t total) {
    CHECK(total == 24);
    CHECK(done > last_done);
    last_done = done;
    ++calls;
  };
  const Pipeline pipe = normalizing();
  const std::vector<SampleUncertainty> scores = score_uncertainty(*model, data, pipe, {}, o);
  CHECK(model->training());  // the mode it came in
  CHECK(last_done == 24);
  CHECK(calls == 12);  // 12 composites a pass: 2 anchors of 5 draws
  REQUIRE(scores.size() == 24);

  // Recompute anchor 13 by hand: its composites, one forward each, the loss by formula.
  PreparedImages images(data, pipe);
  images.prepare(iota(24));
  const std::vector<AnchorDraw> draws = anchor_draws(iota(24), 13, 8, 8, o);
  model->eval();
  autograd::NoGradGuard no_grad;
  const int64_t* labels = data.labels.data<int64_t>();
  std::vector<double> losses;
  for (const AnchorDraw& d : draws) {
    Tensor x = Tensor::empty({1, 1, 8, 8});
    render_composites(
        {d}, [&](int64_t i) { return images.image(i); }, 1, 8, 8, x.data<float>());
    const std::vector<float> z = model->forward(x).to_vector<float>();
    double lse = 0.0;
    for (float v : z) lse += std::exp(static_cast<double>(v));
    lse = std::log(lse);
    double loss = 0.0;
    for (size_t k = 0; k < d.sources.size(); ++k)
      loss += d.weights[k] * (lse - z[static_cast<size_t>(labels[d.sources[k]])]);
    losses.push_back(loss);
  }
  const SampleUncertainty& u = scores[13];
  CHECK(u.index == 13);
  CHECK(u.label == 1);
  REQUIRE(u.losses.size() == 5);
  for (size_t m = 0; m < 5; ++m) CHECK(u.losses[m] == doctest::Approx(losses[m]).epsilon(1e-5));
  const LossSummary s = summarize_losses(u.losses);
  CHECK(u.mean == s.mean);
  CHECK(u.std == s.std);
  CHECK(u.cv == s.cv);
  CHECK(u.std > 0.0);
}

TEST_CASE("score_uncertainty: the same seed gives the same scores for any batch size and thread count") {
  const Dataset data = synthetic(30, 8, 3);
  auto model = tiny_model(3, 2);
  const int threads = kernels::cpu::num_threads();
  auto run = [&](int64_t batch, int nthreads, uint64_t seed) {
    kernels::cpu::set_num_threads(nthreads);
    UncertaintyOptions o;
    o.seed = seed;
    o.batch_size = batch;
    return score_uncertainty(*model, data, normalizing(), {}, o);
  };
  const auto a = run(10, 1, 4), b = run(300, 2, 4), c = run(7, 2, 4), other = run(10, 1, 5);
  kernels::cpu::set_num_threads(threads);
  bool any_difference = false;
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    for (const auto* v : {&b, &c}) {
      CHECK((*v)[i].index == a[i].index);
      CHECK((*v)[i].mean == doctest::Approx(a[i].mean).epsilon(1e-6));
      CHECK((*v)[i].std == doctest::Approx(a[i].std).epsilon(1e-5));
      CHECK((*v)[i].cv == doctest::Approx(a[i].cv).epsilon(1e-5));
    }
    any_difference = any_difference || other[i].cv != a[i].cv;
  }
  CHECK(any_difference);

  // Scoring a subset draws partners from the subset only.
  UncertaintyOptions o;
  o.keep_losses = true;
  const std::vector<int64_t> pool = {3, 4, 10, 17, 22};
  const auto sub = score_uncertainty(*model, data, normalizing(), pool, o);
  REQUIRE(sub.size() == 5);
  for (size_t i = 0; i < pool.size(); ++i) CHECK(sub[i].index == pool[i]);
  for (const AnchorDraw& d : anchor_draws(pool, 2, 8, 8, o))
    for (int64_t s : d.sources) CHECK(std::find(pool.begin(), pool.end(), s) != pool.end());

  Pipeline random_crop = normalizing();
  random_crop.hflip = true;
  CHECK_THROWS_WITH_AS(score_uncertainty(*model, data, random_crop, {}, o), doctest::Contains("deterministic"), Error);
}

TEST_CASE("per_class_count and select_per_class: exact counts ceil(t N), never zero, for both rules") {
  CHECK(per_class_count(0.07, 100) == 7);
  CHECK(per_class_count(0.3, 10) == 3);
  CHECK(per_class_count(0.1, 1) == 1);
  CHECK(per_class_count(0.1, 7) == 1);
  CHECK(per_class_count(0.5, 7) == 4);
  CHECK(per_class_count(0.05, 6000) == 300);
  CHECK(per_class_count(1.0, 9) == 9);
  CHECK_THROWS_AS(per_class_count(0.0, 9), Error);
  CHECK_THROWS_AS(per_class_count(1.5, 9), Error);

  // Classes of 1, 2, 7 and 10 images; the score of image i is i (class 3 reversed: -i).
  std::vector<int64_t> indices, labels;
  std::vector<double> scores;
  auto add = [&](int64_t label, int64_t count) {
    for (int64_t j = 0; j < count; ++j) {
      const int64_t i = static_cast<int64_t>(indices.size()) * 3 + 1;  // sparse dataset indices
      indices.push_back(i);
      labels.push_back(label);
      scores.push_back(label == 3 ? -static_cast<double>(i) : static_cast<double>(i));
    }
  };
  add(0, 1);
  add(1, 2);
  add(2, 7);
  add(3, 10);
  for (SelectionRule rule : {SelectionRule::Top, SelectionRule::Interval})
    for (double t : {0.05, 0.1, 0.3, 0.5, 1.0}) {
      CAPTURE(t);
      const std::vector<int64_t> chosen = select_per_class(indices, labels, scores, t, rule);
      CHECK(std::is_sorted(chosen.begin(), chosen.end()));
      std::map<int64_t, int64_t> count;
      for (int64_t i : chosen) count[labels[static_cast<size_t>((i - 1) / 3)]]++;
      CHECK(count[0] == per_class_count(t, 1));
      CHECK(count[1] == per_class_count(t, 2));
      CHECK(count[2] == per_class_count(t, 7));
      CHECK(count[3] == per_class_count(t, 10));
    }

  // Class 3 at t = 0.3: the ranking (highest score first) is its dataset indices 31, 34, ..., 58.
  auto class3 = [&](SelectionRule rule) {
    std::vector<int64_t> out;
    for (int64_t i : select_per_class(indices, labels, scores, 0.3, rule))
      if (labels[static_cast<size_t>((i - 1) / 3)] == 3) out.push_back(i);
    return out;
  };
  CHECK(class3(SelectionRule::Top) == std::vector<int64_t>{31, 34, 37});
  CHECK(class3(SelectionRule::Interval) == std::vector<int64_t>{31, 40, 49});  // ranks 0, 3, 6
  // Class 2 (7 images, dataset indices 10 .. 28, highest first) at t = 0.5: the top 4.
  std::vector<int64_t> top2;
  for (int64_t i : select_per_class(indices, labels, scores, 0.5, SelectionRule::Top))
    if (labels[static_cast<size_t>((i - 1) / 3)] == 2) top2.push_back(i);
  CHECK(top2 == std::vector<int64_t>{19, 22, 25, 28});
}

TEST_CASE("measure_scores, random_scores and the measure names") {
  std::vector<SampleUncertainty> s(2);
  s[0].mean = 1.0, s[0].std = 0.2, s[0].cv = 0.2;
  s[1].mean = 2.0, s[1].std = 0.1, s[1].cv = 0.05;
  CHECK(measure_scores(SubsetMeasure::Cv, s) == std::vector<double>{0.2, 0.05});
  CHECK(measure_scores(SubsetMeasure::MeanLow, s) == std::vector<double>{-1.0, -2.0});
  CHECK(measure_scores(SubsetMeasure::MeanHigh, s) == std::vector<double>{1.0, 2.0});
  CHECK(measure_scores(SubsetMeasure::Std, s) == std::vector<double>{0.2, 0.1});
  CHECK_THROWS_AS(measure_scores(SubsetMeasure::Random, s), Error);

  const std::vector<double> r = random_scores({4, 9, 100}, 3);
  CHECK(random_scores({100, 4}, 3) == std::vector<double>{r[2], r[0]});  // keyed by index, not position
  CHECK(random_scores({4}, 4)[0] != r[0]);
  for (double x : r) CHECK((x >= 0.0 && x < 1.0));

  for (SubsetMeasure m : {SubsetMeasure::Cv, SubsetMeasure::MeanLow, SubsetMeasure::MeanHigh, SubsetMeasure::Std,
                          SubsetMeasure::Random, SubsetMeasure::McDropout, SubsetMeasure::KCenter})
    CHECK(parse_subset_measure(subset_measure_name(m)) == m);
  CHECK(parse_subset_measure("hard") == SubsetMeasure::MeanHigh);
  CHECK(parse_subset_measure("KCenter") == SubsetMeasure::KCenter);
  CHECK(parse_selection_rule("interval") == SelectionRule::Interval);
  CHECK_THROWS_WITH_AS(parse_subset_measure("entropy"), doctest::Contains("mc-dropout"), Error);
  CHECK_THROWS_AS(parse_selection_rule("bottom"), Error);
}

TEST_CASE("kcenter_greedy: the brute-force greedy's picks on toy 2-D sets") {
  // Points on a line 0, 1, 2, 10 from 0: then 10, then 2 (distance 2 > 1), then 1.
  const std::vector<float> line = {0, 0, 1, 0, 2, 0, 10, 0};
  CHECK(kcenter_greedy(line.data(), 4, 2, 4, 0) == std::vector<int64_t>{0, 3, 2, 1});

  // 60 pseudo-random points against a reference that recomputes every min distance.
  std::vector<float> pts;
  uint64_t state = 12345;
  for (int i = 0; i < 120; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    pts.push_back(static_cast<float>((state >> 40) % 1000) / 100.0f);
  }
  auto brute = [&](int64_t budget, int64_t first) {
    std::vector<int64_t> chosen{first};
    while (static_cast<int64_t>(chosen.size()) < budget) {
      int64_t best = -1;
      double best_d = -1;
      for (int64_t i = 0; i < 60; ++i) {
        double d = INFINITY;
        for (int64_t c : chosen)
          d = std::min(d, std::hypot(double(pts[i * 2]) - pts[c * 2], double(pts[i * 2 + 1]) - pts[c * 2 + 1]));
        if (d > best_d) best_d = d, best = i;
      }
      chosen.push_back(best);
    }
    return chosen;
  };
  CHECK(kcenter_greedy(pts.data(), 60, 2, 12, 7) == brute(12, 7));
  CHECK(kcenter_greedy(pts.data(), 60, 2, 60, 0) == brute(60, 0));
  CHECK_THROWS_AS(kcenter_greedy(pts.data(), 60, 2, 61, 0), Error);

  // Per class: exact counts, and each class's picks are the greedy picks within the class.
  std::vector<int64_t> indices = iota(60), labels;
  for (int64_t i = 0; i < 60; ++i) labels.push_back(i < 10 ? 0 : 1);
  const std::vector<int64_t> chosen = select_kcenter_per_class(indices, labels, pts.data(), 2, 0.25, 1);
  CHECK(std::count_if(chosen.begin(), chosen.end(), [](int64_t i) { return i < 10; }) == 3);
  CHECK(std::count_if(chosen.begin(), chosen.end(), [](int64_t i) { return i >= 10; }) == 13);
  CHECK(select_kcenter_per_class(indices, labels, pts.data(), 2, 0.25, 1) == chosen);
}

TEST_CASE("mc_dropout_entropy: dropout layers on, batch norm off; head dropout for models without any") {
  const Dataset data = synthetic(20, 4, 4);
  const Pipeline pipe = normalizing();
  Generator gen(8);
  auto build = [&](double p) {
    return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(16, 12, true, gen), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Dropout>(p), std::make_shared<nn::Linear>(12, 4, true, gen)});
  };
  // p = 0: every pass is the eval-mode network, so the score is the entropy of its softmax.
  auto plain = build(0.0);
  McDropoutOptions o;
  o.passes = 3;
  o.batch_size = 6;
  const std::vector<double> h0 = mc_dropout_entropy(*plain, data, pipe, {}, o);
  {
    PreparedImages images(data, pipe);
    autograd::NoGradGuard no_grad;
    plain->eval();
    const Tensor z = plain->forward(images.batch(iota(20)));
    const std::vector<float> zv = z.to_vector<float>();
    for (int64_t i = 0; i < 20; ++i) {
      double total = 0, h = 0;
      for (int64_t c = 0; c < 4; ++c) total += std::exp(double(zv[i * 4 + c]));
      for (int64_t c = 0; c < 4; ++c) {
        const double p = std::exp(double(zv[i * 4 + c])) / total;
        h -= p * std::log(p);
      }
      CHECK(h0[static_cast<size_t>(i)] == doctest::Approx(h).epsilon(1e-6));
    }
  }

  // p = 0.5: reproducible for a seed, different for another, default generator left as it was,
  // the model left in training mode as it came.
  auto dropping = build(0.5);
  dropping->train();
  const uint64_t stream_before = default_generator().stream(), seed_before = default_generator().seed();
  o.seed = 1;
  const std::vector<double> h1 = mc_dropout_entropy(*dropping, data, pipe, {}, o);
  CHECK(default_generator().stream() == stream_before);
  CHECK(default_generator().seed() == seed_before);
  CHECK(dropping->training());
  CHECK(mc_dropout_entropy(*dropping, data, pipe, {}, o) == h1);
  o.seed = 2;
  CHECK(mc_dropout_entropy(*dropping, data, pipe, {}, o) != h1);
  for (double h : h1) CHECK((h >= 0.0 && h <= std::log(4.0) + 1e-12));
  o.head_dropout = 0.5;
  CHECK_THROWS_WITH_AS(mc_dropout_entropy(*dropping, data, pipe, {}, o), doctest::Contains("Dropout layers of its own"),
                       Error);

  // Without dropout layers: an error naming the way out, or head dropout when asked.
  auto none = tiny_model(4, 3);
  o.head_dropout = 0.0;
  CHECK_THROWS_WITH_AS(mc_dropout_entropy(*none, data, pipe, {}, o), doctest::Contains("head_dropout"), Error);
  o.head_dropout = 0.5;
  o.passes = 8;
  const std::vector<double> head = mc_dropout_entropy(*none, data, pipe, {}, o);
  o.batch_size = 20;
  const std::vector<double> head_one_batch = mc_dropout_entropy(*none, data, pipe, {}, o);
  for (size_t i = 0; i < head.size(); ++i) {
    CHECK(head[i] == doctest::Approx(head_one_batch[i]).epsilon(1e-6));  // masks keyed per image
    CHECK((head[i] >= 0.0 && head[i] <= std::log(4.0) + 1e-12));
  }
}

TEST_CASE("subsample end to end: every measure gives exact per-class counts") {
  const Dataset data = synthetic(40, 8, 4);  // 10 images per class
  auto model = tiny_model(4, 6);
  for (SubsetMeasure m : {SubsetMeasure::Cv, SubsetMeasure::MeanLow, SubsetMeasure::MeanHigh, SubsetMeasure::Std,
                          SubsetMeasure::Random, SubsetMeasure::McDropout, SubsetMeasure::KCenter}) {
    CAPTURE(subset_measure_name(m));
    SubsampleOptions o;
    o.measure = m;
    o.ratio = 0.25;
    o.mc_dropout.head_dropout = 0.3;
    const SubsampleResult r = subsample(*model, data, normalizing(), {}, o);
    REQUIRE(r.subset.size() == 12);  // ceil(2.5) = 3 per class
    std::map<int64_t, int> count;
    for (int64_t i : r.subset) count[i % 4]++;
    for (int64_t c = 0; c < 4; ++c) CHECK(count[c] == 3);
    CHECK(r.scores.size() == (measure_uses_mixing(m) ? 40u : 0u));
    if (m == SubsetMeasure::Cv) {
      // The top 3 CVs of class 0 are chosen.
      std::vector<std::pair<double, int64_t>> class0;
      for (const SampleUncertainty& s : r.scores)
        if (s.label == 0) class0.push_back({-s.cv, s.index});
      std::sort(class0.begin(), class0.end());
      std::vector<int64_t> expected = {class0[0].second, class0[1].second, class0[2].second}, got;
      std::sort(expected.begin(), expected.end());
      for (int64_t i : r.subset)
        if (i % 4 == 0) got.push_back(i);
      CHECK(got == expected);
    }
  }
  SubsampleOptions bad;
  bad.measure = SubsetMeasure::KCenter;
  bad.rule = SelectionRule::Interval;
  CHECK_THROWS_WITH_AS(subsample(*model, data, normalizing(), {}, bad), doctest::Contains("interval"), Error);
}

TEST_CASE("subset and scores files round-trip") {
  const std::string subset_path = temp_path("subset.txt"), scores_path = temp_path("scores.json");
  const std::vector<int64_t> subset = {0, 5, 17, 42, 99};
  SubsetFileInfo info;
  info.measure = "cv";
  info.rule = "top";
  info.ratio = 0.05;
  info.seed = 7;
  info.checkpoint = "runs/full.safetensors";
  info.dataset = "fashion-mnist";
  info.dataset_size = 100;
  write_subset_file(subset_path, subset, info);
  CHECK(load_subset_file(subset_path, 100) == subset);
  std::ifstream in(subset_path);
  std::string header;
  std::getline(in, header);
  CHECK(header.rfind("# dmix subset:", 0) == 0);
  for (const char* part :
       {"measure cv", "rule top", "ratio 0.05", "seed 7", "runs/full.safetensors", "fashion-mnist", "100 images"})
    CHECK(header.find(part) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(subset_path + ".tmp"));

  std::vector<SampleUncertainty> scores(2);
  scores[0] = {3, 1, 0.5, 0.25, 0.5, {}};
  scores[1] = {8, 0, 1.0 / 3.0, 0.0, 0.0, {0.1, 0.2}};
  UncertaintyOptions o;
  o.seed = 7;
  write_scores_json(scores_path, scores, o, "a \"quoted\" path", "fashion-mnist");
  std::ifstream json_in(scores_path);
  const nlohmann::json j = nlohmann::json::parse(json_in);
  CHECK(j["draws"] == 10);
  CHECK(j["seed"] == 7);
  CHECK(j["checkpoint"] == "a \"quoted\" path");
  CHECK(j["anchor_share"].get<double>() == 1.0 / 3.0);
  REQUIRE(j["images"].size() == 2);
  CHECK(j["images"][0]["index"] == 3);
  CHECK(j["images"][0]["class"] == 1);
  CHECK(j["images"][0]["std"].get<double>() == 0.25);
  CHECK(j["images"][1]["mean"].get<double>() == 1.0 / 3.0);
  CHECK(j["images"][1]["losses"].size() == 2);
  CHECK_FALSE(j["images"][0].contains("losses"));

  CHECK_THROWS_WITH_AS(write_subset_file("/nonexistent-dir/x/subset.txt", subset, info),
                       doctest::Contains("cannot write"), Error);
  std::filesystem::remove(subset_path);
  std::filesystem::remove(scores_path);
}
