// Learning-rate schedules as pure functions of training progress, so a resumed run gets
// exactly the rate it would have had. Progress is measured in epochs (fractional when
// stepping per iteration: epoch + iteration / iterations_per_epoch).
#pragma once
#include <string>
#include <vector>

namespace dmix::nn {

struct LrSchedule {
  enum class Kind { Constant, MultiStep, Cosine };
  Kind kind = Kind::Constant;
  double base_lr = 0.1;
  double total_epochs = 1;
  // MultiStep: milestones in epochs (a value in (0,1) is a fraction of total_epochs), factor gamma at each.
  std::vector<double> milestones;
  double gamma = 0.1;
  double min_lr = 0.0;         // Cosine floor
  double warmup_epochs = 0.0;  // linear ramp from 0 to the schedule's value

  double lr_at(double epoch) const;
  // "multistep:0.75,0.9" / "cosine" / "constant"; throws dmix::Error on anything else.
  static LrSchedule parse(const std::string& spec, double base_lr, double total_epochs);
};

}  // namespace dmix::nn
