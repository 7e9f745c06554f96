// Plots of the analyses, written as PNG or SVG (the file's extension chooses) through
// PLplot's cairo driver: line plots with shaded bands (sigma-curves, interpolations, the
// spectral density on a log scale), 2-D heat maps with contour lines, 3-D surfaces, and
// reliability diagrams. The functions take plain numbers, not tensors or models, so any
// analysis (or a user's own code) can draw with them; a bad path, an unknown extension
// or mismatched lengths is a dmix::Error naming the file.
#pragma once
#include <string>
#include <vector>

namespace dmix::probe::plot {

// One curve. y_low/y_high, when given (same length as x), shade a band around it, for
// instance mean -+ std over draws.
struct Series {
  std::string label;  // shown in the legend; the legend is drawn when any series has one
  std::vector<double> x, y;
  std::vector<double> y_low, y_high;
};

struct Axes {
  std::string title, x_label, y_label;
  bool log_y = false;             // values <= 0 are left out of a log axis
  int width = 800, height = 600;  // pixels (PNG) or points (SVG)
  // A log axis reaches at most this many decades below the largest value; smaller values run
  // off its bottom edge (a spectral density's tails fall to 1e-300 and would flatten the peaks).
  double log_y_decades = 10;
};

// Checks, before a long computation, that a plot can be written to `path`: a .png or .svg
// name in a folder that exists and takes new files. The errors are the plotting functions'.
void check_plot_path(const std::string& path);

// Curves on shared axes, one colour each, in the order given.
void line_plot(const std::string& path, const Axes& axes, const std::vector<Series>& series);

// A function sampled on a rectangular grid: z[j * x.size() + i] is the value at (x[i], y[j]).
struct Grid2d {
  std::string label;  // the panel's title when several grids share a figure
  std::vector<double> x, y, z;
};

// Heat maps with contour lines and a colour bar, one panel per grid side by side on a
// common colour scale (several checkpoints compared, as the paper's Fig. 3a does).
// z_label names the colour bar; `levels` contour lines are spread over the z range.
void contour_plot(const std::string& path, const Axes& axes, const std::vector<Grid2d>& grids,
                  const std::string& z_label, int levels = 12);

// A 3-D surface of one grid, coloured by height.
void surface_plot(const std::string& path, const Axes& axes, const Grid2d& grid, const std::string& z_label);

// A reliability diagram: per confidence bin (equal width over [0, 1]), the accuracy as a
// bar beside the diagonal of perfect calibration, the bin's share of samples underneath,
// and the expected calibration error in the title.
struct ReliabilityBins {
  std::vector<double> confidence;  // mean confidence in each bin (NaN or ignored where count is 0)
  std::vector<double> accuracy;    // accuracy in each bin
  std::vector<long long> count;    // samples in each bin
  double ece = 0;
};
void reliability_diagram(const std::string& path, const Axes& axes, const ReliabilityBins& bins);

}  // namespace dmix::probe::plot
