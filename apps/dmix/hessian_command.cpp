// `dmix hessian`: the Hessian of a checkpoint's loss on a dataset split or a fixed batch, as
// PyHessian analyses it: top eigenvalues, trace (Hutchinson), spectral density (stochastic
// Lanczos quadrature) and the same per layer. The algorithms live in probe/ (dmix/hessian.h);
// this is their flags, a progress bar and the JSON.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/dmix/commands.h"
#include "apps/dmix/datasets.h"
#include "apps/dmix/options.h"
#include "apps/dmix/progress.h"
#include "dmix/hessian.h"
#include "engine/error.h"
#include "engine/safetensors.h"
#include "probe/plot.h"

namespace dmix::app {

namespace {

struct HessianCommand {
  ModelOptions model;
  ImageOptions images;
  SplitOptions split;
  BatchInputOptions input;
  RunOptions run;
  int64_t top_k = 1;
  std::string method = "lanczos";
  bool trace = false, density = false, per_layer = false, train_mode = false;
  int64_t trace_samples = 0;  // 0: PyHessian's stopping rule
  int64_t density_steps = 100, density_probes = 1;
  std::string diagonal, eigenvectors_out, json_out, plot_out;
  std::vector<std::string> params;
  uint64_t seed = 0;
};

// A bar over one algorithm run, counting its Hessian-vector products against an upper bound
// (Lanczos and power iteration usually stop well before it).
class ProductProgress {
 public:
  ProductProgress(int64_t bound, const std::string& label, int64_t images_per_product)
      : bound_(std::max<int64_t>(bound, 1)), images_(images_per_product), bar_(bound_, label, true) {}
  ~ProductProgress() { bar_.finish(); }
  probe::ProgressFn callback() {
    return [this](const std::string&, int64_t hvps, double) {
      bar_.update(std::min(hvps, bound_), double(hvps) * double(images_));
    };
  }

