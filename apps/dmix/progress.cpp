#include "apps/dmix/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace dmix::app {

Progress::Progress(int64_t total, std::string label, bool enabled)
    : total_(total), label_(std::move(label)), enabled_(enabled && isatty(fileno(stderr))) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::update(int64_t done, double images) { update(done, std::nan(""), images); }

void Progress::update(int64_t done, double loss, double images) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = done > 0 ? elapsed * double(total_ - done) / double(done) : 0.0;
  const int width = 30, filled = int(width * done / std::max<int64_t>(total_, 1));
  char loss_text[32] = "";
  if (!std::isnan(loss)) std::snprintf(loss_text, sizeof loss_text, "loss %.4f ", loss);
  std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %s%.0f img/s ETA %.0fs ", label_.c_str(),
               std::string(filled, '=').c_str(), std::string(width - filled, ' ').c_str(), (long long)done,
               (long long)total_, loss_text, elapsed > 0 ? images / elapsed : 0.0, eta);
  std::fflush(stderr);
}

void Progress::finish() {
  if (enabled_) std::fprintf(stderr, "\r\033[K");
}

}  // namespace dmix::app
