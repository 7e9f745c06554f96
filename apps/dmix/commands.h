// The subcommands of the dmix CLI. Each add_* registers its options and a callback.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace dmix::app {

void add_bench_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_model_commands(CLI::App& app);  // info, eval, predict
void add_augment_command(CLI::App& app);

// Runs the callback of the subcommand that was parsed; returns its exit status, or -1
// when no parsed subcommand has a callback.
int run_selected(CLI::App& app);
// Registers `run` as what happens when `cmd` is selected.
void on_run(CLI::App* cmd, std::function<int()> run);

}  // namespace dmix::app
