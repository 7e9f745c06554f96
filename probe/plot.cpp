// Plots through PLplot's cairo driver (pngcairo, svgcairo).
//
// PLplot keeps its state in globals (the current stream, the exit and abort handlers), so
// every figure runs under one mutex on a stream of its own, from plmkstrm to plend1. PLplot
// answers some failures by printing and calling exit(): its exit and abort handlers are
// set to throw instead, and what PLplot would refuse (an unknown device, a file it cannot
// open, empty or degenerate ranges) is checked here first, so it never gets to prompt,
// print or exit. A figure is drawn into a temporary file beside its target and renamed
// over it when complete: a failed plot leaves no file and never spoils an earlier one.
#include "probe/plot.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <plplot.h>

#include "engine/error.h"

namespace dmix::probe::plot {

namespace {

constexpr const char* kOp = "plot";

// ---- colours ------------------------------------------------------------------------------
// cmap0 indices. The series take Tableau's ten colours (distinct, and readable by most colour-
// blind readers); their bands the same colours, translucent.
constexpr int kBackground = 0, kInk = 1, kGrid = 2, kMuted = 3, kContour = 4, kGap = 5, kGapEdge = 6;
constexpr int kFirstSeries = 8, kFirstBand = 18, kPaletteSize = 10, kColours = 32;
constexpr std::array<std::array<int, 3>, kPaletteSize> kPalette = {{{31, 119, 180},
                                                                    {255, 127, 14},
                                                                    {44, 160, 44},
                                                                    {214, 39, 40},
                                                                    {148, 103, 189},
                                                                    {140, 86, 75},
                                                                    {227, 119, 194},
                                                                    {127, 127, 127},
                                                                    {188, 189, 34},
                                                                    {23, 190, 207}}};
constexpr double kBandAlpha = 0.22;

int series_colour(size_t i) { return kFirstSeries + static_cast<int>(i % kPaletteSize); }
int band_colour(size_t i) { return kFirstBand + static_cast<int>(i % kPaletteSize); }

void set_palette() {
  plscmap0n(kColours);
  plscol0a(kBackground, 255, 255, 255, 1.0);
  plscol0a(kInk, 34, 34, 34, 1.0);
  plscol0a(kGrid, 222, 222, 222, 1.0);
  plscol0a(kMuted, 120, 120, 120, 1.0);
  plscol0a(kContour, 20, 20, 20, 0.55);
  plscol0a(kGap, 214, 39, 40, 0.28);
  plscol0a(kGapEdge, 214, 39, 40, 0.9);
  for (int i = 0; i < kPaletteSize; ++i) {
    const auto& c = kPalette[static_cast<size_t>(i)];
    plscol0a(kFirstSeries + i, c[0], c[1], c[2], 1.0);
    plscol0a(kFirstBand + i, c[0], c[1], c[2], kBandAlpha);
  }
  // cmap1: viridis, perceptually uniform and readable in grey, for heat maps and surfaces.
  const std::array<double, 5> at = {0.0, 0.25, 0.5, 0.75, 1.0};
  const std::array<double, 5> r = {68 / 255., 59 / 255., 33 / 255., 94 / 255., 253 / 255.};
  const std::array<double, 5> g = {1 / 255., 82 / 255., 145 / 255., 201 / 255., 231 / 255.};
  const std::array<double, 5> b = {84 / 255., 139 / 255., 140 / 255., 98 / 255., 37 / 255.};
  plscmap1n(256);
  plscmap1l(1, 5, at.data(), r.data(), g.data(), b.data(), nullptr);
}

// ---- text ---------------------------------------------------------------------------------

// PLplot reads '#' as the start of an escape sequence (#u superscript, #g Greek, ...); a
// user's text is drawn as written.
std::string plain(const std::string& text) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '#') out += '#';
  }
  return out;
}

// A PLplot label's width in character heights, roughly: a glyph of the sans font is about
// 0.65 of the height wide, a superscript about 0.58. Enough to leave room beside tick labels.
double label_width(const std::string& label) {
  double width = 0;
  bool raised = false;
  for (size_t i = 0; i < label.size(); ++i) {
    if (label[i] == '#' && i + 1 < label.size()) {
      const char e = label[++i];
      if (e == 'u') raised = true;
      if (e == 'd') raised = false;
      if (e != '#') continue;
    }
    if ((static_cast<unsigned char>(label[i]) & 0xC0) == 0x80) continue;  // UTF-8 continuation byte
    width += raised ? 0.58 : 0.65;
  }
  return width;
}

// ---- ticks --------------------------------------------------------------------------------

// An axis: its range in world coordinates (log10 of the values on a log axis), the tick
// step, and how its labels are written.
struct Axis {
  double lo = 0, hi = 1;
  double step = 0.2;
  bool log = false;
  int decimals = 1;
  int exponent = 0;  // labels are value / 10^exponent, the power written once beside the axis

  std::vector<double> ticks() const {
    std::vector<double> t;
    const double eps = step * 1e-6;
    for (double v = std::ceil((lo - eps) / step) * step; v <= hi + eps; v += step) t.push_back(v);
    return t;
  }

  std::string label(double value) const {
    char buf[64];
    if (log) {
      const long k = std::lround(value);
      if (k == 0) return "1";
      if (k == 1) return "10";
      std::snprintf(buf, sizeof buf, "10#u%ld#d", k);
      return buf;
    }
    if (std::fabs(value) < step * 1e-6) value = 0;  // not "-0.00" or "1.2e-17"
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value / std::pow(10.0, exponent));
    return buf;
  }

  // "×10^k" for an axis whose labels are scaled, else "".
  std::string multiplier() const {
    if (exponent == 0) return "";
    char buf[32];
    std::snprintf(buf, sizeof buf, "×10#u%d#d", exponent);
    return buf;
  }

  double widest_label() const {
    double w = 0;
    for (double t : ticks()) w = std::max(w, label_width(label(t)));
    return w;
  }
};

