// Loss landscapes: the centre of every grid is the plain evaluation to the last bit (one
// batch and a whole loader); filter-normalised directions have each weight filter's norm;
// results are reproducible for a seed; the weights come back bit-identical, also after an
// error; interpolation's end points are each checkpoint's own loss; on linear least squares,
// where the loss along any line is an exact quadratic, surfaces, interpolation and the top-2
// eigen directions match their closed forms; bad input is one clear error.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "augment/loader.h"
#include "nn/metrics.h"
#include "probe/landscape.h"
#include "tests/probe/fixtures.h"

using namespace dmix;
using namespace dmix::probe;
using namespace dmix::probe::testing;

namespace {

struct CnnFixture {
  TinyCnn model;
  Tensor x, y;
  explicit CnnFixture(uint64_t seed = 21) : model(seed) {
    to_f64(model);
    Generator g(31);
    x = g.normal({6, 2, 6, 6}, 0, 1, DType::f64);
    y = Tensor::from_vector(std::vector<int64_t>{0, 2, 1, 2, 0, 1}, {6});
  }
};

// The model's whole state, detached copies, to compare bit for bit.
std::vector<std::vector<double>> state_of(const nn::Module& model) {
  std::vector<std::vector<double>> out;
  for (const auto& [name, t] : model.state_dict())
    out.push_back(t.dtype() == DType::i64 ? std::vector<double>() : host(t));
  return out;
}

double plain_loss(nn::Module& model, const Tensor& x, const Tensor& y) {
  autograd::NoGradGuard no_grad;
  model.eval();
  const double loss = cross_entropy(model(x), y).item();
  model.train();
  return loss;
}

// The loss of linear least squares, 0.5 * mean((x w + b - t)^2), whose Hessian is
// (1/N) X~^T X~ with X~ = [x, 1] and whose loss along any line is an exact quadratic.
Tensor squared_error(nn::Module& model, const augment::Batch& b) {
  const Tensor r = model(b.images) - b.labels;
  return mean(r * r) * 0.5;
}
BatchScore squared_error_score(nn::Module& model, const augment::Batch& b) { return {squared_error(model, b).item()}; }

// y = x w + b on 8 samples whose 3 feature columns are scaled rows of an 8x8 Hadamard matrix
// (orthogonal to each other and to the bias column of ones), so X~^T X~ / N is diagonal:
// the Hessian's eigenpairs are (c_j^2, feature j) and (1, bias), here 9, 4, 1, 0.25.
struct LeastSquares {
  nn::Linear model;
  Tensor x, t;
  LeastSquares() : model(3, 1, true, gen()) {
    to_f64(model);
    const double c[3] = {3.0, 2.0, 0.5};
    const int rows[3] = {1, 2, 4};  // Sylvester Hadamard entry (i, j) = (-1)^popcount(i & j)
    std::vector<double> xs(24), ts(8);
    Generator g(5);
    const std::vector<double> noise = g.normal({8}, 0, 1, DType::f64).to_vector<double>();
    for (int i = 0; i < 8; ++i) {
      for (int j = 0; j < 3; ++j) xs[i * 3 + j] = c[j] * (__builtin_popcount(i & rows[j]) % 2 ? -1.0 : 1.0);
      ts[i] = 0.5 * xs[i * 3] - xs[i * 3 + 1] + noise[i];
    }
    x = Tensor::from_vector(xs, {8, 3});
    t = Tensor::from_vector(ts, {8, 1});
  }
  static Generator& gen() {
    static Generator g(17);
    return g;
  }
  // The residual and the change of the prediction along (dw, db), per sample.
  std::vector<double> residual() {
    autograd::NoGradGuard no_grad;
    return host(model(x) - t);
  }
  std::vector<double> along(const Tensor& dw, const Tensor& db) {
    autograd::NoGradGuard no_grad;
    const std::vector<double> xs = host(x), w = host(dw), b = host(db);
    std::vector<double> out(8);
    for (int i = 0; i < 8; ++i) out[i] = xs[i * 3] * w[0] + xs[i * 3 + 1] * w[1] + xs[i * 3 + 2] * w[2] + b[0];
    return out;
  }
};

double half_mean_square(const std::vector<double>& r) {
  double s = 0;
  for (double v : r) s += v * v;
  return 0.5 * s / double(r.size());
}

}  // namespace

