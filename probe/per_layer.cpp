// Per-layer (block-diagonal) Hessian analyses (see per_layer.h).
#include "probe/per_layer.h"

#include <algorithm>

#include "engine/error.h"

namespace dmix::probe {

std::vector<ParameterGroup> parameter_groups(const nn::Module& model, GroupBy by) {
  std::vector<ParameterGroup> groups;
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    std::string key = name;
    if (by == GroupBy::module) {
      const size_t dot = name.rfind('.');
      key = dot == std::string::npos ? std::string() : name.substr(0, dot);
    }
    auto it = std::find_if(groups.begin(), groups.end(), [&](const ParameterGroup& g) { return g.name == key; });
    if (it == groups.end()) {
      groups.push_back({key, {}});
      it = groups.end() - 1;
    }
    it->parameters.push_back(name);
  }
  return groups;
}

std::vector<LayerAnalysis> per_layer_analysis(nn::Module& model, BatchSource& batches, const HessianOptions& hessian,
                                              std::vector<ParameterGroup> groups, const PerLayerOptions& options) {
  if (groups.empty()) groups = parameter_groups(model, GroupBy::module);
  check(!groups.empty(), "per_layer", "the model has no parameter that requires grad");
  std::vector<LayerAnalysis> out;
  for (const ParameterGroup& group : groups) {
    check(!group.parameters.empty(), "per_layer", "group '", group.name, "' names no parameter");
    HessianOptions block = hessian;
    block.parameters = group.parameters;
    HessianOperator h(model, batches, block);
    const SymmetricOperator op = h.as_operator();
    LayerAnalysis layer;
    layer.group = group;
    layer.size = h.size();
    if (options.eigenvalues) {
      EigenOptions eigen = options.eigen;
      eigen.k = std::min(eigen.k, h.size());
      if (eigen.method == EigenMethod::lanczos && eigen.k >= h.size()) {  // all of a tiny block: Lanczos needs k < n
        eigen.method = EigenMethod::power;
        eigen.order = EigenOrder::largest_magnitude;
      }
      layer.eigen = top_eigenpairs(op, eigen);
    }
    if (options.trace) layer.trace = hutchinson(op, options.trace_options);
    if (options.density) layer.density = stochastic_lanczos_quadrature(op, options.density_options);
    layer.hvps = h.hvp_count();
    out.push_back(std::move(layer));
  }
  return out;
}

}  // namespace dmix::probe