// A linear axis over [lo, hi] with about `target` ticks at 1, 2, 2.5 or 5 times a power of ten.
Axis linear_axis(double lo, double hi, int target = 6) {
  Axis a;
  a.lo = lo;
  a.hi = hi;
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  const double mantissa = f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7.5 ? 5 : 10;
  a.step = mantissa * magnitude;
  const int step_exponent = static_cast<int>(std::floor(std::log10(a.step) + 1e-9));
  const int extra = mantissa == 2.5 ? 1 : 0;
  a.decimals = std::max(0, -step_exponent + extra);
  // Very large or very small values: labels of a few digits, times a power of ten.
  const double largest = std::max(std::fabs(lo), std::fabs(hi));
  if (largest >= 1e5 || a.decimals > 4) {
    a.exponent = static_cast<int>(std::floor(std::log10(largest) + 1e-9));
    a.decimals = std::max(0, a.exponent - step_exponent + extra);
  }
  return a;
}

// The linear axis with the most ticks (up to `target`) whose labels fit side by side along
// `length` character heights.
Axis fitted_axis(double lo, double hi, double length, int target = 6) {
  Axis a = linear_axis(lo, hi, target);
  for (int t = target - 1; t >= 2; --t) {
    if (double(a.ticks().size()) * (a.widest_label() + 1.2) <= length) break;
    a = linear_axis(lo, hi, t);
  }
  return a;
}

// A log axis over [lo, hi] (log10 units), widened to whole decades, ticks at every decade or
// every few where there are many.
Axis log_axis(double lo, double hi) {
  Axis a;
  a.log = true;
  a.lo = std::floor(lo + 1e-9);
  a.hi = std::ceil(hi - 1e-9);
  if (a.hi <= a.lo) a.hi = a.lo + 1;
  const double decades = a.hi - a.lo;
  a.step = decades <= 8 ? 1 : decades <= 16 ? 2 : std::ceil(decades / 8);
  return a;
}

// [lo, hi] with a margin, made non-empty where all values are equal.
std::pair<double, double> padded(double lo, double hi, double margin) {
  if (hi <= lo) {
    const double half = lo == 0 ? 0.5 : std::fabs(lo) * 0.05;
    return {lo - half, hi + half};
  }
  const double pad = (hi - lo) * margin;
  return {lo - pad, hi + pad};
}

// Tick labels come from the Axis being drawn: plbox calls this for each tick.
struct LabelContext {
  const Axis* x = nullptr;
  const Axis* y = nullptr;
};

void write_label(PLINT axis, PLFLT value, char* out, PLINT length, PLPointer data) {
  const auto* context = static_cast<const LabelContext*>(data);
  const Axis* a = axis == PL_X_AXIS ? context->x : context->y;
  const std::string text = a ? a->label(value) : std::to_string(value);
  std::snprintf(out, static_cast<size_t>(length), "%s", text.c_str());
}

// ---- the figure ---------------------------------------------------------------------------

std::mutex& plplot_mutex() {
  static std::mutex m;
  return m;
}

// What PLplot's exit and abort handlers throw, through PLplot's C frames (built with unwind
// tables, as Debian builds every library), instead of ending the process.
struct PlplotFailure {
  std::string message;
};
int throw_instead_of_exit(const char* message) { throw PlplotFailure{message ? message : ""}; }
void throw_instead_of_abort(const char* message) { throw PlplotFailure{message ? message : ""}; }

bool has_driver(const char* name) {
  int count = 256;
  std::vector<const char*> menu(static_cast<size_t>(count)), names(static_cast<size_t>(count));
  const char** menu_p = menu.data();
  const char** names_p = names.data();
  plgDevs(&menu_p, &names_p, &count);
  for (int i = 0; i < count; ++i)
    if (names[static_cast<size_t>(i)] && std::strcmp(names[static_cast<size_t>(i)], name) == 0) return true;
  return false;
}

enum class Format { png, svg };

// The process's umask, read without changing it (umask() sets it, racing with other threads).
mode_t process_umask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
  return 022;
}

Format format_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find_last_of('.');
  std::string ext = dot == std::string::npos || (slash != std::string::npos && dot < slash) ? "" : path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".png") return Format::png;
  if (ext == ".svg") return Format::svg;
  fail(kOp, path, ": unknown file type", ext.empty() ? std::string() : " '" + ext + "'",
       "; a plot is written as .png or .svg");
}

// A new file beside `path`, made by mkstemp and so never an existing one; its name.
std::string temporary_beside(const std::string& path) {
  std::string pattern = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(pattern.data());
  check(fd >= 0, kOp, "cannot write ", path, ": ", std::strerror(errno));
  ::fchmod(fd, 0666 & ~process_umask());  // mkstemp's 0600 would hide the plot from the user's group
  ::close(fd);
  return pattern;
}

std::string xml_escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// One figure on its own PLplot stream, under the mutex from construction to destruction.
class Figure {
 public:
  Figure(const std::string& path, const Axes& axes) : lock_(plplot_mutex()), path_(path) {
    check(axes.width >= 64 && axes.width <= 16384 && axes.height >= 64 && axes.height <= 16384, kOp, path,
          ": a figure of ", axes.width, "x", axes.height, " is outside 64..16384 on a side");
    format_ = format_of(path);
    const char* device = format_ == Format::png ? "pngcairo" : "svgcairo";
    plgstrm(&previous_stream_);
    plsexit(throw_instead_of_exit);  // before the first PLplot call: reading the driver list can exit too
    plsabort(throw_instead_of_abort);
    try {
      bool found = false;
      guarded([&] { found = has_driver(device); });
      check(found, kOp, path, ": PLplot's ", device, " driver is not installed (plplot-driver-cairo)");
      temporary_ = temporary_beside(path);
      guarded([&] {
        plmkstrm(&stream_);
        plsdev(device);
        plsfnam(temporary_.c_str());
        plspage(0, 0, axes.width, axes.height, 0, 0);
        set_palette();
        plinit();
        pladv(0);
        // Text grows with the figure (the driver's character height is fixed in millimetres).
        scale_ = std::clamp(std::sqrt(double(axes.width) * axes.height / (800.0 * 600.0)), 0.7, 4.0);
        plschr(0, scale_);
        plslabelfunc(write_label, &labels_);
      });
    } catch (...) {
      close();  // no destructor runs for an object whose constructor throws
      throw;
    }
  }

