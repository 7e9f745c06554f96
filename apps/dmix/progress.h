// A one-line progress bar (loss, images/s, ETA) on stderr, drawn only on a terminal.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace dmix::app {

class Progress {
 public:
  Progress(int64_t total, std::string label, bool enabled);
  void update(int64_t done, double loss, double images);
  void update(int64_t done, double images);  // no loss to show (e.g. scoring)
  void finish();

 private:
  int64_t total_;
  std::string label_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace dmix::app
