// `dmix landscape`: the loss landscape of one or more checkpoints on a dataset split or a
// fixed batch: the sigma-curve under Gaussian weight noise (the paper's Fig. 3b), 2-D surfaces
// along the top-2 Hessian eigenvectors (Fig. 3a) or two filter-normalised random directions
// (Li et al.), and the line between two checkpoints. The algorithms live in probe/
// (dmix/landscape.h); this is their flags, a progress bar, the plots and the JSON.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "apps/dmix/datasets.h"
#include "apps/dmix/options.h"
#include "apps/dmix/progress.h"
#include "dmix/landscape.h"
#include "engine/error.h"
#include "probe/plot.h"

namespace dmix::app {

namespace {

constexpr const char* kOp = "landscape";

struct LandscapeCommand {
  std::vector<std::string> weights, names;
  ModelOptions model;  // --model, --num-classes, --in-channels for every file; its weights set per file
  ImageOptions images;
  SplitOptions split;
  BatchInputOptions input;
  RunOptions run;
  std::string mode = "sigma";
  std::string sigmas, range;
  double sigma_max = 0.012;
  int64_t sigma_steps = 7, draws = 5, steps = 21;
  std::string method = "lanczos";
  bool raw_directions = false;
  std::vector<std::string> params;
  std::string plot_out, accuracy_plot_out, surface_out, json_out;
  uint64_t seed = 0;
  // Flags whose meaning or default depends on the mode, to tell whether they were given.
  CLI::Option *sigmas_flag = nullptr, *sigma_max_flag = nullptr, *sigma_steps_flag = nullptr, *draws_flag = nullptr,
              *range_flag = nullptr, *steps_flag = nullptr, *method_flag = nullptr, *raw_flag = nullptr,
              *surface_flag = nullptr, *params_flag = nullptr;
};

bool given(const CLI::Option* flag) { return flag != nullptr && flag->count() > 0; }

// "0,0.002,0.004" -> numbers; anything else is one error naming the flag.
std::vector<double> number_list(const std::string& text, const char* flag) {
  std::vector<double> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(!item.empty() && used == item.size() && std::isfinite(v), kOp, flag, " '", text,
          "' is not a comma-separated list of finite numbers");
    out.push_back(v);
  }
  check(!out.empty() && text.back() != ',', kOp, flag, " '", text, "' is not a comma-separated list of finite numbers");
  return out;
}

// The grid of the chosen mode, from its flags or the mode's default; bad grids and flags of
// another mode are errors before any work starts.
struct Grid {
  std::vector<double> sigmas, axis;  // sigma: sigmas; the other modes: axis (x and y alike for 2-D)
};

Grid grid_of(const LandscapeCommand& o) {
  const bool sigma = o.mode == "sigma";
  for (const CLI::Option* f : {o.sigmas_flag, o.sigma_max_flag, o.sigma_steps_flag, o.draws_flag})
    check(sigma || !given(f), kOp, f->get_name(), " applies to --mode sigma only");
  for (const CLI::Option* f : {o.range_flag, o.steps_flag})
    check(!sigma || !given(f), kOp, f->get_name(),
          " applies to --mode eigen2d, random2d and interpolate (--mode sigma takes --sigmas or --sigma-max and "
          "--sigma-steps)");
  check(o.mode == "eigen2d" || !given(o.method_flag), kOp, "--method applies to --mode eigen2d only");
  check(o.mode == "random2d" || !given(o.raw_flag), kOp, "--raw-directions applies to --mode random2d only");
  check(o.mode == "eigen2d" || o.mode == "random2d" || !given(o.surface_flag), kOp,
        "--surface applies to --mode eigen2d and random2d only");
  check(o.mode != "interpolate" || !given(o.params_flag), kOp,
        "--params does not apply to --mode interpolate (the whole state moves along the line)");
  Grid g;
  if (sigma) {
    if (given(o.sigmas_flag)) {
      check(!given(o.sigma_max_flag) && !given(o.sigma_steps_flag), kOp,
            "give --sigmas or --sigma-max and --sigma-steps, not both");
      g.sigmas = number_list(o.sigmas, "--sigmas");
      for (double s : g.sigmas) check(s >= 0, kOp, "--sigmas must all be zero or more, got ", s);
    } else {
      check(o.sigma_steps >= 2, kOp, "--sigma-steps must be at least 2 (0 and --sigma-max), got ", o.sigma_steps);
      g.sigmas = probe::linspace(0.0, o.sigma_max, o.sigma_steps);
    }
    return g;
  }
  double lo = o.mode == "random2d" ? -1.0 : o.mode == "interpolate" ? -0.5 : -0.1;
  double hi = o.mode == "random2d" ? 1.0 : o.mode == "interpolate" ? 1.5 : 0.1;
  if (given(o.range_flag)) {
    const std::vector<double> r = number_list(o.range, "--range");
    check(r.size() == 2 && r[0] < r[1], kOp, "--range takes two numbers a,b with a < b, got '", o.range, "'");
    lo = r[0];
    hi = r[1];
  }
  check(o.steps >= 2, kOp, "--steps must be at least 2, got ", o.steps);
  g.axis = probe::linspace(lo, hi, o.steps);
  return g;
}

// Legend labels: --names, else what tells the paths apart (runs/none/last.safetensors and
// runs/cutmix/last.safetensors become none and cutmix); one path is itself.
std::vector<std::string> labels_for(const LandscapeCommand& o) {
  if (!o.names.empty()) {
    check(o.names.size() == o.weights.size(), kOp, "--names gives ", o.names.size(), " names for ", o.weights.size(),
          " --weights");
    return o.names;
  }
  if (o.weights.size() == 1) return o.weights;
  std::vector<std::vector<std::string>> parts;
  for (std::string w : o.weights) {
    if (ends_with(w, ".safetensors")) w.resize(w.size() - std::string(".safetensors").size());
    std::vector<std::string> p;
    std::stringstream in(w);
    for (std::string item; std::getline(in, item, '/');)
      if (!item.empty() && item != ".") p.push_back(item);
    parts.push_back(p);
  }
  auto all_share = [&](auto at) {
    for (const auto& p : parts)
      if (p.size() < 2 || at(p) != at(parts[0])) return false;
    return true;
  };
  while (all_share([](const std::vector<std::string>& p) { return p.front(); }))
    for (auto& p : parts) p.erase(p.begin());
  while (all_share([](const std::vector<std::string>& p) { return p.back(); }))
    for (auto& p : parts) p.pop_back();
  std::vector<std::string> out;
  for (const auto& p : parts) {
    std::string label;
    for (const std::string& s : p) label += (label.empty() ? "" : "/") + s;
    out.push_back(label.empty() ? "." : label);
  }
  for (size_t i = 0; i < out.size(); ++i)
    if (std::count(out.begin(), out.end(), out[i]) > 1) return o.weights;  // the same file twice
  return out;
}

LoadedModel load(const LandscapeCommand& o, const std::string& weights, Device device) {
  ModelOptions mo = o.model;
  mo.weights = weights;
  return mo.load(device, kOp);
}

// A progress bar over grid points, counting the images evaluated.
class PointProgress {
 public:
  PointProgress(const std::string& label, int64_t images) : images_(images), bar_(1, label, true), label_(label) {}
  ~PointProgress() { bar_.finish(); }
  probe::LandscapeProgressFn callback() {
    return [this](int64_t done, int64_t total) {
      if (total != total_) {
        total_ = total;
        bar_ = Progress(total, label_, true);
      }
      bar_.update(done, double(done) * double(images_));
    };
  }