  ~Figure() { close(); }

  Figure(const Figure&) = delete;
  Figure& operator=(const Figure&) = delete;

  // Runs PLplot calls, turning a failure PLplot reports into a dmix::Error naming the file.
  template <class F>
  void guarded(F&& draw) {
    try {
      draw();
    } catch (const PlplotFailure& f) {
      fail(kOp, "cannot draw ", path_, ": PLplot: ", f.message);
    }
  }

  double scale() const { return scale_; }

  // One character height as a fraction of the page's width and height.
  std::pair<double, double> char_size() const {
    PLFLT default_height, height, x0, x1, y0, y1;
    plgchr(&default_height, &height);
    plgspa(&x0, &x1, &y0, &y1);
    return {height / (x1 - x0), height / (y1 - y0)};
  }

  // A viewport with margins in character heights.
  void viewport(double left, double right, double bottom, double top) const {
    const auto [cx, cy] = char_size();
    plvpor(left * cx, 1 - right * cx, bottom * cy, 1 - top * cy);
  }

  void labels_from(const Axis* x, const Axis* y) {
    labels_.x = x;
    labels_.y = y;
  }

  // The figure's title above everything, a little larger than the rest of the text.
  void title(const std::string& text) const {
    if (text.empty()) return;
    plvpor(0, 1, 0, 1);
    plwind(0, 1, 0, 1);
    plcol0(kInk);
    plschr(0, scale_ * 1.2);
    plmtex("t", -1.6, 0.5, 0.5, plain(text).c_str());
    plschr(0, scale_);
  }

  // Ends the stream (the driver writes the file), adds the SVG's text and moves the file in place.
  void finish(const std::string& title, const std::string& description) {
    const PLINT stream = stream_;
    stream_ = -1;
    guarded([&] {
      plsstrm(stream);
      plend1();
    });
    plsstrm(previous_stream_);
    if (format_ == Format::svg) add_svg_text(title, description);
    check(std::rename(temporary_.c_str(), path_.c_str()) == 0, kOp, "cannot write ", path_, ": ", std::strerror(errno));
    temporary_.clear();
  }

 private:
  // cairo draws text as glyph outlines, so an SVG would hold no text a reader, a screen reader
  // or a search could find: the title and the axes' names go into <title> and <desc>.
  void add_svg_text(const std::string& title, const std::string& description) const {
    std::string svg;
    {
      std::ifstream in(temporary_, std::ios::binary);
      std::ostringstream s;
      s << in.rdbuf();
      svg = s.str();
    }
    const size_t root = svg.find("<svg");
    const size_t end = root == std::string::npos ? root : svg.find('>', root);
    check(end != std::string::npos, kOp, "cannot write ", path_, ": the SVG driver wrote no <svg> element");
    std::string text = "\n<title>" + xml_escaped(title) + "</title>\n<desc>" + xml_escaped(description) + "</desc>";
    svg.insert(end + 1, text);
    std::ofstream out(temporary_, std::ios::binary | std::ios::trunc);
    out << svg;
    out.close();
    check(bool(out), kOp, "cannot write ", path_, ": ", std::strerror(errno));
  }

  // Ends the stream if it is still open, restores PLplot's defaults and removes the temporary.
  void close() noexcept {
    if (stream_ >= 0) {
      try {
        plsstrm(stream_);
        plend1();
      } catch (const PlplotFailure&) {  // the figure is failing already; its error is the one to report
      }
      stream_ = -1;
    }
    plsstrm(previous_stream_);
    plsexit(nullptr);
    plsabort(nullptr);
    if (!temporary_.empty()) std::remove(temporary_.c_str());
  }

  std::unique_lock<std::mutex> lock_;
  std::string path_, temporary_;
  Format format_ = Format::png;
  PLINT previous_stream_ = 0, stream_ = -1;
  double scale_ = 1;
  LabelContext labels_;
};

// The frame of a 2-D panel: light grid lines, then the box, ticks and tick labels on top.
void draw_frame(Figure& fig, const Axis& x, const Axis& y, bool x_numbers = true, bool y_numbers = true,
                bool grid = true) {
  fig.labels_from(&x, &y);
  const std::string log = y.log ? "l" : "";
  plwidth(0.8 * fig.scale());
  if (grid) {
    plcol0(kGrid);
    plbox("g", x.step, 0, ("g" + log).c_str(), y.step, 0);
  }
  plcol0(kInk);
  plwidth(1.0 * fig.scale());
  const std::string xo = std::string("bcsto") + (x_numbers ? "n" : "");
  const std::string yo = std::string("bcstvo") + (y_numbers ? "n" : "") + log;
  plbox(xo.c_str(), x.step, 0, yo.c_str(), y.step, 0);
  if (x_numbers && x.exponent != 0) plmtex("b", 3.1, 1.0, 1.0, x.multiplier().c_str());
  if (y_numbers && y.exponent != 0) plmtex("t", 0.6, 0.0, 0.5, y.multiplier().c_str());
}

void axis_names(const std::string& x_label, const std::string& y_label, double y_offset) {
  plcol0(kInk);
  if (!x_label.empty()) plmtex("b", 3.1, 0.5, 0.5, plain(x_label).c_str());
  if (!y_label.empty()) plmtex("l", y_offset, 0.5, 0.5, plain(y_label).c_str());
}

