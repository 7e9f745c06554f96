#include "nn/schedule.h"

#include <cmath>
#include <sstream>

#include "engine/error.h"

namespace dmix::nn {

double LrSchedule::lr_at(double epoch) const {
  double lr = base_lr;
  switch (kind) {
    case Kind::Constant: break;
    case Kind::MultiStep:
      for (double m : milestones) {
        const double at = (m > 0 && m < 1) ? m * total_epochs : m;
        if (epoch >= at - 1e-9) lr *= gamma;
      }
      break;
    case Kind::Cosine: {
      const double t = std::min(1.0, std::max(0.0, epoch / total_epochs));
      lr = min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(M_PI * t));
      break;
    }
  }
  if (warmup_epochs > 0 && epoch < warmup_epochs) lr *= epoch / warmup_epochs;
  return lr;
}

LrSchedule LrSchedule::parse(const std::string& spec, double base_lr, double total_epochs) {
  LrSchedule s;
  s.base_lr = base_lr;
  s.total_epochs = total_epochs;
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string args = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "constant") {
    s.kind = Kind::Constant;
  } else if (kind == "cosine") {
    s.kind = Kind::Cosine;
    if (!args.empty()) s.min_lr = std::stod(args);
  } else if (kind == "multistep") {
    s.kind = Kind::MultiStep;
    std::stringstream ss(args);
    std::string item;
    while (std::getline(ss, item, ',')) {
      try {
        s.milestones.push_back(std::stod(item));
      } catch (...) {
        fail("lr schedule", "bad milestone '", item, "' in '", spec, "'");
      }
    }
    check(!s.milestones.empty(), "lr schedule", "multistep needs milestones, e.g. multistep:0.75,0.9");
  } else {
    fail("lr schedule", "unknown schedule '", spec, "' (expected constant, cosine[:min_lr] or multistep:m1,m2,...)");
  }
  return s;
}

}  // namespace dmix::nn