TEST_CASE("landscape: sigma = 0 and the surface's centre are the plain evaluation loss, exactly") {
  CnnFixture f;
  FixedBatch batch(f.x, f.y);
  const double plain = plain_loss(f.model, f.x, f.y);
  SigmaOptions so;
  so.draws = 2;
  const SigmaCurve curve = sigma_curve(f.model, batch, so);
  REQUIRE(curve.sigmas.size() == 7);
  CHECK(curve.sigmas.front() == 0.0);
  CHECK(curve.sigmas.back() == doctest::Approx(0.012));
  CHECK(curve.loss_mean[0] == plain);
  CHECK(curve.loss_std[0] == 0.0);
  CHECK(curve.loss_draws[0].size() == 1);
  CHECK(curve.loss_draws[1].size() == 2);
  CHECK(curve.center.loss == plain);
  CHECK(curve.evaluations == 1 + 6 * 2);
  CHECK(curve.parameters == 191);
  // The accuracy is the share of top-1 hits.
  {
    autograd::NoGradGuard no_grad;
    f.model.eval();
    CHECK(curve.center.accuracy == double(nn::count_topk_correct(f.model(f.x), f.y, 1)) / 6.0);
    f.model.train();
  }
  for (double loss : curve.loss_mean) CHECK(std::isfinite(loss));
  CHECK(plain == HessianOperator(f.model, batch).loss());

  SurfaceOptions o;
  o.x = linspace(-0.2, 0.2, 5);
  o.y = linspace(-0.1, 0.1, 3);
  CHECK(o.x[2] == 0.0);
  for (const DirectionPair& d : {random_directions(f.model, {}), eigen_directions(f.model, batch)}) {
    const Surface s = surface_2d(f.model, batch, d, o);
    REQUIRE(s.loss.size() == 15);
    CHECK(s.loss[1 * 5 + 2] == plain);
    CHECK(s.center.loss == plain);
    CHECK(s.loss[0] != plain);
    CHECK(s.evaluations == 16);
  }
}

TEST_CASE("landscape: over a whole loader the centre is HessianOperator::loss(), the size-weighted mean") {
  augment::Dataset data;
  Generator g(43);
  const std::vector<int64_t> drawn = g.randint({10 * 2 * 6 * 6}, 0, 256).to_vector<int64_t>();
  data.images = Tensor::from_vector(std::vector<uint8_t>(drawn.begin(), drawn.end()), {10, 2, 6, 6});
  data.labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 1, 2, 1}, {10});
  data.num_classes = 3;
  data.name = "synthetic";
  augment::LoaderOptions lo;
  lo.batch_size = 4;  // batches of 4, 4 and 2
  lo.shuffle = false;
  lo.num_workers = 0;
  augment::DataLoader loader(data, lo);
  LoaderBatches all(loader);
  CnnFixture f;
  HessianOptions ho;
  ho.loss = [](nn::Module& m, const augment::Batch& b) { return cross_entropy(m(b.images.to(DType::f64)), b.labels); };
  const ScoreFn score = [](nn::Module& m, const augment::Batch& b) {
    augment::Batch b64 = b;
    b64.images = b.images.to(DType::f64);
    return classification_batch_score(m, b64);
  };
  const double expected = HessianOperator(f.model, all, ho).loss();
  SigmaOptions so;
  so.sigmas = {0.0, 0.01};
  so.draws = 1;
  so.score = score;
  CHECK(sigma_curve(f.model, all, so).loss_mean[0] == expected);
  SurfaceOptions o;
  o.x = o.y = linspace(-1, 1, 3);
  o.score = score;
  CHECK(surface_2d(f.model, all, random_directions(f.model, {}), o).loss[4] == expected);
}