 private:
  int64_t images_, total_ = 1;
  Progress bar_;
  std::string label_;
};

void write_json(const std::string& path, const nlohmann::json& j) {
  const std::string part = path + ".part";
  {
    std::ofstream f(part);
    check(bool(f), kOp, "cannot write ", path);
    f << j.dump() << "\n";
    check(bool(f), kOp, "cannot write ", path);
  }
  check(std::rename(part.c_str(), path.c_str()) == 0, kOp, "cannot write ", path);
}

// Row-major over y as the library gives it -> rows of the JSON.
nlohmann::json rows(const std::vector<double>& values, size_t width) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t j = 0; j * width < values.size(); ++j)
    out.push_back(std::vector<double>(values.begin() + j * width, values.begin() + (j + 1) * width));
  return out;
}

// F.png -> F-2.png for the second checkpoint's surface.
std::string numbered(const std::string& path, size_t i) {
  if (i == 0) return path;
  const size_t dot = path.rfind('.');
  return path.substr(0, dot) + "-" + std::to_string(i + 1) + path.substr(dot);
}

nlohmann::json checkpoint_json(const std::string& weights, const std::string& label, const LoadedModel& m,
                               const probe::PointValue& center) {
  return {{"weights", weights},
          {"label", label},
          {"model", m.spec.name},
          {"loss", center.loss},
          {"accuracy", center.accuracy}};
}