// Margins (character heights) that fit an axis's tick labels and names around a panel.
// The y axis's name stands kNameGap character heights from the axis, beyond its widest tick label.
constexpr double kNameGap = 1.7;
double left_margin(const Axis& y, bool y_label) { return y.widest_label() + kNameGap + (y_label ? 1.8 : 0.0); }
double y_name_offset(const Axis& y) { return y.widest_label() + kNameGap; }

bool finite(double v) { return std::isfinite(v); }

std::string series_name(const Series& s, size_t i) {
  return "series " + std::to_string(i) + (s.label.empty() ? "" : " ('" + s.label + "')");
}

std::string grid_name(const Grid2d& g, size_t i) {
  return "grid " + std::to_string(i) + (g.label.empty() ? "" : " ('" + g.label + "')");
}

// Where the legend goes: the corner of the panel that the curves cross least.
PLINT emptiest_corner(const std::vector<Series>& series, const Axis& x, const Axis& y) {
  const std::array<PLINT, 4> corners = {PL_POSITION_TOP | PL_POSITION_RIGHT, PL_POSITION_TOP | PL_POSITION_LEFT,
                                        PL_POSITION_BOTTOM | PL_POSITION_RIGHT, PL_POSITION_BOTTOM | PL_POSITION_LEFT};
  std::array<size_t, 4> hits{};
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      const double v = y.log ? (s.y[i] > 0 ? std::log10(s.y[i]) : -INFINITY) : s.y[i];
      if (!finite(s.x[i]) || !finite(v)) continue;
      const double u = (s.x[i] - x.lo) / (x.hi - x.lo), w = (v - y.lo) / (y.hi - y.lo);
      const bool right = u > 0.55, left = u < 0.45;
      const bool top = w > 0.6, bottom = w < 0.4;
      hits[0] += top && right;
      hits[1] += top && left;
      hits[2] += bottom && right;
      hits[3] += bottom && left;
    }
  return corners[static_cast<size_t>(std::min_element(hits.begin(), hits.end()) - hits.begin())];
}

// Runs of consecutive indices where `ok` holds: lines and bands break where values are missing.
template <class Ok>
std::vector<std::pair<size_t, size_t>> runs(size_t n, Ok ok) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t start = 0;
  bool in = false;
  for (size_t i = 0; i <= n; ++i) {
    const bool good = i < n && ok(i);
    if (good && !in) start = i, in = true;
    if (!good && in) out.emplace_back(start, i), in = false;
  }
  return out;
}

// Viewport margins (character heights) of the colour bar to the right of heat maps and surfaces.
constexpr double kBarGap = 1.6, kBarWidth = 1.4;

double bar_space(const Axis& z, bool named) {
  return kBarGap + kBarWidth + 0.9 + z.widest_label() + (named ? 2.0 : 0.5);
}

// A vertical colour bar in the right margin, `bottom`..`top` in page fractions.
void colour_bar(Figure& fig, const Axis& z, const std::string& z_label, double bottom, double top) {
  const auto [cx, cy] = fig.char_size();
  const double right = (bar_space(z, !z_label.empty()) - kBarGap - kBarWidth) * cx;
  plvpor(1 - right - kBarWidth * cx, 1 - right, bottom, top);
  plwind(0, 1, z.lo, z.hi);
  constexpr int steps = 256;
  std::vector<double> values(2 * steps);
  std::vector<const double*> rows(2);
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < steps; ++j) values[size_t(i * steps + j)] = z.lo + (z.hi - z.lo) * (j + 0.5) / steps;
    rows[size_t(i)] = values.data() + i * steps;
  }
  plimagefr(rows.data(), 2, steps, 0, 1, z.lo, z.hi, 0, 0, z.lo, z.hi, nullptr, nullptr);
  fig.labels_from(nullptr, &z);
  plcol0(kInk);
  plwidth(1.0 * fig.scale());
  plbox("bc", 0, 0, "bcmtvo", z.step, 0);
  if (z.exponent != 0) plmtex("t", 0.6, 0.5, 0.5, z.multiplier().c_str());
  if (!z_label.empty()) plmtex("r", z.widest_label() + 1.6, 0.5, 0.5, plain(z_label).c_str());
}

// Bilinear interpolation of a grid at (u, v), for a smooth heat map between the samples.
double bilinear(const Grid2d& g, double u, double v) {
  auto bracket = [](const std::vector<double>& axis, double t) {
    size_t i = static_cast<size_t>(std::upper_bound(axis.begin(), axis.end(), t) - axis.begin());
    i = std::clamp<size_t>(i, 1, axis.size() - 1) - 1;
    const double f = std::clamp((t - axis[i]) / (axis[i + 1] - axis[i]), 0.0, 1.0);
    return std::make_pair(i, f);
  };
  const auto [i, fx] = bracket(g.x, u);
  const auto [j, fy] = bracket(g.y, v);
  const size_t nx = g.x.size();
  const double z00 = g.z[j * nx + i], z10 = g.z[j * nx + i + 1];
  const double z01 = g.z[(j + 1) * nx + i], z11 = g.z[(j + 1) * nx + i + 1];
  return (1 - fy) * ((1 - fx) * z00 + fx * z10) + fy * ((1 - fx) * z01 + fx * z11);
}

void check_grid(const std::string& path, const Grid2d& g, const std::string& name) {
  check(g.x.size() >= 2 && g.y.size() >= 2, kOp, path, ": ", name, " needs at least 2 x and 2 y values, got ",
        g.x.size(), " and ", g.y.size());
  check(g.z.size() == g.x.size() * g.y.size(), kOp, path, ": ", name, " has ", g.z.size(), " z values for ", g.x.size(),
        " x by ", g.y.size(), " y values (", g.x.size() * g.y.size(), " expected)");
  for (const std::vector<double>* axis : {&g.x, &g.y})
    for (size_t i = 0; i < axis->size(); ++i)
      check(finite((*axis)[i]) && (i == 0 || (*axis)[i] > (*axis)[i - 1]), kOp, path, ": ", name, "'s ",
            axis == &g.x ? "x" : "y", " values are not finite and increasing (at index ", i, ")");
  for (size_t k = 0; k < g.z.size(); ++k)
    check(finite(g.z[k]), kOp, path, ": ", name, " has a non-finite z value ", g.z[k], " at x ", g.x[k % g.x.size()],
          ", y ", g.y[k / g.x.size()]);
}

}  // namespace