TEST_CASE("landscape: filter-normalised directions have each weight filter's norm, and zero on 1-D parameters") {
  CnnFixture f;
  RandomDirectionOptions o;
  o.seed = 9;
  const DirectionPair d = random_directions(f.model, o);
  const NamedParameters p = selected_parameters(f.model, {});
  REQUIRE(d.names == p.names);
  int filters = 0;
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    const Tensor& w = p.tensors[i];
    CAPTURE(d.names[i]);
    for (const TensorList* dir : {&d.d1, &d.d2}) {
      const std::vector<double> dv = host((*dir)[i]), wv = host(w);
      if (w.dim() < 2) {
        CHECK(max_abs(dv) == 0.0);
        continue;
      }
      const int64_t rows = w.size(0), per = w.numel() / rows;
      for (int64_t r = 0; r < rows; ++r, ++filters) {
        double dn = 0, wn = 0;
        for (int64_t k = 0; k < per; ++k) {
          dn += dv[r * per + k] * dv[r * per + k];
          wn += wv[r * per + k] * wv[r * per + k];
        }
        CHECK(std::sqrt(dn) == doctest::Approx(std::sqrt(wn)).epsilon(1e-9));
      }
    }
  }
  CHECK(filters == 2 * (3 + 4 + 3));  // conv1, conv2 and fc rows, in both directions
  // The two directions differ, and without normalisation the draws are raw N(0, 1), 1-D included.
  CHECK(host(d.d1[0]) != host(d.d2[0]));
  o.filter_normalize = false;
  const DirectionPair raw = random_directions(f.model, o);
  CHECK(max_abs(host(raw.d1[1])) > 0);  // conv1.bias
  // A selection by prefix draws only those parameters.
  o.parameters = {"fc"};
  CHECK(random_directions(f.model, o).names == std::vector<std::string>{"fc.weight", "fc.bias"});
}

TEST_CASE("landscape: results are reproducible for a seed and change with it") {
  CnnFixture f;
  FixedBatch batch(f.x, f.y);
  SigmaOptions so;
  so.sigmas = {0.0, 0.05, 0.1};
  so.draws = 3;
  so.seed = 4;
  const SigmaCurve a = sigma_curve(f.model, batch, so), b = sigma_curve(f.model, batch, so);
  CHECK(a.loss_draws == b.loss_draws);
  CHECK(a.accuracy_draws == b.accuracy_draws);
  CHECK(a.loss_std[1] > 0);
  so.seed = 5;
  CHECK(sigma_curve(f.model, batch, so).loss_draws[1] != a.loss_draws[1]);

  RandomDirectionOptions ro;
  ro.seed = 4;
  SurfaceOptions o;
  o.x = o.y = linspace(-0.5, 0.5, 3);
  const Surface s1 = surface_2d(f.model, batch, random_directions(f.model, ro), o);
  const Surface s2 = surface_2d(f.model, batch, random_directions(f.model, ro), o);
  CHECK(s1.loss == s2.loss);
  ro.seed = 5;
  CHECK(surface_2d(f.model, batch, random_directions(f.model, ro), o).loss != s1.loss);

  EigenDirectionOptions eo;
  eo.eigen.seed = 4;
  const DirectionPair e1 = eigen_directions(f.model, batch, eo), e2 = eigen_directions(f.model, batch, eo);
  // To roundoff, not to the bit: two gradient graphs of one loss give Hessian-vector products
  // that differ in the last bits (a backward from several roots starts them in no fixed order).
  REQUIRE(e2.eigenvalues.size() == 2);
  for (size_t i = 0; i < 2; ++i) CHECK(e1.eigenvalues[i] == doctest::Approx(e2.eigenvalues[i]).epsilon(1e-12));
  for (size_t i = 0; i < e1.d1.size(); ++i) {
    const std::vector<double> a = host(e1.d1[i]), b = host(e2.d1[i]);
    for (size_t k = 0; k < a.size(); ++k) CHECK(a[k] == doctest::Approx(b[k]).epsilon(1e-9).scale(1));
  }
  CHECK(e1.eigenvalues[0] >= e1.eigenvalues[1]);
  CHECK(e1.hvps > 0);
}