// What the runs of one command gather for the plots (the JSON is gathered beside it).
struct Outcome {
  std::vector<probe::plot::Series> loss_series, accuracy_series;
  std::vector<probe::plot::Grid2d> loss_grids, accuracy_grids;
  std::string source;
};

void run_sigma(const LandscapeCommand& o, const Grid& grid, const std::vector<std::string>& labels, Device device,
               nlohmann::json& j, Outcome& out) {
  j["sigmas"] = grid.sigmas;
  j["draws"] = o.draws;
  for (size_t i = 0; i < o.weights.size(); ++i) {
    LoadedModel m = load(o, o.weights[i], device);
    auto batches = read_analysis_batches(o.input, o.images, o.split, m, kOp);
    out.source = batches->source;
    std::printf("%s (%s) on %s\n", labels[i].c_str(), m.spec.name.c_str(), out.source.c_str());
    probe::SigmaOptions so;
    so.sigmas = grid.sigmas;
    so.draws = o.draws;
    so.parameters = o.params;
    so.seed = o.seed;
    probe::SigmaCurve c;
    {
      PointProgress bar("sigma-curve " + labels[i], batches->images);
      so.progress = bar.callback();
      c = probe::sigma_curve(*m.model, batches->batches(), so);
    }
    nlohmann::json cj = checkpoint_json(o.weights[i], labels[i], m, c.center);
    cj["parameters"] = c.parameters;
    cj["loss_mean"] = c.loss_mean;
    cj["loss_std"] = c.loss_std;
    cj["accuracy_mean"] = c.accuracy_mean;
    cj["accuracy_std"] = c.accuracy_std;
    cj["loss_draws"] = c.loss_draws;
    cj["accuracy_draws"] = c.accuracy_draws;
    j["checkpoints"].push_back(cj);
    std::printf("  %10s %22s %22s\n", "sigma", "loss (mean +- std)", "accuracy (mean +- std)");
    for (size_t s = 0; s < c.sigmas.size(); ++s)
      std::printf("  %10.4g %12.6g +- %-8.3g %12.4f +- %-8.3g\n", c.sigmas[s], c.loss_mean[s], c.loss_std[s],
                  c.accuracy_mean[s], c.accuracy_std[s]);
    probe::plot::Series ls, as;
    ls.label = as.label = labels[i];
    ls.x = as.x = c.sigmas;
    ls.y = c.loss_mean;
    as.y = c.accuracy_mean;
    for (size_t s = 0; s < c.sigmas.size(); ++s) {
      ls.y_low.push_back(c.loss_mean[s] - c.loss_std[s]);
      ls.y_high.push_back(c.loss_mean[s] + c.loss_std[s]);
      as.y_low.push_back(c.accuracy_mean[s] - c.accuracy_std[s]);
      as.y_high.push_back(c.accuracy_mean[s] + c.accuracy_std[s]);
    }
    out.loss_series.push_back(ls);
    out.accuracy_series.push_back(as);
  }
}

void run_interpolate(const LandscapeCommand& o, const Grid& grid, const std::vector<std::string>& labels, Device device,
                     nlohmann::json& j, Outcome& out) {
  LoadedModel a = load(o, o.weights[0], device), b = load(o, o.weights[1], device);
  check(a.spec.name == b.spec.name && a.spec.num_classes == b.spec.num_classes &&
            a.spec.in_channels == b.spec.in_channels,
        kOp, "--mode interpolate needs two checkpoints of one architecture: ", o.weights[0], " holds ", a.spec.name,
        " (", a.spec.num_classes, " classes, ", a.spec.in_channels, " channels), ", o.weights[1], " holds ",
        b.spec.name, " (", b.spec.num_classes, " classes, ", b.spec.in_channels, " channels)");
  auto batches = read_analysis_batches(o.input, o.images, o.split, a, kOp);
  out.source = batches->source;
  std::printf("%s -> %s (%s) on %s\n", labels[0].c_str(), labels[1].c_str(), a.spec.name.c_str(), out.source.c_str());
  probe::InterpolationOptions io;
  io.t = grid.axis;
  probe::Interpolation r;
  {
    PointProgress bar("interpolation", batches->images);
    io.progress = bar.callback();
    r = probe::interpolate(*a.model, *b.model, batches->batches(), io);
  }
  j["checkpoints"].push_back(checkpoint_json(o.weights[0], labels[0], a, r.a));
  j["checkpoints"].push_back(checkpoint_json(o.weights[1], labels[1], b, r.b));
  j["t"] = r.t;
  j["loss"] = r.loss;
  j["accuracy"] = r.accuracy;
  std::printf("  %8s %12s %10s\n", "t", "loss", "accuracy");
  for (size_t i = 0; i < r.t.size(); ++i) std::printf("  %8.4g %12.6g %10.4f\n", r.t[i], r.loss[i], r.accuracy[i]);
  probe::plot::Series ls, as;
  ls.label = as.label = labels[0] + " (t = 0) to " + labels[1] + " (t = 1)";
  ls.x = as.x = r.t;
  ls.y = r.loss;
  as.y = r.accuracy;
  out.loss_series.push_back(ls);
  out.accuracy_series.push_back(as);
}