void check_plot_path(const std::string& path) {
  format_of(path);
  std::remove(temporary_beside(path).c_str());
}

// ---- line plots ---------------------------------------------------------------------------

void line_plot(const std::string& path, const Axes& axes, const std::vector<Series>& series) {
  format_of(path);
  check(!series.empty(), kOp, path, ": no series to draw");
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    check(!s.x.empty(), kOp, path, ": ", series_name(s, i), " is empty");
    check(s.x.size() == s.y.size(), kOp, path, ": ", series_name(s, i), " has ", s.x.size(), " x values but ",
          s.y.size(), " y values");
    check(s.y_low.size() == s.y_high.size() && (s.y_low.empty() || s.y_low.size() == s.x.size()), kOp, path, ": ",
          series_name(s, i), "'s band has ", s.y_low.size(), " low and ", s.y_high.size(), " high values for ",
          s.x.size(), " points");
  }
  check(axes.log_y_decades > 0, kOp, path, ": log_y_decades must be positive, got ", axes.log_y_decades);

  // The ranges: over every drawable value, bands included; on a log axis over positive values,
  // at most log_y_decades below the largest.
  auto y_world = [&](double v) { return axes.log_y ? (v > 0 ? std::log10(v) : NAN) : v; };
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!finite(s.x[i])) continue;
      for (double v : {s.y[i], s.y_low.empty() ? NAN : s.y_low[i], s.y_high.empty() ? NAN : s.y_high[i]}) {
        const double w = y_world(v);
        if (!finite(w)) continue;
        x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, w), y_hi = std::max(y_hi, w);
      }
    }
  check(finite(x_lo) && finite(y_lo), kOp, path, ": nothing to draw: no point has a finite x and a finite",
        axes.log_y ? ", positive" : "", " y");
  if (x_lo == x_hi) std::tie(x_lo, x_hi) = padded(x_lo, x_hi, 0);
  Axis y_axis;
  if (axes.log_y) {
    y_axis = log_axis(std::max(y_lo, y_hi - axes.log_y_decades), y_hi);
  } else {
    const auto [lo, hi] = padded(y_lo, y_hi, 0.05);
    y_axis = linear_axis(lo, hi);
  }

  Figure fig(path, axes);
  std::string names;
  fig.guarded([&] {
    const bool titled = !axes.title.empty();
    fig.title(axes.title);
    const double left = left_margin(y_axis, !axes.y_label.empty()), right = 2.5;
    const Axis x_axis = fitted_axis(x_lo, x_hi, 1 / fig.char_size().first - left - right);
    // A line below the tick labels for the x axis's name or power of ten, one above for the y axis's power.
    fig.viewport(left, right, axes.x_label.empty() && x_axis.exponent == 0 ? 2.6 : 4.6,
                 titled                 ? 3.2
                 : y_axis.exponent != 0 ? 2.2
                                        : 1.2);
    plwind(x_axis.lo, x_axis.hi, y_axis.lo, y_axis.hi);
    draw_frame(fig, x_axis, y_axis);

    // Bands first, translucent, so every line stays on top of every band.
    for (size_t k = 0; k < series.size(); ++k) {
      const Series& s = series[k];
      if (s.y_low.empty()) continue;
      // Below a log axis's floor a band's edge is pinned to the axis.
      const double floor = y_axis.lo - 1;
      auto edge = [&](double v) { return axes.log_y && !(v > 0) ? floor : y_world(v); };
      plcol0(band_colour(k));
      for (auto [a, b] : runs(s.x.size(), [&](size_t i) {
             return finite(s.x[i]) && finite(s.y_low[i]) && finite(s.y_high[i]) && finite(edge(s.y_high[i]));
           })) {
        if (b - a < 2) continue;
        std::vector<double> px, py;
        for (size_t i = a; i < b; ++i) px.push_back(s.x[i]), py.push_back(edge(s.y_high[i]));
        for (size_t i = b; i-- > a;) px.push_back(s.x[i]), py.push_back(edge(s.y_low[i]));
        plfill(static_cast<PLINT>(px.size()), px.data(), py.data());
      }
    }
    plwidth(2.0 * fig.scale());
    for (size_t k = 0; k < series.size(); ++k) {
      const Series& s = series[k];
      plcol0(series_colour(k));
      for (auto [a, b] : runs(s.x.size(), [&](size_t i) { return finite(s.x[i]) && finite(y_world(s.y[i])); })) {
        std::vector<double> px(s.x.begin() + long(a), s.x.begin() + long(b)), py;
        for (size_t i = a; i < b; ++i) py.push_back(y_world(s.y[i]));
        if (px.size() == 1) {
          plssym(0, 2.5 * fig.scale());
          plpoin(1, px.data(), py.data(), 17);  // a lone point: a dot, not an invisible line
        } else {
          plline(static_cast<PLINT>(px.size()), px.data(), py.data());
        }
      }
    }
    axis_names(axes.x_label, axes.y_label, y_name_offset(y_axis));

    const bool legend = std::any_of(series.begin(), series.end(), [](const Series& s) { return !s.label.empty(); });
    if (legend) {
      const size_t n = series.size();
      std::vector<PLINT> opts(n, PL_LEGEND_LINE), colours(n), styles(n, 1), text_colours(n, kInk);
      std::vector<PLFLT> widths(n, 2.0 * fig.scale());
      std::vector<std::string> texts(n);
      std::vector<const char*> text_ptrs(n);
      for (size_t k = 0; k < n; ++k) {
        colours[k] = series_colour(k);
        texts[k] = plain(series[k].label);
        text_ptrs[k] = texts[k].c_str();
        if (series[k].label.empty()) opts[k] = PL_LEGEND_NONE;
      }
      PLFLT w, h;
      pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
               emptiest_corner(series, x_axis, y_axis) | PL_POSITION_INSIDE, 0.02, 0.03, 0.07, kBackground, kGrid, 1, 0,
               0, static_cast<PLINT>(n), opts.data(), 1.0, 0.95, 2.0, 0.0, text_colours.data(), text_ptrs.data(),
               nullptr, nullptr, nullptr, nullptr, colours.data(), styles.data(), widths.data(), nullptr, nullptr,
               nullptr, nullptr);
    }
  });
  for (const Series& s : series)
    if (!s.label.empty()) names += (names.empty() ? "" : ", ") + s.label;
  fig.finish(axes.title, "x: " + axes.x_label + "; y" + (axes.log_y ? " (log axis)" : "") + ": " + axes.y_label +
                             (names.empty() ? "" : "; series: " + names));
}