TEST_CASE("landscape: the weights and the model's mode come back bit-identical, also after an error") {
  CnnFixture f;
  CnnFixture other(22);
  FixedBatch batch(f.x, f.y);
  f.model.train();
  const auto before = state_of(f.model);
  SigmaOptions so;
  so.sigmas = {0.0, 0.3};
  so.draws = 2;
  sigma_curve(f.model, batch, so);
  CHECK(state_of(f.model) == before);
  CHECK(f.model.training());
  SurfaceOptions o;
  o.x = o.y = linspace(-1, 1, 3);
  surface_2d(f.model, batch, random_directions(f.model, {}), o);
  surface_2d(f.model, batch, eigen_directions(f.model, batch), o);
  CHECK(state_of(f.model) == before);
  InterpolationOptions io;
  io.t = linspace(-0.5, 1.5, 5);
  interpolate(f.model, other.model, batch, io);
  CHECK(state_of(f.model) == before);
  CHECK(f.model.training());

  // A score that fails on the third point: the error passes through, the weights come back.
  int calls = 0;
  so.score = [&](nn::Module& m, const augment::Batch& b) {
    if (++calls == 3) throw std::runtime_error("third point");
    return classification_batch_score(m, b);
  };
  CHECK_THROWS_WITH(sigma_curve(f.model, batch, so), "third point");
  CHECK(state_of(f.model) == before);
  CHECK(f.model.training());
  // A loss that overflows away from the centre: one clear error naming the point.
  calls = 0;
  so.score = [&](nn::Module& m, const augment::Batch& b) {
    BatchScore s = classification_batch_score(m, b);
    if (++calls > 1) s.loss = std::numeric_limits<double>::infinity();
    return s;
  };
  CHECK_THROWS_WITH_AS(sigma_curve(f.model, batch, so),
                       doctest::Contains("the loss is inf at sigma = 0.3 (draw 0) (try a smaller grid)"), Error);
  CHECK(state_of(f.model) == before);
}

TEST_CASE("landscape: interpolation's end points are each checkpoint's own loss, BN statistics included") {
  CnnFixture a, b(22);
  FixedBatch batch(a.x, a.y);
  const double loss_a = plain_loss(a.model, a.x, a.y), loss_b = plain_loss(b.model, a.x, a.y);
  REQUIRE(loss_a != loss_b);
  InterpolationOptions o;
  CHECK(o.t.size() == 21);
  CHECK(o.t[5] == 0.0);
  CHECK(o.t[15] == 1.0);
  const Interpolation r = interpolate(a.model, b.model, batch, o);
  CHECK(r.loss[5] == loss_a);
  CHECK(r.loss[15] == loss_b);
  CHECK(r.a.loss == loss_a);
  CHECK(r.b.loss == loss_b);
  CHECK(r.evaluations == 2 + 21);

  // The midpoint is the model whose every parameter and running statistic is the mean of the two.
  CnnFixture mid;
  {
    autograd::NoGradGuard no_grad;
    const nn::StateDict sa = a.model.state_dict(), sb = b.model.state_dict();
    nn::StateDict sm;
    for (const auto& [name, t] : sa) sm[name] = t.dtype() == DType::i64 ? t : (t + sb.at(name)) * 0.5;
    mid.model.load_state_dict(sm);
  }
  o.t = {0.5};
  CHECK(interpolate(a.model, b.model, batch, o).loss[0] ==
        doctest::Approx(plain_loss(mid.model, a.x, a.y)).epsilon(1e-12));
  // Without the buffers, t = 1 is b's weights with a's running statistics.
  o.t = {1.0};
  o.interpolate_buffers = false;
  CHECK(interpolate(a.model, b.model, batch, o).loss[0] != loss_b);
}