void run_surfaces(const LandscapeCommand& o, const Grid& grid, const std::vector<std::string>& labels, Device device,
                  nlohmann::json& j, Outcome& out) {
  const bool eigen = o.mode == "eigen2d";
  j["x"] = grid.axis;
  j["y"] = grid.axis;
  j["directions"] = eigen              ? "top-2 Hessian eigenvectors (unit norm)"
                    : o.raw_directions ? "random Gaussian (raw)"
                                       : "random Gaussian, filter-normalised";
  for (size_t i = 0; i < o.weights.size(); ++i) {
    LoadedModel m = load(o, o.weights[i], device);
    auto batches = read_analysis_batches(o.input, o.images, o.split, m, kOp);
    out.source = batches->source;
    std::printf("%s (%s) on %s\n", labels[i].c_str(), m.spec.name.c_str(), out.source.c_str());
    probe::DirectionPair d;
    if (eigen) {
      probe::EigenDirectionOptions eo;
      eo.hessian.parameters = o.params;
      eo.eigen.seed = o.seed;
      if (o.method == "power") {
        eo.eigen.method = probe::EigenMethod::power;
        eo.eigen.order = probe::EigenOrder::largest_magnitude;
      }
      Progress bar(2 * eo.eigen.max_iterations, "top-2 eigenvectors (" + o.method + ")", true);
      eo.eigen.progress = [&](const std::string&, int64_t hvps, double) {
        bar.update(std::min(hvps, 2 * eo.eigen.max_iterations), double(hvps) * double(batches->images));
      };
      d = probe::eigen_directions(*m.model, batches->batches(), eo);
      bar.finish();
      std::printf("  top eigenvalues %.6g, %.6g (%lld Hessian-vector products)\n", d.eigenvalues[0], d.eigenvalues[1],
                  (long long)d.hvps);
    } else {
      probe::RandomDirectionOptions ro;
      ro.parameters = o.params;
      ro.filter_normalize = !o.raw_directions;
      ro.seed = o.seed;
      d = probe::random_directions(*m.model, ro);
    }
    probe::SurfaceOptions so;
    so.x = so.y = grid.axis;
    probe::Surface s;
    {
      PointProgress bar("surface " + labels[i], batches->images);
      so.progress = bar.callback();
      s = probe::surface_2d(*m.model, batches->batches(), d, so);
    }
    nlohmann::json cj = checkpoint_json(o.weights[i], labels[i], m, s.center);
    cj["loss_grid"] = rows(s.loss, s.x.size());
    cj["accuracy_grid"] = rows(s.accuracy, s.x.size());
    if (eigen) {
      cj["eigenvalues"] = d.eigenvalues;
      cj["hvp_count"] = d.hvps;
    }
    j["checkpoints"].push_back(cj);
    const auto [lo, hi] = std::minmax_element(s.loss.begin(), s.loss.end());
    std::printf("  loss %.6g at the centre, %.6g to %.6g over the grid\n", s.center.loss, *lo, *hi);
    out.loss_grids.push_back({labels[i], s.x, s.y, s.loss});
    out.accuracy_grids.push_back({labels[i], s.x, s.y, s.accuracy});
  }
}