// ---- heat maps with contours --------------------------------------------------------------

void contour_plot(const std::string& path, const Axes& axes, const std::vector<Grid2d>& grids,
                  const std::string& z_label, int levels) {
  format_of(path);
  check(!grids.empty(), kOp, path, ": no grid to draw");
  check(levels >= 0 && levels <= 200, kOp, path, ": ", levels, " contour levels is outside 0..200");
  double z_lo = INFINITY, z_hi = -INFINITY;
  for (size_t k = 0; k < grids.size(); ++k) {
    check_grid(path, grids[k], grid_name(grids[k], k));
    const auto [lo, hi] = std::minmax_element(grids[k].z.begin(), grids[k].z.end());
    z_lo = std::min(z_lo, *lo), z_hi = std::max(z_hi, *hi);
  }
  if (z_lo == z_hi) std::tie(z_lo, z_hi) = padded(z_lo, z_hi, 0);
  const Axis z_axis = linear_axis(z_lo, z_hi);
  // Tick labels on the y axis of every panel only where the panels' y ranges differ.
  const bool shared_y = std::all_of(grids.begin(), grids.end(), [&](const Grid2d& g) {
    return g.y.front() == grids[0].y.front() && g.y.back() == grids[0].y.back();
  });
  const bool labelled = std::any_of(grids.begin(), grids.end(), [](const Grid2d& g) { return !g.label.empty(); });

  Figure fig(path, axes);
  fig.guarded([&] {
    fig.title(axes.title);
    const auto [cx, cy] = fig.char_size();
    std::vector<Axis> x_axes, y_axes;
    double widest_x = 0, widest_y = 0;
    for (const Grid2d& g : grids) {
      x_axes.push_back(linear_axis(g.x.front(), g.x.back(), 5));
      y_axes.push_back(linear_axis(g.y.front(), g.y.back(), 5));
      widest_x = std::max(widest_x, x_axes.back().widest_label());
      widest_y = std::max(widest_y, y_axes.back().widest_label());
    }
    const double left = (widest_y + kNameGap + (axes.y_label.empty() ? 0 : 1.8)) * cx;
    // Panels stand apart by at least one x tick label, so the labels at their edges never meet.
    const double gap = std::max(widest_x + 1.0, shared_y ? 1.8 : widest_y + 2.4) * cx;
    const double right = bar_space(z_axis, !z_label.empty()) * cx;
    const bool powers = z_axis.exponent != 0 ||
                        std::any_of(y_axes.begin(), y_axes.end(), [](const Axis& a) { return a.exponent != 0; });
    const bool x_powers = std::any_of(x_axes.begin(), x_axes.end(), [](const Axis& a) { return a.exponent != 0; });
    const double bottom = (axes.x_label.empty() && !x_powers ? 2.6 : 4.6) * cy;
    const double top = 1 - ((axes.title.empty() ? (powers ? 2.2 : 1.2) : 3.2) + (labelled ? 2.0 : 0)) * cy;
    const double n = static_cast<double>(grids.size());
    const double width = (1 - left - right - gap * (n - 1)) / n;
    check(width > 0.05, kOp, path, ": ", grids.size(), " panels do not fit in ", axes.width, " pixels");
    for (size_t k = 0; k < grids.size(); ++k)
      x_axes[k] = fitted_axis(grids[k].x.front(), grids[k].x.back(), width / cx, 5);

    std::vector<double> contour_levels;
    for (int l = 1; l <= levels; ++l) contour_levels.push_back(z_lo + (z_hi - z_lo) * l / (levels + 1.0));
    for (size_t k = 0; k < grids.size(); ++k) {
      const Grid2d& g = grids[k];
      const Axis &xa = x_axes[k], &ya = y_axes[k];
      const double x0 = left + static_cast<double>(k) * (width + gap);
      plvpor(x0, x0 + width, bottom, top);
      plwind(g.x.front(), g.x.back(), g.y.front(), g.y.back());

      // The heat map: the grid resampled bilinearly to about one cell per few pixels, drawn as
      // one image (no seams between cells).
      const int cells = std::clamp(static_cast<int>(width * axes.width / 2), 32, 400);
      std::vector<double> image(static_cast<size_t>(cells) * cells);
      std::vector<const double*> columns(static_cast<size_t>(cells));
      for (int i = 0; i < cells; ++i) {
        const double u = g.x.front() + (g.x.back() - g.x.front()) * (i + 0.5) / cells;
        for (int j = 0; j < cells; ++j) {
          const double v = g.y.front() + (g.y.back() - g.y.front()) * (j + 0.5) / cells;
          image[size_t(i) * cells + size_t(j)] = bilinear(g, u, v);
        }
        columns[size_t(i)] = image.data() + size_t(i) * cells;
      }
      plimagefr(columns.data(), cells, cells, g.x.front(), g.x.back(), g.y.front(), g.y.back(), 0, 0, z_lo, z_hi,
                nullptr, nullptr);

      if (!contour_levels.empty()) {
        // plcont reads z[i][j] at (x[i], y[j]); the grid holds it row by row in y.
        const size_t nx = g.x.size(), ny = g.y.size();
        std::vector<double> zt(nx * ny);
        std::vector<const double*> rows(nx);
        for (size_t i = 0; i < nx; ++i) {
          for (size_t j = 0; j < ny; ++j) zt[i * ny + j] = g.z[j * nx + i];
          rows[i] = zt.data() + i * ny;
        }
        PLcGrid coordinates{const_cast<double*>(g.x.data()), const_cast<double*>(g.y.data()), nullptr,
                            static_cast<PLINT>(nx),          static_cast<PLINT>(ny),          0};
        plcol0(kContour);
        plwidth(0.9 * fig.scale());
        plcont(rows.data(), static_cast<PLINT>(nx), static_cast<PLINT>(ny), 1, static_cast<PLINT>(nx), 1,
               static_cast<PLINT>(ny), contour_levels.data(), static_cast<PLINT>(contour_levels.size()), pltr1,
               &coordinates);
      }
      draw_frame(fig, xa, ya, true, k == 0 || !shared_y, false);
      plcol0(kInk);
      if (!g.label.empty()) plmtex("t", 0.9, 0.5, 0.5, plain(g.label).c_str());
      if (!axes.x_label.empty()) plmtex("b", 3.1, 0.5, 0.5, plain(axes.x_label).c_str());
      if (k == 0 && !axes.y_label.empty()) plmtex("l", y_name_offset(ya), 0.5, 0.5, plain(axes.y_label).c_str());
    }
    colour_bar(fig, z_axis, z_label, bottom, top);
  });
  std::string names;
  for (const Grid2d& g : grids)
    if (!g.label.empty()) names += (names.empty() ? "" : ", ") + g.label;
  fig.finish(axes.title, "x: " + axes.x_label + "; y: " + axes.y_label + "; colour: " + z_label +
                             (names.empty() ? "" : "; panels: " + names));
}