TEST_CASE("landscape: on linear least squares surfaces and lines are the exact quadratics") {
  LeastSquares ls;
  FixedBatch batch(ls.x, ls.t);
  const ScoreFn score = squared_error_score;
  const std::vector<double> r = ls.residual();

  // Random directions (raw, so the bias moves too): L(a, b) = 0.5 mean((r + a u + b v)^2).
  RandomDirectionOptions ro;
  ro.filter_normalize = false;
  ro.seed = 2;
  const DirectionPair d = random_directions(ls.model, ro);
  REQUIRE(d.names == std::vector<std::string>{"weight", "bias"});
  const std::vector<double> u = ls.along(d.d1[0].reshape({3}), d.d1[1]);
  const std::vector<double> v = ls.along(d.d2[0].reshape({3}), d.d2[1]);
  SurfaceOptions o;
  o.x = linspace(-1, 1, 5);
  o.y = linspace(-2, 2, 3);
  o.score = score;
  const Surface s = surface_2d(ls.model, batch, d, o);
  for (size_t j = 0; j < o.y.size(); ++j)
    for (size_t i = 0; i < o.x.size(); ++i) {
      std::vector<double> moved(8);
      for (int k = 0; k < 8; ++k) moved[k] = r[k] + o.x[i] * u[k] + o.y[j] * v[k];
      CHECK(s.loss[j * o.x.size() + i] == doctest::Approx(half_mean_square(moved)).epsilon(1e-12));
      CHECK(std::isnan(s.accuracy[j * o.x.size() + i]));
    }

  // The top-2 eigen directions are the first two features' axes, with eigenvalues 9 and 4.
  EigenDirectionOptions eo;
  eo.hessian.loss = squared_error;
  const DirectionPair e = eigen_directions(ls.model, batch, eo);
  REQUIRE(e.eigenvalues.size() == 2);
  CHECK(e.eigenvalues[0] == doctest::Approx(9).epsilon(1e-6));
  CHECK(e.eigenvalues[1] == doctest::Approx(4).epsilon(1e-6));
  const std::vector<double> e1 = host(e.d1[0]), e2 = host(e.d2[0]);
  CHECK(std::abs(e1[0]) == doctest::Approx(1).epsilon(1e-6));
  CHECK(std::abs(e2[1]) == doctest::Approx(1).epsilon(1e-6));
  // Along a unit eigenvector the loss is L0 + a <g, d> + 0.5 lambda a^2.
  o.x = linspace(-0.1, 0.1, 3);
  o.y = {0.0};
  const Surface se = surface_2d(ls.model, batch, e, o);
  const std::vector<double> g1 = ls.along(e.d1[0].reshape({3}), e.d1[1]);
  double slope = 0;
  for (int k = 0; k < 8; ++k) slope += r[k] * g1[k] / 8.0;
  for (size_t i = 0; i < 3; ++i)
    CHECK(se.loss[i] == doctest::Approx(se.center.loss + o.x[i] * slope + 0.5 * 9 * o.x[i] * o.x[i]).epsilon(1e-5));

  // Interpolation towards other weights: L(t) = 0.5 mean((r_a + t (p_b - p_a))^2), also beyond [0, 1].
  nn::Linear other(3, 1, true, LeastSquares::gen());
  to_f64(other);
  std::vector<double> delta;
  {
    autograd::NoGradGuard no_grad;
    delta = host(other(ls.x) - ls.model(ls.x));
  }
  InterpolationOptions io;
  io.score = score;
  const Interpolation line = interpolate(ls.model, other, batch, io);
  for (size_t i = 0; i < io.t.size(); ++i) {
    std::vector<double> moved(8);
    for (int k = 0; k < 8; ++k) moved[k] = r[k] + io.t[i] * delta[k];
    CHECK(line.loss[i] == doctest::Approx(half_mean_square(moved)).epsilon(1e-12));
  }
}

TEST_CASE("landscape: bad input is one clear error") {
  CnnFixture f;
  FixedBatch batch(f.x, f.y);
  SigmaOptions so;
  so.sigmas = {0.0, -0.1};
  CHECK_THROWS_WITH_AS(sigma_curve(f.model, batch, so), doctest::Contains("sigma must be zero or more, got -0.1"),
                       Error);
  so.sigmas = {};
  CHECK_THROWS_WITH_AS(sigma_curve(f.model, batch, so), doctest::Contains("the sigma grid is empty"), Error);
  so.sigmas = {0.0, std::nan("")};
  CHECK_THROWS_WITH_AS(sigma_curve(f.model, batch, so), doctest::Contains("the sigma grid holds nan"), Error);
  so.sigmas = {0.01};
  so.draws = 0;
  CHECK_THROWS_WITH_AS(sigma_curve(f.model, batch, so), doctest::Contains("draws must be at least 1"), Error);
  so.draws = 1;
  so.parameters = {"nosuch"};
  CHECK_THROWS_WITH_AS(sigma_curve(f.model, batch, so), doctest::Contains("no parameter that requires grad is named"),
                       Error);

  // Two architectures cannot be interpolated.
  nn::Linear small(3, 1);
  CHECK_THROWS_WITH_AS(interpolate(f.model, small, batch), doctest::Contains("interpolation needs one architecture"),
                       Error);
  // Directions of another model.
  CHECK_THROWS_WITH_AS(surface_2d(f.model, batch, random_directions(small, {})),
                       doctest::Contains("which the model does not have"), Error);
  // A non-finite loss at the checkpoint itself: its weights are broken.
  {
    autograd::NoGradGuard no_grad;
    f.model.fc->bias.fill_(std::numeric_limits<double>::quiet_NaN());
  }
  CHECK_THROWS_WITH_AS(sigma_curve(f.model, batch, {}),
                       doctest::Contains("the loss is nan at the checkpoint's own weights"), Error);
  CHECK(std::isnan(host(f.model.fc->bias)[0]));
}