// The plots, once every checkpoint is in.
void draw_plots(const LandscapeCommand& o, const std::vector<std::string>& labels, const Outcome& out) {
  const std::string what = o.input.inputs.empty() ? "test loss" : "loss on the given batch";
  if (o.mode == "sigma" || o.mode == "interpolate") {
    probe::plot::Axes axes;
    axes.title = o.mode == "sigma" ? "Loss under Gaussian noise on the weights (mean +- std over draws)"
                                   : "Loss along the line between two checkpoints";
    axes.x_label = o.mode == "sigma" ? "sigma (noise std on every weight)" : "t";
    for (const auto& [path, series, y] :
         {std::make_tuple(o.plot_out, out.loss_series, what),
          std::make_tuple(o.accuracy_plot_out, out.accuracy_series, std::string("accuracy"))}) {
      if (path.empty()) continue;
      axes.y_label = y;
      probe::plot::line_plot(path, axes, series);
      std::printf("wrote %s\n", path.c_str());
    }
  } else {
    probe::plot::Axes axes;
    const bool eigen = o.mode == "eigen2d";
    // Short axis names: the panels sit side by side, and the title says what they are.
    axes.title = eigen              ? "Loss at theta + lambda1 v1 + lambda2 v2 (top-2 Hessian eigenvectors)"
                 : o.raw_directions ? "Loss at theta + alpha d1 + beta d2 (random directions)"
                                    : "Loss at theta + alpha d1 + beta d2 (filter-normalised random)";
    axes.x_label = eigen ? "lambda1" : "alpha";
    axes.y_label = eigen ? "lambda2" : "beta";
    axes.width = std::max(800, 100 + 560 * static_cast<int>(std::min<size_t>(out.loss_grids.size(), 4)));
    axes.height = 600;
    if (!o.plot_out.empty()) {
      probe::plot::contour_plot(o.plot_out, axes, out.loss_grids, what);
      std::printf("wrote %s\n", o.plot_out.c_str());
    }
    if (!o.accuracy_plot_out.empty()) {
      probe::plot::contour_plot(o.accuracy_plot_out, axes, out.accuracy_grids, "accuracy");
      std::printf("wrote %s\n", o.accuracy_plot_out.c_str());
    }
    if (!o.surface_out.empty()) {
      axes.width = 800;
      axes.height = 600;
      for (size_t i = 0; i < out.loss_grids.size(); ++i) {
        axes.title = (eigen ? "Loss surface along the top-2 Hessian eigenvectors, " : "Loss surface, ") + labels[i];
        const std::string path = numbered(o.surface_out, i);
        probe::plot::surface_plot(path, axes, out.loss_grids[i], what);
        std::printf("wrote %s\n", path.c_str());
      }
    }
  }
}

int run_landscape(const LandscapeCommand& o) {
  check(!o.weights.empty(), kOp, "--weights needs at least one checkpoint");
  check(o.mode != "interpolate" || o.weights.size() == 2, kOp, "--mode interpolate takes exactly two --weights, got ",
        o.weights.size());
  const bool fixed_input = !o.input.inputs.empty();
  check(!fixed_input || !o.input.labels.empty(), kOp, "--input needs --labels: the landscape is of the loss");
  check(!fixed_input || (o.split.samples == 0 && o.split.data.empty()), kOp,
        "give either --input or a dataset split (--samples, --data), not both");
  const Grid grid = grid_of(o);
  const std::vector<std::string> labels = labels_for(o);
  for (const std::string* p : {&o.plot_out, &o.accuracy_plot_out, &o.surface_out})
    if (!p->empty()) probe::plot::check_plot_path(*p);  // a bad name fails now, not after the run
  const Device device = o.run.resolve();

  const auto start = std::chrono::steady_clock::now();
  nlohmann::json j;
  Outcome out;
  j["mode"] = o.mode;
  j["seed"] = o.seed;
  j["checkpoints"] = nlohmann::json::array();
  if (o.mode == "sigma")
    run_sigma(o, grid, labels, device, j, out);
  else if (o.mode == "interpolate")
    run_interpolate(o, grid, labels, device, j, out);
  else
    run_surfaces(o, grid, labels, device, j, out);
  draw_plots(o, labels, out);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  j["source"] = out.source;
  j["seconds"] = seconds;
  std::printf("%.1f s\n", seconds);
  if (!o.json_out.empty()) {
    write_json(o.json_out, j);
    std::printf("wrote %s\n", o.json_out.c_str());
  }
  return 0;
}

}  // namespace

