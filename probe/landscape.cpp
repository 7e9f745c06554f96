// Loss landscapes: evaluation of a point, the sigma-curve, 2-D surfaces and interpolation
// (see landscape.h for the definitions; the directions are made in directions.cpp).
#include "probe/landscape.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"
#include "nn/metrics.h"

namespace dmix::probe {

namespace {

// Copies of tensors a landscape overwrites, written back (with the model's mode) when it ends,
// however it ends: copy_ moves the bytes, so the weights come back bit-identical.
class StateRestorer {
 public:
  StateRestorer(nn::Module& model, const TensorList& targets) : model_(model), was_training_(model.training()) {
    autograd::NoGradGuard no_grad;
    for (const Tensor& t : targets) {
      targets_.push_back(t);
      saved_.push_back(t.detach().clone());
    }
  }
  ~StateRestorer() {
    autograd::NoGradGuard no_grad;
    for (size_t i = 0; i < targets_.size(); ++i) targets_[i].copy_(saved_[i]);
    model_.train(was_training_);
  }
  StateRestorer(const StateRestorer&) = delete;
  StateRestorer& operator=(const StateRestorer&) = delete;
  const TensorList& saved() const { return saved_; }

 private:
  nn::Module& model_;
  bool was_training_;
  TensorList targets_, saved_;
};

// A point whose loss is not finite is reported with where it lies: at a checkpoint's own
// weights the checkpoint or the data is broken, elsewhere the grid reaches too far.
PointValue checked(const PointValue& v, const std::string& where, bool grid_point = true) {
  check(std::isfinite(v.loss), "landscape", "the loss is ", v.loss, " at ", where,
        grid_point ? " (try a smaller grid)" : "");
  return v;
}

double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }

double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

void check_grid(const std::vector<double>& grid, const char* what) {
  check(!grid.empty(), "landscape", "the ", what, " grid is empty");
  for (double v : grid) check(std::isfinite(v), "landscape", "the ", what, " grid holds ", v);
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

}  // namespace

BatchScore classification_batch_score(nn::Module& model, const augment::Batch& batch) {
  const Device device = model.device();
  const Tensor logits = model(batch.images.to(device));
  const Tensor targets = batch.labels.to(device);
  BatchScore s;
  if (targets.dtype() == DType::i64) {
    s.loss = cross_entropy(logits, targets).item();
    s.correct = nn::count_topk_correct(logits, targets, 1);
  } else {
    s.loss = soft_cross_entropy(logits, targets).item();
    s.correct = nn::count_topk_correct(logits, argmax(targets, 1), 1);
  }
  return s;
}

PointValue evaluate_point(nn::Module& model, BatchSource& batches, const ScoreFn& score) {
  check(bool(score), "landscape", "no score function given");
  autograd::NoGradGuard no_grad;
  const bool was_training = model.training();
  model.eval();
  // The same sums, in the same order, as HessianOperator::loss(): the centre matches it exactly.
  double weighted = 0;
  int64_t total = 0, correct = 0;
  bool counted = true;
  try {
    batches.start();
    for (augment::Batch b; batches.next(b);) {
      const int64_t n = b.images.size(0);
      const BatchScore s = score(model, b);
      weighted += s.loss * double(n);
      total += n;
      if (s.correct < 0) counted = false;
      correct += s.correct;
    }
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  check(total > 0, "landscape", "the batch source yields no samples");
  return {weighted / double(total), counted ? double(correct) / double(total) : std::nan("")};
}

std::vector<double> linspace(double lo, double hi, int64_t n) {
  check(n >= 1, "landscape", "a grid needs at least one point, got ", n);
  std::vector<double> v(static_cast<size_t>(n), lo);
  for (int64_t i = 1; i < n; ++i) {
    double x = lo + (hi - lo) * double(i) / double(n - 1);
    if (std::abs(x) < 1e-12) x = 0.0;
    if (std::abs(x - 1.0) < 1e-12) x = 1.0;
    v[static_cast<size_t>(i)] = x;
  }
  return v;
}

NamedParameters selected_parameters(const nn::Module& model, const std::vector<std::string>& prefixes) {
  NamedParameters out;
  std::vector<bool> used(prefixes.size(), false);
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    bool selected = prefixes.empty();
    for (size_t i = 0; i < prefixes.size(); ++i)
      if (name_under_prefix(name, prefixes[i])) selected = used[i] = true;
    if (!selected) continue;
    out.names.push_back(name);
    out.tensors.push_back(p);
  }
  for (size_t i = 0; i < prefixes.size(); ++i)
    check(used[i], "landscape", "no parameter that requires grad is named '", prefixes[i], "' or lies under it");
  check(!out.tensors.empty(), "landscape", "the model has no parameter that requires grad");
  return out;
}

SigmaCurve sigma_curve(nn::Module& model, BatchSource& batches, const SigmaOptions& options) {
  check_grid(options.sigmas, "sigma");
  for (double s : options.sigmas) check(s >= 0, "landscape", "sigma must be zero or more, got ", s);
  check(options.draws >= 1, "landscape", "draws must be at least 1, got ", options.draws);
  const NamedParameters params = selected_parameters(model, options.parameters);
  StateRestorer restore(model, params.tensors);
  const TensorList& theta = restore.saved();

  SigmaCurve out;
  out.sigmas = options.sigmas;
  const size_t n_sigma = options.sigmas.size();
  out.loss_draws.assign(n_sigma, {});
  out.accuracy_draws.assign(n_sigma, {});
  for (const Tensor& p : params.tensors) out.parameters += p.numel();
  const int64_t noisy = std::count_if(options.sigmas.begin(), options.sigmas.end(), [](double s) { return s > 0; });
  const int64_t total = 1 + noisy * options.draws;
  auto step = [&] {
    ++out.evaluations;
    if (options.progress) options.progress(out.evaluations, total);
  };

  out.center = checked(evaluate_point(model, batches, options.score), "the checkpoint's own weights", false);
  step();
  for (size_t s = 0; s < n_sigma; ++s)
    if (options.sigmas[s] == 0) {
      out.loss_draws[s].push_back(out.center.loss);
      out.accuracy_draws[s].push_back(out.center.accuracy);
    }
  if (noisy > 0) {
    Generator gen(options.seed);
    for (int64_t d = 0; d < options.draws; ++d) {
      TensorList z;
      for (const Tensor& p : params.tensors) z.push_back(gen.normal(p.shape(), 0.0, 1.0, p.dtype(), p.device()));
      for (size_t s = 0; s < n_sigma; ++s) {
        const double sigma = options.sigmas[s];
        if (sigma == 0) continue;
        {
          autograd::NoGradGuard no_grad;
          for (size_t i = 0; i < z.size(); ++i) params.tensors[i].copy_(theta[i]).add_(z[i], sigma);
        }
        const PointValue v = checked(evaluate_point(model, batches, options.score),
                                     "sigma = " + number(sigma) + " (draw " + std::to_string(d) + ")");
        out.loss_draws[s].push_back(v.loss);
        out.accuracy_draws[s].push_back(v.accuracy);
        step();
      }
    }
  }
  for (size_t s = 0; s < n_sigma; ++s) {
    out.loss_mean.push_back(mean_of(out.loss_draws[s]));
    out.loss_std.push_back(std_of(out.loss_draws[s]));
    out.accuracy_mean.push_back(mean_of(out.accuracy_draws[s]));
    out.accuracy_std.push_back(std_of(out.accuracy_draws[s]));
  }
  return out;
}

Surface surface_2d(nn::Module& model, BatchSource& batches, const DirectionPair& directions,
                   const SurfaceOptions& options) {
  check_grid(options.x, "x");
  check_grid(options.y, "y");
  const size_t n = directions.names.size();
  check(n > 0 && directions.d1.size() == n && directions.d2.size() == n, "landscape", "a direction pair needs ", n,
        " tensors in each direction, got ", directions.d1.size(), " and ", directions.d2.size());
  // The model's tensors the directions name, in the directions' order.
  TensorList targets;
  {
    const nn::NamedTensors named = model.named_parameters();
    for (size_t i = 0; i < n; ++i) {
      auto it = std::find_if(named.begin(), named.end(), [&](const auto& e) { return e.first == directions.names[i]; });
      check(it != named.end(), "landscape", "the directions name parameter ", directions.names[i],
            ", which the model does not have");
      const Tensor& p = it->second;
      for (const Tensor* d : {&directions.d1[i], &directions.d2[i]})
        check(d->shape() == p.shape() && d->dtype() == p.dtype() && d->device() == p.device(), "landscape",
              "direction ", d->str(), " does not match parameter ", directions.names[i], " ", p.str());
      targets.push_back(p);
    }
  }
  StateRestorer restore(model, targets);
  const TensorList& theta = restore.saved();

  Surface out;
  out.x = options.x;
  out.y = options.y;
  const int64_t total = 1 + int64_t(out.x.size() * out.y.size());
  auto step = [&] {
    ++out.evaluations;
    if (options.progress) options.progress(out.evaluations, total);
  };
  out.center = checked(evaluate_point(model, batches, options.score), "the checkpoint's own weights", false);
  step();
  for (double b : out.y)
    for (double a : out.x) {
      PointValue v = out.center;
      if (a != 0 || b != 0) {
        {
          autograd::NoGradGuard no_grad;
          for (size_t i = 0; i < n; ++i) {
            targets[i].copy_(theta[i]);
            if (a != 0) targets[i].add_(directions.d1[i], a);
            if (b != 0) targets[i].add_(directions.d2[i], b);
          }
        }
        v = checked(evaluate_point(model, batches, options.score), "(" + number(a) + ", " + number(b) + ")");
      }
      out.loss.push_back(v.loss);
      out.accuracy.push_back(v.accuracy);
      step();
    }
  return out;
}

Interpolation interpolate(nn::Module& a, const nn::Module& b, BatchSource& batches,
                          const InterpolationOptions& options) {
  check_grid(options.t, "t");
  // Parameters first, then the floating-point buffers; integer buffers (counters) stay a's.
  TensorList targets, ends;
  size_t n_params = 0;
  for (bool params : {true, false}) {
    const nn::NamedTensors na = params ? a.named_parameters() : a.named_buffers();
    const nn::NamedTensors nb = params ? b.named_parameters() : b.named_buffers();
    const char* kind = params ? "parameters" : "buffers";
    check(na.size() == nb.size(), "landscape", "the two models differ: ", na.size(), " and ", nb.size(), " ", kind,
          " (interpolation needs one architecture)");
    for (size_t i = 0; i < na.size(); ++i) {
      const auto& [name, ta] = na[i];
      const Tensor& tb = nb[i].second;
      check(name == nb[i].first && ta.shape() == tb.shape() && ta.dtype() == tb.dtype(), "landscape",
            "the two models differ: ", name, " ", ta.str(), " against ", nb[i].first, " ", tb.str(),
            " (interpolation needs one architecture)");
      const bool floating = ta.dtype() == DType::f32 || ta.dtype() == DType::f64;
      if (!params && (!floating || !options.interpolate_buffers)) continue;
      targets.push_back(ta);
      ends.push_back(tb.detach().to(ta.device()));
    }
    if (params) n_params = targets.size();
  }
  StateRestorer restore(a, targets);
  const TensorList& starts = restore.saved();

  // (1 - t) x_a + t x_b, elementwise: at t = 0 and t = 1 this is each end to the last bit.
  auto move_to = [&](double t) {
    autograd::NoGradGuard no_grad;
    for (size_t i = 0; i < targets.size(); ++i) {
      const double u = i < n_params ? t : std::clamp(t, 0.0, 1.0);
      targets[i].copy_(starts[i]).mul_(1.0 - u).add_(ends[i], u);
    }
  };

  Interpolation out;
  out.t = options.t;
  const int64_t total = 2 + int64_t(out.t.size());
  auto step = [&] {
    ++out.evaluations;
    if (options.progress) options.progress(out.evaluations, total);
  };
  out.a = checked(evaluate_point(a, batches, options.score), "the first checkpoint's own weights", false);
  step();
  move_to(1.0);
  out.b = options.interpolate_buffers
              ? checked(evaluate_point(a, batches, options.score), "the second checkpoint's own weights", false)
              : checked(evaluate_point(a, batches, options.score), "t = 1");
  step();
  for (double t : out.t) {
    PointValue v = t == 0 ? out.a : out.b;
    if (t != 0 && t != 1) {
      move_to(t);
      v = checked(evaluate_point(a, batches, options.score), "t = " + number(t));
    }
    out.loss.push_back(v.loss);
    out.accuracy.push_back(v.accuracy);
    step();
  }
  return out;
}

}  // namespace dmix::probe