// ---- 3-D surfaces -------------------------------------------------------------------------

void surface_plot(const std::string& path, const Axes& axes, const Grid2d& grid, const std::string& z_label) {
  format_of(path);
  check_grid(path, grid, "the grid");
  auto [z_lo, z_hi] = std::minmax_element(grid.z.begin(), grid.z.end());
  double lo = *z_lo, hi = *z_hi;
  if (lo == hi) std::tie(lo, hi) = padded(lo, hi, 0);
  const Axis z_axis = linear_axis(lo, hi);
  const size_t nx = grid.x.size(), ny = grid.y.size();

  Figure fig(path, axes);
  fig.guarded([&] {
    fig.title(axes.title);
    const auto [cx, cy] = fig.char_size();
    const double right = bar_space(z_axis, !z_label.empty()) * cx;
    const double top = 1 - (axes.title.empty() ? 1.0 : 3.0) * cy;
    plvpor(0.0, 1 - right, 0.02, top);
    plwind(-0.9, 0.9, -0.55, 1.15);  // the projected box at this view, with room for its labels
    plcol0(kInk);
    plwidth(1.0 * fig.scale());
    plw3d(1.0, 1.0, 1.1, grid.x.front(), grid.x.back(), grid.y.front(), grid.y.back(), lo, hi, 30, -50);
    fig.labels_from(nullptr, nullptr);
    plbox3("bnstu", plain(axes.x_label).c_str(), 0, 0, "bnstu", plain(axes.y_label).c_str(), 0, 0, "bnstu",
           plain(z_label).c_str(), 0, 0);
    // plsurf3d reads z[i][j] at (x[i], y[j]); the grid holds it row by row in y.
    std::vector<double> zt(nx * ny);
    std::vector<const double*> rows(nx);
    for (size_t i = 0; i < nx; ++i) {
      for (size_t j = 0; j < ny; ++j) zt[i * ny + j] = grid.z[j * nx + i];
      rows[i] = zt.data() + i * ny;
    }
    // Facet edges help the eye on a coarse grid and turn a fine one grey; contours on the floor.
    const bool faceted = nx <= 41 && ny <= 41;
    std::vector<double> floor_levels;
    for (int l = 1; l <= 10; ++l) floor_levels.push_back(lo + (hi - lo) * l / 11.0);
    plcol0(kContour);
    plwidth(0.5 * fig.scale());
    plsurf3d(grid.x.data(), grid.y.data(), rows.data(), static_cast<PLINT>(nx), static_cast<PLINT>(ny),
             MAG_COLOR | BASE_CONT | (faceted ? FACETED : 0), floor_levels.data(),
             static_cast<PLINT>(floor_levels.size()));
    colour_bar(fig, z_axis, "", 0.2, top - 0.1);
  });
  fig.finish(axes.title, "x: " + axes.x_label + "; y: " + axes.y_label + "; z: " + z_label);
}

// ---- reliability diagrams ------------------------------------------------------------------

