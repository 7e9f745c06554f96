// The Hessian's diagonal blocks, one per layer: top eigenvalues, trace and spectral
// density of H_bb, the Hessian of the loss with respect to one group of parameters with
// every other parameter held fixed (the blocks of the block-diagonal approximation).
// PyHessian users ask for this per layer or per module (its issues #9, #10).
//
// How: one HessianOperator per group, restricted to that group's parameters, so each
// product differentiates only through what the group needs; then the same algorithms as
// for the whole model. The block traces sum to the full trace (the diagonal is shared), so
// they say where the curvature sits.
// Cost: per group, the products its analyses make; groups run one after the other, so
// memory is that of one group's analysis.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.h"
#include "probe/density.h"
#include "probe/eigen.h"
#include "probe/hvp.h"
#include "probe/trace.h"

namespace dmix::probe {

// tensor: every parameter tensor its own group ("layer1.0.conv1.weight");
// module: the parameters of one module together ("layer1.0.bn1": its weight and bias).
enum class GroupBy { tensor, module };

struct ParameterGroup {
  std::string name;                     // the tensor name, or the module's ("" for the model's own parameters)
  std::vector<std::string> parameters;  // full parameter names
};

// The groups of the parameters that require grad, in registration order.
std::vector<ParameterGroup> parameter_groups(const nn::Module& model, GroupBy by);

struct PerLayerOptions {
  bool eigenvalues = true;  // top-k with `eigen` (k is capped at each block's size; a block too
                            // small for Lanczos's k < n is solved by power iteration)
  bool trace = true;        // Hutchinson with `trace_options`
  bool density = false;     // SLQ with `density_options`
  EigenOptions eigen;
  TraceOptions trace_options;
  DensityOptions density_options;
};

struct LayerAnalysis {
  ParameterGroup group;
  int64_t size = 0;            // parameters in the block
  EigenResult eigen;           // with options.eigenvalues
  TraceResult trace;           // with options.trace
  SpectralQuadrature density;  // with options.density
  int64_t hvps = 0;            // products for this block, all analyses together
};

// `hessian.parameters` is ignored: each block selects its own group. An empty `groups`
// means parameter_groups(model, GroupBy::module).
std::vector<LayerAnalysis> per_layer_analysis(nn::Module& model, BatchSource& batches, const HessianOptions& hessian,
                                              std::vector<ParameterGroup> groups, const PerLayerOptions& options);

}  // namespace dmix::probe
