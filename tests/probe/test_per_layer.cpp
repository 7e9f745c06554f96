// Per-layer (block-diagonal) analyses: grouping by module and by tensor, block traces that
// sum to the full trace (exactly, from unit vectors; and Hutchinson's within its error),
// blocks too small for Lanczos.
#include <doctest/doctest.h>

#include <cmath>

#include "probe/per_layer.h"
#include "tests/probe/fixtures.h"

using namespace dmix;
using namespace dmix::probe;
using namespace dmix::probe::testing;

namespace {

// tr(H) as sum_i e_i.H e_i: n products, exact.
double exact_trace(HessianOperator& h) {
  double total = 0;
  for (int64_t i = 0; i < h.size(); ++i) {
    std::vector<double> e(static_cast<size_t>(h.size()), 0.0);
    e[static_cast<size_t>(i)] = 1;
    total += host(h.apply(Tensor::from_vector(e, {h.size()})))[static_cast<size_t>(i)];
  }
  return total;
}

struct CnnBatch {
  TinyCnn model;
  Tensor x, y;
  CnnBatch() {
    to_f64(model);
    Generator g(51);
    x = g.normal({4, 2, 6, 6}, 0, 1, DType::f64);
    y = Tensor::from_vector(std::vector<int64_t>{1, 0, 2, 2}, {4});
  }
};

}  // namespace

TEST_CASE("per_layer: groups by module and by tensor") {
  TinyCnn model;
  const std::vector<ParameterGroup> modules = parameter_groups(model, GroupBy::module);
  REQUIRE(modules.size() == 5);
  CHECK(modules[0].name == "conv1");
  CHECK(modules[0].parameters == std::vector<std::string>{"conv1.weight"});
  CHECK(modules[1].name == "bn1");
  CHECK(modules[1].parameters == std::vector<std::string>{"bn1.weight", "bn1.bias"});
  CHECK(modules[4].parameters == std::vector<std::string>{"fc.weight", "fc.bias"});
  const std::vector<ParameterGroup> tensors = parameter_groups(model, GroupBy::tensor);
  REQUIRE(tensors.size() == 8);
  CHECK(tensors[2].name == "bn1.bias");
  CHECK(tensors[2].parameters == std::vector<std::string>{"bn1.bias"});
}

TEST_CASE("per_layer: the blocks' traces sum to the full trace") {
  CnnBatch f;
  FixedBatch batch(f.x, f.y);
  HessianOperator full(f.model, batch);
  const double total = exact_trace(full);
  double blocks = 0;
  for (const ParameterGroup& g : parameter_groups(f.model, GroupBy::module)) {
    HessianOptions o;
    o.parameters = g.parameters;
    HessianOperator block(f.model, batch, o);
    blocks += exact_trace(block);
  }
  CHECK(std::abs(total) > 1e-3);
  CHECK(blocks == doctest::Approx(total).epsilon(1e-10));

  // Hutchinson, per block: the sum lies within the combined standard error.
  PerLayerOptions po;
  po.eigenvalues = false;
  po.trace_options.samples = 60;
  const std::vector<LayerAnalysis> layers = per_layer_analysis(f.model, batch, {}, {}, po);
  REQUIRE(layers.size() == 5);
  double estimate = 0, variance = 0;
  for (const LayerAnalysis& l : layers) {
    CHECK(l.hvps == 60);
    CHECK(l.trace.samples.size() == 60);
    estimate += l.trace.trace;
    variance += l.trace.standard_error * l.trace.standard_error;
  }
  CHECK(std::abs(estimate - total) < 4 * std::sqrt(variance) + 1e-12);
}

TEST_CASE("per_layer: eigenvalues and densities per tensor, small blocks solved whole") {
  CnnBatch f;
  FixedBatch batch(f.x, f.y);
  PerLayerOptions po;
  po.trace = false;
  po.density = true;
  po.density_options.steps = 10;
  po.eigen.k = 3;
  po.eigen.method = EigenMethod::lanczos;
  po.eigen.tol = 1e-8;
  po.eigen.max_iterations = 1000;
  const std::vector<LayerAnalysis> layers =
      per_layer_analysis(f.model, batch, {}, parameter_groups(f.model, GroupBy::tensor), po);
  REQUIRE(layers.size() == 8);
  for (const LayerAnalysis& l : layers) {
    CAPTURE(l.group.name);
    REQUIRE(l.eigen.eigenvalues.size() == 3);
    CHECK(l.density.nodes.size() == 1);
    CHECK(l.density.nodes[0].size() == size_t(std::min<int64_t>(10, l.size)));
    // The largest |eigenvalue| bounds every quadrature node (to power iteration's 1e-6 bias on
    // the small blocks, see test_eigen).
    for (double node : l.density.nodes[0]) CHECK(std::abs(node) <= std::abs(l.eigen.eigenvalues[0]) * (1 + 1e-5));
  }
  // bn1.bias has 3 entries: k = 3 is all of it (power iteration), so the eigenvalues sum to its trace.
  const LayerAnalysis& bias = layers[2];
  REQUIRE(bias.group.name == "bn1.bias");
  HessianOptions o;
  o.parameters = {"bn1.bias"};
  HessianOperator block(f.model, batch, o);
  const double trace = exact_trace(block);
  CHECK(bias.eigen.eigenvalues[0] + bias.eigen.eigenvalues[1] + bias.eigen.eigenvalues[2] ==
        doctest::Approx(trace).epsilon(1e-6));
}