 private:
  int64_t bound_, images_;
  Progress bar_;
};

// Power iteration gives its pairs in the order found: put every result in descending order.
void sort_descending(probe::EigenResult& r) {
  std::vector<size_t> order(r.eigenvalues.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return r.eigenvalues[a] > r.eigenvalues[b]; });
  probe::EigenResult sorted = r;
  for (size_t i = 0; i < order.size(); ++i) {
    sorted.eigenvalues[i] = r.eigenvalues[order[i]];
    sorted.eigenvectors[i] = r.eigenvectors[order[i]];
    sorted.converged[i] = r.converged[order[i]];
  }
  r = std::move(sorted);
}

// --params: the parameter groups of --per-layer, cut down to the named prefixes.
std::vector<probe::ParameterGroup> selected_groups(const nn::Module& model, const std::vector<std::string>& prefixes) {
  std::vector<probe::ParameterGroup> groups;
  for (probe::ParameterGroup g : probe::parameter_groups(model, probe::GroupBy::module)) {
    if (!prefixes.empty()) {
      std::vector<std::string> kept;
      for (const std::string& name : g.parameters)
        for (const std::string& prefix : prefixes)
          if (probe::name_under_prefix(name, prefix)) {
            kept.push_back(name);
            break;
          }
      g.parameters = kept;
    }
    if (!g.parameters.empty()) groups.push_back(std::move(g));
  }
  return groups;
}

void write_json(const std::string& path, const nlohmann::json& j, const char* op) {
  std::ofstream f(path);
  check(bool(f), op, "cannot write ", path);
  f << j.dump() << "\n";
  check(bool(f), op, "cannot write ", path);
}

int run_hessian(const HessianCommand& o) {
  const char* op = "hessian";
  check(o.top_k >= 1, op, "--top-k must be at least 1, got ", o.top_k);
  check(o.plot_out.empty() || o.density, op, "--plot draws the spectral density: add --density");
  if (!o.plot_out.empty()) probe::plot::check_plot_path(o.plot_out);  // a bad name fails now, not after the run
  const probe::EigenMethod method = o.method == "power" ? probe::EigenMethod::power : probe::EigenMethod::lanczos;
  const bool trace = o.trace || o.trace_samples > 0 || !o.diagonal.empty();
  const Device device = o.run.resolve();
  LoadedModel m = o.model.load(device, op);

  const std::unique_ptr<AnalysisBatches> data = read_analysis_batches(o.input, o.images, o.split, m, op);
  probe::BatchSource& batches = data->batches();
  const std::string& source = data->source;
  const int64_t images = data->images;

  probe::HessianOptions hopts;
  hopts.train_mode = o.train_mode;
  hopts.parameters = o.params;
  probe::EigenOptions eopts;
  eopts.k = o.top_k;
  eopts.method = method;
  eopts.order = method == probe::EigenMethod::lanczos ? probe::EigenOrder::largest_algebraic
                                                      : probe::EigenOrder::largest_magnitude;
  eopts.seed = o.seed;
  probe::TraceOptions topts;
  topts.samples = o.trace_samples;
  topts.seed = o.seed;
  const int64_t trace_bound = o.trace_samples > 0 ? o.trace_samples : topts.max_samples;

  const auto start = std::chrono::steady_clock::now();
  nlohmann::json j;
  j["model"] = m.spec.name;
  j["weights"] = o.model.weights;
  j["source"] = source;
  j["images"] = images;
  j["method"] = o.method;
  j["train_mode"] = o.train_mode;
  j["seed"] = o.seed;
  int64_t hvps = 0;
  std::printf("%s on %s\n", m.spec.name.c_str(), source.c_str());
  {
    probe::HessianOperator h(*m.model, batches, hopts);
    const probe::SymmetricOperator hop = h.as_operator();
    check(o.top_k <= h.size(), op, "--top-k ", o.top_k, " exceeds the ", h.size(), " parameters");
    check(method == probe::EigenMethod::power || o.top_k < h.size(), op, "--method lanczos needs --top-k below the ",
          h.size(), " parameters (--method power can take all of them)");
    const double loss = h.loss();
    j["parameters"] = h.size();
    j["loss"] = loss;
    std::printf("  %lld parameters, loss %.6g\n", (long long)h.size(), loss);

    probe::EigenResult top;
    {
      ProductProgress bar(o.top_k * eopts.max_iterations, "top eigenvalues (" + o.method + ")", images);
      eopts.progress = bar.callback();
      top = probe::top_eigenpairs(hop, eopts);
    }
    sort_descending(top);
    j["top_eigenvalues"] = top.eigenvalues;
    j["top_eigenvalues_converged"] = top.converged;
    std::printf("  top eigenvalues (%s):", o.method.c_str());
    for (size_t i = 0; i < top.eigenvalues.size(); ++i)
      std::printf(" %.6g%s", top.eigenvalues[i], top.converged[i] ? "" : " (not converged)");
    std::printf("\n");
    if (static_cast<int64_t>(top.eigenvalues.size()) < o.top_k)
      std::printf("  only %zu of %lld eigenpairs converged\n", top.eigenvalues.size(), (long long)o.top_k);
    if (!o.eigenvectors_out.empty()) {
      probe::save_eigenvectors(o.eigenvectors_out, h, top,
                               {{"model", m.spec.name}, {"weights", o.model.weights}, {"method", o.method}});
      std::printf("  wrote %s\n", o.eigenvectors_out.c_str());
    }

    if (trace) {
      probe::TraceOptions t = topts;
      t.diagonal = !o.diagonal.empty();
      probe::TraceResult tr;
      {
        ProductProgress bar(trace_bound, "trace (Hutchinson)", images);
        t.progress = bar.callback();
        tr = probe::hutchinson(hop, t);
      }
      j["trace"] = tr.trace;
      j["trace_stderr"] = tr.standard_error;  // NaN (JSON null) with one sample
      j["trace_samples"] = static_cast<int64_t>(tr.samples.size());
      std::printf("  trace %.6g +- %.3g (%zu samples)\n", tr.trace, tr.standard_error, tr.samples.size());
      if (t.diagonal) {
        save_safetensors(o.diagonal, h.named(tr.diagonal),
                         {{"model", m.spec.name}, {"weights", o.model.weights},
                          {"samples", std::to_string(tr.samples.size())}});
        std::printf("  wrote %s\n", o.diagonal.c_str());
      }
    }

    if (o.density) {
      probe::DensityOptions d;
      d.steps = o.density_steps;
      d.probes = o.density_probes;
      d.seed = o.seed;
      probe::SpectralQuadrature q;
      {
        ProductProgress bar(o.density_steps * o.density_probes, "spectral density (SLQ)", images);
        d.progress = bar.callback();
        q = probe::stochastic_lanczos_quadrature(hop, d);
      }
      const probe::SmoothedDensity esd = probe::smoothed_density(q);
      j["density"] = {{"grid", esd.grid}, {"values", esd.density}, {"sigma_squared", esd.sigma_squared},
                      {"steps", o.density_steps}, {"probes", o.density_probes}};
      std::printf("  spectral density on [%.6g, %.6g] (%lld Lanczos steps x %lld probes)\n", esd.grid.front(),
                  esd.grid.back(), (long long)o.density_steps, (long long)o.density_probes);
      if (!o.plot_out.empty()) {
        probe::plot::Axes axes;
        axes.title = "Hessian spectral density, " + m.spec.name;
        axes.x_label = "eigenvalue";
        axes.y_label = "density (log scale)";
        axes.log_y = true;
        probe::plot::Series curve;
        curve.x = esd.grid;
        curve.y = esd.density;
        probe::plot::line_plot(o.plot_out, axes, {curve});
        std::printf("  wrote %s\n", o.plot_out.c_str());
      }
    }
    hvps += h.hvp_count();
  }

  if (o.per_layer) {
    // Each block runs alone, so the bar counts blocks and memory is one block's analysis.
    const std::vector<probe::ParameterGroup> groups = selected_groups(*m.model, o.params);
    probe::PerLayerOptions popts;
    popts.eigen = eopts;
    popts.eigen.k = 1;
    popts.eigen.progress = nullptr;
    popts.trace_options = topts;
    nlohmann::json layers = nlohmann::json::object();
    Progress bar(static_cast<int64_t>(groups.size()), "per layer", true);
    std::printf("  per layer (top eigenvalue, trace):\n");
    for (size_t g = 0; g < groups.size(); ++g) {
      const probe::LayerAnalysis a = probe::per_layer_analysis(*m.model, batches, hopts, {groups[g]}, popts).at(0);
      const double top = a.eigen.eigenvalues.empty() ? std::nan("") : a.eigen.eigenvalues.front();
      layers[a.group.name] = {{"top_eigenvalue", top},
                              {"trace", a.trace.trace},
                              {"trace_stderr", a.trace.standard_error},
                              {"parameters", a.size}};
      std::printf("    %-32s %12.6g %12.6g\n", a.group.name.c_str(), top, a.trace.trace);
      hvps += a.hvps;
      bar.update(static_cast<int64_t>(g) + 1, double(a.hvps) * double(images));
    }
    bar.finish();
    j["per_layer"] = layers;
  }

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  j["hvp_count"] = hvps;
  j["seconds"] = seconds;
  std::printf("  %lld Hessian-vector products in %.1f s\n", (long long)hvps, seconds);
  if (!o.json_out.empty()) {
    write_json(o.json_out, j, op);
    std::printf("  wrote %s\n", o.json_out.c_str());
  }
  return 0;
}

}  // namespace