void reliability_diagram(const std::string& path, const Axes& axes, const ReliabilityBins& bins) {
  format_of(path);
  const size_t n = bins.count.size();
  check(n > 0, kOp, path, ": no confidence bin to draw");
  check(bins.confidence.size() == n && bins.accuracy.size() == n, kOp, path, ": ", n, " bin counts but ",
        bins.confidence.size(), " confidences and ", bins.accuracy.size(), " accuracies");
  long long total = 0;
  for (size_t i = 0; i < n; ++i) {
    check(bins.count[i] >= 0, kOp, path, ": bin ", i, " has a negative count ", bins.count[i]);
    total += bins.count[i];
    if (bins.count[i] == 0) continue;
    check(finite(bins.accuracy[i]) && bins.accuracy[i] >= 0 && bins.accuracy[i] <= 1, kOp, path, ": bin ", i,
          "'s accuracy ", bins.accuracy[i], " is outside [0, 1]");
    check(finite(bins.confidence[i]) && bins.confidence[i] >= 0 && bins.confidence[i] <= 1, kOp, path, ": bin ", i,
          "'s confidence ", bins.confidence[i], " is outside [0, 1]");
  }
  check(total > 0, kOp, path, ": every bin is empty");
  check(finite(bins.ece) && bins.ece >= 0, kOp, path, ": the calibration error ", bins.ece,
        " is not a finite value >= 0");
  char ece[64];
  std::snprintf(ece, sizeof ece, "ECE %.2f%%", 100 * bins.ece);
  const std::string title = axes.title.empty() ? ece : axes.title + "  (" + ece + ")";
  const std::string x_label = axes.x_label.empty() ? "confidence" : axes.x_label;
  const std::string y_label = axes.y_label.empty() ? "accuracy" : axes.y_label;
  std::vector<double> share(n);
  for (size_t i = 0; i < n; ++i) share[i] = 100.0 * double(bins.count[i]) / double(total);
  const double share_top = *std::max_element(share.begin(), share.end()) * 1.15;

  Figure fig(path, axes);
  fig.guarded([&] {
    fig.title(title);
    const auto [cx, cy] = fig.char_size();
    const Axis x_axis = linear_axis(0, 1, 5);
    const Axis y_axis = linear_axis(0, 1, 5);
    const Axis share_axis = linear_axis(0, share_top, 2);
    const double left = (std::max(y_axis.widest_label(), share_axis.widest_label()) + kNameGap + 1.8) * cx;
    const double right = 1 - 2.0 * cx;
    const double bottom = 4.6 * cy, top = 1 - 3.4 * cy;
    const double split = bottom + (top - bottom) * 0.27;  // the share panel below, the diagram above
    const double name_offset = std::max(y_axis.widest_label(), share_axis.widest_label()) + kNameGap;
    auto bar = [](double x0, double x1, double y0, double y1) {
      std::array<double, 4> px = {x0, x1, x1, x0}, py = {y0, y0, y1, y1};
      plfill(4, px.data(), py.data());
      return std::make_pair(px, py);
    };
    auto outline = [](std::array<double, 4> px, std::array<double, 4> py) {
      std::array<double, 5> lx = {px[0], px[1], px[2], px[3], px[0]}, ly = {py[0], py[1], py[2], py[3], py[0]};
      plline(5, lx.data(), ly.data());
    };

    // The diagram: accuracy bars, the gap to each bin's mean confidence, the diagonal.
    plvpor(left, right, split + 1.2 * cy, top);
    plwind(0, 1, 0, 1);
    draw_frame(fig, x_axis, y_axis, false, true);
    const double w = 1.0 / double(n);
    for (size_t i = 0; i < n; ++i) {
      if (bins.count[i] == 0) continue;
      const double x0 = double(i) * w, x1 = x0 + w;
      plcol0(series_colour(0));
      const auto [px, py] = bar(x0, x1, 0, bins.accuracy[i]);
      plcol0(kInk);
      plwidth(0.8 * fig.scale());
      outline(px, py);
      const double a = bins.accuracy[i], c = bins.confidence[i];
      if (std::fabs(c - a) > 1e-12) {
        plcol0(kGap);
        const auto [gx, gy] = bar(x0, x1, std::min(a, c), std::max(a, c));
        plcol0(kGapEdge);
        outline(gx, gy);
      }
    }
    plcol0(kMuted);
    pllsty(2);
    plwidth(1.5 * fig.scale());
    pljoin(0, 0, 1, 1);
    pllsty(1);
    plcol0(kInk);
    plmtex("l", name_offset, 0.5, 0.5, plain(y_label).c_str());
    {
      const std::array<PLINT, 3> opts = {PL_LEGEND_COLOR_BOX, PL_LEGEND_COLOR_BOX, PL_LEGEND_LINE};
      const std::array<const char*, 3> texts = {"accuracy", "gap to confidence", "perfect calibration"};
      const std::array<PLINT, 3> text_colours = {kInk, kInk, kInk}, box_colours = {series_colour(0), kGap, 0},
                                 patterns = {0, 0, 0}, line_colours = {0, 0, kMuted}, styles = {1, 1, 2};
      const std::array<PLFLT, 3> box_scales = {0.8, 0.8, 0}, box_widths = {0, 0, 0},
                                 line_widths = {0, 0, 1.5 * fig.scale()};
      PLFLT lw, lh;
      pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
               PL_POSITION_TOP | PL_POSITION_LEFT | PL_POSITION_INSIDE, 0.02, 0.03, 0.07, kBackground, kGrid, 1, 0, 0,
               3, opts.data(), 1.0, 0.9, 2.0, 0.0, text_colours.data(), texts.data(), box_colours.data(),
               patterns.data(), box_scales.data(), box_widths.data(), line_colours.data(), styles.data(),
               line_widths.data(), nullptr, nullptr, nullptr, nullptr);
    }

    // Underneath: each bin's share of the samples.
    plvpor(left, right, bottom, split);
    plwind(0, 1, 0, share_top);
    draw_frame(fig, x_axis, share_axis, true, true);
    for (size_t i = 0; i < n; ++i) {
      if (bins.count[i] == 0) continue;
      const double x0 = double(i) * w;
      plcol0(kMuted);
      const auto [px, py] = bar(x0, x0 + w, 0, share[i]);
      plcol0(kInk);
      plwidth(0.8 * fig.scale());
      outline(px, py);
    }
    plcol0(kInk);
    plmtex("l", name_offset, 0.5, 0.5, "% samples");
    plmtex("b", 3.1, 0.5, 0.5, plain(x_label).c_str());
  });
  fig.finish(title, "x: " + x_label + "; y: " + y_label + "; below: % samples per bin");
}

}  // namespace dmix::probe::plot
