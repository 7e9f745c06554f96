// HessianOperator on a small CNN with batch norm: products against central differences of
// the gradient in f64 (eval and train mode), symmetry and linearity, the cached
// single-batch graph against fresh products, full-dataset mode against the size-weighted
// mean of per-batch products, parameter selection, the model left as found, bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "augment/loader.h"
#include "probe/hvp.h"
#include "tests/probe/fixtures.h"

using namespace dmix;
using namespace dmix::probe;
using namespace dmix::probe::testing;

namespace {

struct CnnFixture {
  TinyCnn model;
  Tensor x, y;
  CnnFixture() {
    to_f64(model);
    Generator g(31);
    x = g.normal({4, 2, 6, 6}, 0, 1, DType::f64);
    y = Tensor::from_vector(std::vector<int64_t>{0, 2, 1, 2}, {4});
  }
};

// The images of a loader are f32; the f64 model wants f64.
Tensor f64_loss(nn::Module& model, const augment::Batch& b) {
  return cross_entropy(model(b.images.to(DType::f64)), b.labels);
}

std::vector<Tensor> snapshot(const nn::NamedTensors& tensors) {
  std::vector<Tensor> out;
  for (const auto& [name, t] : tensors) out.push_back(t.detach().clone());
  return out;
}

// dL/dtheta at theta = flat, as one flat vector, in the given mode; puts the parameters and
// buffers back afterwards.
Tensor gradient_at(nn::Module& model, const HessianOperator& h, const Tensor& flat, const Tensor& x, const Tensor& y,
                   bool train) {
  const TensorList& params = h.parameters();
  const std::vector<Tensor> saved = snapshot(model.named_buffers());
  TensorList original;
  const TensorList values = h.unflatten(flat);
  {
    autograd::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      original.push_back(params[i].detach().clone());
      params[i].copy_(values[i]);
    }
  }
  model.train(train);
  const TensorList g = autograd::grad({cross_entropy(model(x), y)}, params);
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(original[i]);
  const nn::NamedTensors buffers = model.named_buffers();
  for (size_t i = 0; i < buffers.size(); ++i) buffers[i].second.copy_(saved[i]);
  return h.flatten(g);
}

double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst / std::max(1e-12, max_abs(b));
}

}  // namespace

TEST_CASE("hvp: a batch-norm CNN's products match central differences of its gradient (f64)") {
  for (bool train : {false, true}) {
    CAPTURE(train);
    CnnFixture f;
    FixedBatch batch(f.x, f.y);
    HessianOptions o;
    o.train_mode = train;
    Tensor hv, v, theta;
    HessianOperator h(f.model, batch, o);
    CHECK(h.size() == 191);
    Generator g(41);
    v = g.normal({h.size()}, 0, 1, DType::f64);
    hv = h.apply(v);
    theta = h.flatten(h.parameters());
    const double e = 1e-5;
    const Tensor plus = gradient_at(f.model, h, theta + v * e, f.x, f.y, train);
    const Tensor minus = gradient_at(f.model, h, theta - v * e, f.x, f.y, train);
    const std::vector<double> numeric = host((plus - minus) / (2 * e));
    CHECK(max_abs(numeric) > 1e-2);  // real curvature, not a vacuous match
    CHECK(relative_error(host(hv), numeric) < 1e-6);
  }
}