void add_landscape_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "landscape",
      "Loss landscape of checkpoints: sigma-curve under weight noise, 2-D surfaces along the top-2 Hessian "
      "eigenvectors or filter-normalised random directions, interpolation between two checkpoints");
  auto o = std::make_shared<LandscapeCommand>();
  cmd->add_option("--weights,--checkpoint", o->weights,
                  "Checkpoints or safetensors state dicts (PyTorch names); several are compared on one figure "
                  "(--mode interpolate: exactly two)")
      ->required()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->expected(1, -1)
      ->group("Model");
  cmd->add_option("--model", o->model.model, "Model name (default: from the checkpoint)")->group("Model");
  cmd->add_option("--num-classes", o->model.num_classes, "Classes (default: from the checkpoint)")->group("Model");
  cmd->add_option("--in-channels", o->model.in_channels, "Input channels (default: from the checkpoint)")
      ->group("Model");
  o->params_flag = cmd->add_option("--params", o->params,
                                   "Move only the parameters under this name prefix (e.g. layer1 or fc.weight); "
                                   "repeat for several")
                       ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
                       ->group("Model");
  o->images.add_to(*cmd, dataset_names_text(), "the checkpoint's, else fashion-mnist");
  o->split.add_to(*cmd);
  o->input.add_to(*cmd);
  cmd->add_option("--mode", o->mode,
                  "sigma: loss under N(0, sigma^2) noise on every weight; eigen2d: surface along the top-2 Hessian "
                  "eigenvectors (unit vectors); random2d: along two Gaussian directions, filter-normalised (Li et "
                  "al.); interpolate: along (1 - t) W1 + t W2")
      ->check(CLI::IsMember({"sigma", "eigen2d", "random2d", "interpolate"}))
      ->capture_default_str()
      ->group("Landscape");
  o->sigmas_flag =
      cmd->add_option("--sigmas", o->sigmas, "sigma mode: the noise levels, e.g. 0,0.002,0.004")->group("Landscape");
  o->sigma_max_flag = cmd->add_option("--sigma-max", o->sigma_max, "sigma mode: the largest noise level")
                          ->check(non_negative())
                          ->capture_default_str()
                          ->group("Landscape");
  o->sigma_steps_flag = cmd->add_option("--sigma-steps", o->sigma_steps, "sigma mode: levels from 0 to --sigma-max")
                            ->capture_default_str()
                            ->group("Landscape");
  o->draws_flag = cmd->add_option("--draws", o->draws, "sigma mode: noise draws per sigma > 0")
                      ->check(positive())
                      ->capture_default_str()
                      ->group("Landscape");
  o->range_flag = cmd->add_option("--range", o->range,
                                  "a,b: the coefficients' range (both axes in 2-D; default eigen2d -0.1,0.1, random2d "
                                  "-1,1, interpolate -0.5,1.5)")
                      ->group("Landscape");
  o->steps_flag =
      cmd->add_option("--steps", o->steps, "Points along each axis")->capture_default_str()->group("Landscape");
  o->method_flag = cmd->add_option("--method", o->method,
                                   "eigen2d: lanczos (the two algebraically largest) or power (PyHessian's, largest "
                                   "in magnitude)")
                       ->check(CLI::IsMember({"power", "lanczos"}))
                       ->capture_default_str()
                       ->group("Landscape");
  o->raw_flag = cmd->add_flag("--raw-directions", o->raw_directions,
                              "random2d: raw N(0, 1) directions on every parameter, no filter normalisation")
                    ->group("Landscape");
  cmd->add_option("--seed", o->seed, "Seed of the noise, the random directions and the eigensolver's start")
      ->capture_default_str()
      ->group("Landscape");
  cmd->add_option("--names", o->names,
                  "Legend labels, one per --weights, comma-separated (default: what tells the paths apart)")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->group("Output");
  cmd->add_option("--plot", o->plot_out,
                  ".png or .svg: the loss (sigma, interpolate: curves, one per checkpoint; 2-D: contour panels)")
      ->group("Output");
  cmd->add_option("--accuracy-plot", o->accuracy_plot_out, ".png or .svg: the same for the accuracy")->group("Output");
  o->surface_flag = cmd->add_option("--surface", o->surface_out,
                                    "2-D modes, .png or .svg: a 3-D surface of the loss (F-2.png for the second "
                                    "checkpoint, ...)")
                        ->group("Output");
  cmd->add_option("--json", o->json_out,
                  "Write one JSON object to this file (mode, grids, per checkpoint its loss and accuracy values, "
                  "seconds)")
      ->group("Output");
  o->run.add_to(*cmd);
  on_run(cmd, [o] { return run_landscape(*o); });
}

}  // namespace dmix::app