void add_hessian_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "hessian", "Top eigenvalues, trace, spectral density of the loss Hessian (PyHessian's analyses), per layer too");
  auto o = std::make_shared<HessianCommand>();
  o->model.add_to(*cmd);
  cmd->add_flag("--train-mode", o->train_mode, "Use batch statistics (training mode) instead of running statistics")
      ->group("Model");
  cmd->add_option("--params", o->params,
                  "Only the parameters under this name prefix (e.g. layer1 or fc.weight); repeat for several")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->group("Model");
  o->images.add_to(*cmd, dataset_names_text(), "the checkpoint's, else fashion-mnist");
  o->split.add_to(*cmd);
  o->input.add_to(*cmd);
  cmd->add_option("--top-k", o->top_k, "How many top eigenvalues")
      ->capture_default_str()
      ->group("Hessian");
  cmd->add_option("--method", o->method,
                  "lanczos: the k algebraically largest eigenvalues; power: PyHessian's power iteration, which finds "
                  "the k largest in magnitude (reported in descending order)")
      ->check(CLI::IsMember({"power", "lanczos"}))
      ->capture_default_str()
      ->group("Hessian");
  cmd->add_flag("--trace", o->trace, "Estimate the trace (Hutchinson)")->group("Hessian");
  cmd->add_option("--trace-samples", o->trace_samples,
                  "Exactly N Rademacher samples for the trace (implies --trace; default: PyHessian's stopping rule, "
                  "which often stops after a handful)")
      ->check(positive())
      ->group("Hessian");
  cmd->add_option("--diagonal", o->diagonal,
                  "Also estimate diag(H) with the trace's samples and write it to this safetensors file, one tensor "
                  "per parameter (implies --trace)")
      ->group("Hessian");
  cmd->add_flag("--density", o->density, "Spectral density by stochastic Lanczos quadrature")->group("Hessian");
  cmd->add_option("--density-steps", o->density_steps, "Lanczos steps per density probe")
      ->check(positive())
      ->capture_default_str()
      ->group("Hessian");
  cmd->add_option("--density-probes", o->density_probes, "Random probes averaged in the density")
      ->check(positive())
      ->capture_default_str()
      ->group("Hessian");
  cmd->add_flag("--per-layer", o->per_layer,
                "Top eigenvalue and trace of each module's diagonal block of the Hessian")
      ->group("Hessian");
  cmd->add_option("--seed", o->seed, "Seed of the random start and probe vectors")
      ->capture_default_str()
      ->group("Hessian");
  cmd->add_option("--save-eigenvectors", o->eigenvectors_out,
                  "safetensors file for the top eigenvectors (tensor <i>.<parameter>)")
      ->group("Output");
  cmd->add_option("--plot", o->plot_out,
                  "Draw the spectral density on a log scale into this .png or .svg file (needs --density)")
      ->group("Output");
  cmd->add_option("--json", o->json_out,
                  "Write one JSON object to this file (top_eigenvalues, trace, trace_stderr, trace_samples, "
                  "hvp_count, seconds, density, per_layer)")
      ->group("Output");
  o->run.add_to(*cmd);
  on_run(cmd, [o] { return run_hessian(*o); });
}

}  // namespace dmix::app