TEST_CASE("hvp: symmetric, linear, and the cached graph agrees with fresh products") {
  CnnFixture f;
  FixedBatch batch(f.x, f.y);
  HessianOperator h(f.model, batch);
  Generator g(42);
  const Tensor u = g.normal({h.size()}, 0, 1, DType::f64), v = g.normal({h.size()}, 0, 1, DType::f64);
  const Tensor hu = h.apply(u), hv = h.apply(v);
  CHECK(dot(u, hv) == doctest::Approx(dot(v, hu)).epsilon(1e-10));
  const std::vector<double> combined = host(h.apply(u * 2.0 + v)), separate = host(hu * 2.0 + hv);
  CHECK(relative_error(combined, separate) < 1e-10);
  CHECK(h.hvp_count() == 3);

  // The engine's own hvp() rebuilds the graph each time; the operator reuses one.
  f.model.eval();
  const TensorList fresh =
      autograd::hvp([&] { return cross_entropy(f.model(f.x), f.y); }, h.parameters(), h.unflatten(v));
  CHECK(relative_error(host(hv), host(h.flatten(fresh))) < 1e-12);
  CHECK(relative_error(host(h.apply(v)), host(hv)) == 0.0);
}

TEST_CASE("hvp: full-dataset mode is the size-weighted mean of the batches' products") {
  CnnFixture f;
  augment::Dataset data;
  Generator g(43);
  std::vector<uint8_t> pixels(10 * 2 * 6 * 6);
  const std::vector<int64_t> drawn = g.randint({10 * 2 * 6 * 6}, 0, 256).to_vector<int64_t>();
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(drawn[i]);
  data.images = Tensor::from_vector(pixels, {10, 2, 6, 6});
  data.labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 1, 2, 1}, {10});
  data.num_classes = 3;
  data.name = "synthetic";
  augment::LoaderOptions lo;
  lo.batch_size = 4;  // batches of 4, 4 and 2
  lo.shuffle = false;
  lo.num_workers = 0;
  augment::DataLoader loader(data, lo);
  LoaderBatches all(loader);
  HessianOptions o;
  o.loss = f64_loss;
  HessianOperator h(f.model, all, o);
  const Tensor v = g.normal({h.size()}, 0, 1, DType::f64);
  const std::vector<double> full = host(h.apply(v));
  CHECK(h.hvp_count() == 1);

  std::vector<double> weighted(full.size(), 0.0);
  double loss = 0;
  int batches = 0;
  loader.start_epoch(0);
  for (augment::Batch b; loader.next(b); ++batches) {
    FixedBatch one(b.images, b.labels);
    HessianOperator hb(f.model, one, o);
    const std::vector<double> part = host(hb.apply(v));
    const double n = double(b.images.size(0));
    for (size_t i = 0; i < part.size(); ++i) weighted[i] += n * part[i] / 10.0;
    loss += n * hb.loss() / 10.0;
  }
  CHECK(batches == 3);
  CHECK(relative_error(full, weighted) < 1e-12);
  CHECK(h.loss() == doctest::Approx(loss).epsilon(1e-12));
}

TEST_CASE("hvp: train mode uses batch statistics and leaves the model as it was") {
  CnnFixture f;
  f.model.eval();
  const std::vector<Tensor> before = snapshot(f.model.named_buffers());
  FixedBatch batch(f.x, f.y);
  Generator g(44);
  std::vector<double> eval_hv, train_hv;
  {
    HessianOperator h(f.model, batch);
    const Tensor v = g.normal({h.size()}, 0, 1, DType::f64);
    eval_hv = host(h.apply(v));
    HessianOptions o;
    o.train_mode = true;
    HessianOperator t(f.model, batch, o);
    CHECK(f.model.training());
    train_hv = host(t.apply(v));
    t.loss();
  }
  CHECK(!f.model.training());
  CHECK(relative_error(train_hv, eval_hv) > 1e-3);
  const nn::NamedTensors after = f.model.named_buffers();
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    CAPTURE(after[i].first);
    CHECK(relative_error(host(after[i].second), host(before[i])) == 0.0);
  }
}

