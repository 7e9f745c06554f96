// dmix: the command-line front end. Each subcommand lives in its own file and registers
// itself here; errors become one line on stderr and a non-zero exit status.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include "apps/dmix/commands.h"
#include "dmix/version.h"
#include "engine/error.h"
#include "kernels/cpu/threads.h"

int main(int argc, char** argv) {
  // One try around everything, CLI11's setup included: whatever throws becomes the one-line error.
  try {
    // Tiny gradients (mixed-label runs produce them) would otherwise run ~100x slower as denormals.
    dmix::kernels::cpu::set_flush_denormal(true);
    CLI::App app{"dmix: a from-scratch deep-learning engine (C++17/CUDA) for the K-image mixing paper"};
    app.require_subcommand(1);
    // A flag given twice takes its last value, so scripts can append overrides.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.set_version_flag("--version", std::string("dmix ") + dmix::kVersion);
    // A bad flag is one line too, like every other error (CLI11 adds a second line by default).
    app.failure_message([](const CLI::App*, const CLI::Error& e) {
      return std::string("dmix: error: ") + e.what() + " (see --help)\n";
    });
    dmix::app::add_train_command(app);
    dmix::app::add_info_command(app);
    dmix::app::add_eval_command(app);
    dmix::app::add_predict_command(app);
    dmix::app::add_augment_command(app);
    dmix::app::add_subsample_command(app);
    dmix::app::add_hessian_command(app);
    dmix::app::add_landscape_command(app);
    dmix::app::add_attack_command(app);
    dmix::app::add_bench_command(app);
    dmix::app::add_bench_mix_command(*app.get_subcommand("bench"));
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    const int status = dmix::app::run_selected(app);
    return status == -1 ? 2 : status;
  } catch (const dmix::Error& e) {
    std::fprintf(stderr, "dmix: error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dmix: error: %s\n", e.what());
  }
  return 1;
}
