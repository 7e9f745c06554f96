#include "apps/dmix/commands.h"

#include <map>

namespace dmix::app {

namespace {
std::map<CLI::App*, std::function<int()>>& runners() {
  static std::map<CLI::App*, std::function<int()>> r;
  return r;
}
}  // namespace

void on_run(CLI::App* cmd, std::function<int()> run) { runners()[cmd] = std::move(run); }

// The deepest parsed subcommand with a runner wins (`bench ops` over `bench`).
int run_selected(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands()) {
    if (!sub->get_subcommands().empty()) {
      const int status = run_selected(*sub);
      if (status != -1) return status;
    }
    auto it = runners().find(sub);
    if (it != runners().end()) return it->second();
  }
  return -1;
}

}  // namespace dmix::app