TEST_CASE("hvp: parameters by name prefix give the Hessian's block") {
  CnnFixture f;
  FixedBatch batch(f.x, f.y);
  HessianOptions o;
  o.parameters = {"bn1", "fc.weight"};
  HessianOperator block(f.model, batch, o);
  CHECK(block.parameter_names() == std::vector<std::string>{"bn1.weight", "bn1.bias", "fc.weight"});
  CHECK(block.size() == 3 + 3 + 12);

  HessianOperator full(f.model, batch);
  Generator g(45);
  const Tensor vb = g.normal({block.size()}, 0, 1, DType::f64);
  // The same vector inside the full parameter vector, zero elsewhere.
  TensorList parts = full.unflatten(Tensor::zeros({full.size()}, DType::f64));
  const std::map<std::string, Tensor> named = block.named(vb);
  for (size_t i = 0; i < parts.size(); ++i) {
    auto it = named.find(full.parameter_names()[i]);
    if (it != named.end()) parts[i] = it->second;
  }
  const std::map<std::string, Tensor> hv_full = full.named(full.apply(full.flatten(parts)));
  const std::map<std::string, Tensor> hv_block = block.named(block.apply(vb));
  for (const auto& entry : hv_block) {
    CAPTURE(entry.first);
    CHECK(relative_error(host(entry.second), host(hv_full.at(entry.first))) < 1e-12);
  }

  o.parameters = {"conv"};  // a prefix names whole components: "conv" is not "conv1"
  CHECK_THROWS_WITH_AS(HessianOperator(f.model, batch, o),
                       doctest::Contains("no parameter that requires grad is named 'conv'"), Error);
  CHECK(name_under_prefix("layer1.0.conv1.weight", "layer1.0"));
  CHECK(!name_under_prefix("layer1.05.weight", "layer1.0"));
}

TEST_CASE("hvp: the default loss on an f32 model, on the model's device") {
  TinyCnn model;
  Generator g(46);
  FixedBatch batch(g.normal({3, 2, 5, 5}), Tensor::from_vector(std::vector<int64_t>{2, 0, 1}, {3}));
  HessianOperator h(model, batch);
  const SymmetricOperator op = h.as_operator();
  CHECK(op.dtype == DType::f32);
  const Tensor u = gaussian_vector(op, g), v = gaussian_vector(op, g);
  CHECK(dot(u, op.apply(v)) == doctest::Approx(dot(v, op.apply(u))).epsilon(1e-4));
  CHECK(std::isfinite(h.loss()));
}

TEST_CASE("hvp: bad input is a one-line error") {
  CnnFixture f;
  auto one_line = [](const std::function<void()>& call, const std::string& expected) {
    try {
      call();
      FAIL("no error for ", expected);
    } catch (const Error& e) {
      const std::string what = e.what();
      CHECK_MESSAGE(what.find(expected) != std::string::npos, what);
      CHECK(what.find('\n') == std::string::npos);
    }
  };
  one_line(
      [&] {
        FixedBatch(f.x.reshape({4, -1}).to(DType::f64), Tensor::zeros({3}, DType::i64));
      },
      "differ in batch size");
  one_line(
      [&] {
        FixedBatch(Tensor::zeros({0, 2, 6, 6}, DType::f64), Tensor::zeros({0}, DType::i64));
      },
      "the batch is empty");

  struct Empty : BatchSource {
    void start() override {}
    bool next(augment::Batch&) override { return false; }
  } empty;
  HessianOperator none(f.model, empty);
  one_line([&] { none.apply(Tensor::zeros({none.size()}, DType::f64)); }, "yields no samples");
  one_line([&] { none.loss(); }, "yields no samples");

  FixedBatch batch(f.x, f.y);
  HessianOperator h(f.model, batch);
  one_line([&] { h.apply(Tensor::zeros({5}, DType::f64)); }, "expected a flat vector of 191 elements");
  one_line([&] { h.apply(Tensor::zeros({191}, DType::f32)); }, "does not match the parameters' dtype");

  FixedBatch nan_batch(f.x * std::numeric_limits<double>::quiet_NaN(), f.y);
  HessianOperator nan_h(f.model, nan_batch);
  one_line([&] { nan_h.apply(Tensor::zeros({191}, DType::f64)); }, "(the Hessian of a non-finite loss is meaningless)");
}
