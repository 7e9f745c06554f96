// The eigensolver by name, and eigenvectors written with the model's parameter names.
#include "probe/eigen.h"

#include <cstdio>

#include "engine/error.h"
#include "engine/safetensors.h"

namespace dmix::probe {

EigenResult top_eigenpairs(const SymmetricOperator& op, const EigenOptions& options) {
  return options.method == EigenMethod::power ? power_iteration(op, options) : lanczos_eigenpairs(op, options);
}

void save_eigenvectors(const std::string& path, const HessianOperator& op, const EigenResult& result,
                       std::map<std::string, std::string> metadata) {
  check(!result.eigenvectors.empty(), "save_eigenvectors", "no eigenvector to write to ", path);
  std::map<std::string, Tensor> tensors;
  std::string values = "[";
  for (size_t i = 0; i < result.eigenvectors.size(); ++i) {
    for (auto& [name, t] : op.named(result.eigenvectors[i])) tensors[std::to_string(i) + "." + name] = t;
    char number[32];
    std::snprintf(number, sizeof number, "%.17g", result.eigenvalues.at(i));
    values += (i ? ", " : "") + std::string(number);
  }
  metadata["eigenvalues"] = values + "]";
  metadata["parameters"] = std::to_string(op.parameter_names().size());
  save_safetensors(path, tensors, metadata);
}

}  // namespace dmix::probe
