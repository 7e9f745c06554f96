#include "apps/dmix/commands.h"
namespace dmix::app {
void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "measure op workloads");
  on_run(cmd, [] { return 0; });
}
}  // namespace dmix::app
