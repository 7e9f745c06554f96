// The subcommands of the dmix CLI. Each add_* registers its options and a callback; the
// flags several commands share come from the bundles in options.h.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace dmix::app {

// Number checks whose error says what is wrong in plain words (CLI11's own print
// the full double range).
inline CLI::Validator positive() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        try {
          return std::stod(v) > 0 ? "" : "must be positive, got " + v;
        } catch (...) {
          return "must be a number, got " + v;
        }
      },
      "POSITIVE");
}
inline CLI::Validator non_negative() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        try {
          return std::stod(v) >= 0 ? "" : "must be zero or more, got " + v;
        } catch (...) {
          return "must be a number, got " + v;
        }
      },
      "NON-NEGATIVE");
}

void add_bench_command(CLI::App& app);
void add_bench_mix_command(CLI::App& bench);  // `dmix bench mix`, under the bench command
void add_train_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_augment_command(CLI::App& app);
void add_subsample_command(CLI::App& app);
void add_hessian_command(CLI::App& app);
void add_landscape_command(CLI::App& app);
void add_attack_command(CLI::App& app);

// Runs the callback of the subcommand that was parsed; returns its exit status, or -1
// when no parsed subcommand has a callback.
int run_selected(CLI::App& app);
// Registers `run` as what happens when `cmd` is selected.
void on_run(CLI::App* cmd, std::function<int()> run);

}  // namespace dmix::app
