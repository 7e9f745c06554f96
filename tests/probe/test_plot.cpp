// Plots through PLplot's cairo driver: each function writes a PNG of the asked size, on white,
// in the colours it promises (series, translucent bands, the viridis scale, the reliability
// bars), and an SVG whose <title> and <desc> name the plot and its axes. Bad input is one
// dmix::Error naming the file, and leaves no file (not even a temporary one) behind. PNGs
// are decoded with the library's own stb_image decoder (augment::decode_image_file).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "augment/datasets.h"
#include "probe/plot.h"
#include "tests/test_util.h"

using namespace dmix;
using namespace dmix::probe::plot;
using dmix::testing::contains;
using dmix::testing::error_of;
using dmix::testing::TempDir;

namespace {

struct Rgb {
  int r, g, b;
};

// The first two series colours (Tableau's blue and orange), and the first band: the blue at
// alpha 0.22 over white.
constexpr Rgb kBlue{31, 119, 180}, kOrange{255, 127, 14}, kBlueBand{206, 229, 238};
// The ends of the viridis colour scale of heat maps and surfaces, and the reliability gap (red
// at alpha 0.28 over white).
constexpr Rgb kViridisLow{68, 1, 84}, kViridisHigh{253, 231, 37}, kGapRed{243, 194, 194};

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // (3, H, W) as decoded

  Rgb at(int64_t x, int64_t y) const {
    const int64_t plane = width * height, i = y * width + x;
    return {pixels[size_t(i)], pixels[size_t(plane + i)], pixels[size_t(2 * plane + i)]};
  }
  // Pixels within `tolerance` of c in every channel.
  int64_t count(Rgb c, int tolerance = 6) const {
    int64_t n = 0;
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        const Rgb p = at(x, y);
        n += std::abs(p.r - c.r) <= tolerance && std::abs(p.g - c.g) <= tolerance && std::abs(p.b - c.b) <= tolerance;
      }
    return n;
  }
  size_t distinct_colours() const {
    std::set<int> seen;
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        const Rgb p = at(x, y);
        seen.insert(p.r << 16 | p.g << 8 | p.b);
      }
    return seen.size();
  }
};

Image read_png(const std::string& path) {
  const Tensor t = augment::decode_image_file(path, 3);
  Image im;
  im.height = t.size(1);
  im.width = t.size(2);
  const uint8_t* p = t.data<uint8_t>();
  im.pixels.assign(p, p + t.numel());
  return im;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// What every plot must be: the asked size, a white page (the corners), and more than a few
// colours (text, lines and fills, antialiased).
void check_png(const std::string& path, const Axes& axes) {
  const Image im = read_png(path);
  CHECK(im.width == axes.width);
  CHECK(im.height == axes.height);
  for (auto [x, y] :
       {std::pair<int64_t, int64_t>{0, 0}, {im.width - 1, 0}, {0, im.height - 1}, {im.width - 1, im.height - 1}}) {
    const Rgb c = im.at(x, y);
    CHECK((c.r == 255 && c.g == 255 && c.b == 255));
  }
  CHECK(im.distinct_colours() >= 20);
}

// The SVG is an SVG document whose <title> and <desc> carry every given text.
void check_svg(const std::string& path, const std::string& title, const std::vector<std::string>& texts) {
  const std::string svg = read_text(path);
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(contains(svg, "<svg"));
  CHECK(contains(svg, "</svg>"));
  CHECK(contains(svg, "<title>" + title + "</title>"));
  const size_t desc = svg.find("<desc>"), end = svg.find("</desc>");
  REQUIRE(desc != std::string::npos);
  REQUIRE(end != std::string::npos);
  const std::string description = svg.substr(desc, end - desc);
  for (const std::string& t : texts) CHECK_MESSAGE(contains(description, t), "no '" << t << "' in " << description);
}

std::vector<Series> sigma_curves() {
  std::vector<Series> out;
  for (int m = 0; m < 2; ++m) {
    Series s;
    s.label = m == 0 ? "no mixing" : "DCutMix # 3";
    for (int i = 0; i < 7; ++i) {
      const double sigma = 0.002 * i, mean = 0.3 + (2 - m) * 2e4 * sigma * sigma, spread = 0.05 + 10 * sigma;
      s.x.push_back(sigma);
      s.y.push_back(mean);
      s.y_low.push_back(mean - spread);
      s.y_high.push_back(mean + spread);
    }
    out.push_back(s);
  }
  return out;
}

Grid2d bowl(const std::string& label, double steepness) {
  Grid2d g;
  g.label = label;
  for (int i = 0; i < 21; ++i) g.x.push_back(-0.1 + 0.01 * i);
  for (int j = 0; j < 15; ++j) g.y.push_back(-0.07 + 0.01 * j);
  for (int j = 0; j < 15; ++j)
    for (int i = 0; i < 21; ++i) g.z.push_back(0.2 + steepness * (80 * g.x[i] * g.x[i] + 40 * g.y[j] * g.y[j]));
  return g;
}

ReliabilityBins overconfident() {
  ReliabilityBins b;
  for (int i = 0; i < 10; ++i) {
    b.confidence.push_back((i + 0.5) / 10);
    b.accuracy.push_back(std::max(0.0, (i + 0.5) / 10 - 0.1));
    b.count.push_back(i < 2 ? 0 : 10 * (i + 1) * (i + 1));
  }
  b.ece = 0.042;
  return b;
}

}  // namespace

TEST_CASE("plot: a line plot with bands and a legend, as PNG and SVG") {
  TempDir dir;
  Axes axes;
  axes.title = "σ-curve";
  axes.x_label = "σ";
  axes.y_label = "test loss";
  axes.width = 640;
  axes.height = 480;
  line_plot(dir.file("sigma.png"), axes, sigma_curves());
  line_plot(dir.file("sigma.svg"), axes, sigma_curves());
  CHECK(dir.entries() == std::vector<std::string>{"sigma.png", "sigma.svg"});  // no temporary left behind

  check_png(dir.file("sigma.png"), axes);
  const Image im = read_png(dir.file("sigma.png"));
  CHECK(im.count(kBlue, 2) > 100);  // the lines, 2 pixels wide and solid in their cores
  CHECK(im.count(kOrange, 2) > 100);
  CHECK(im.count(kBlueBand, 4) > 100);  // the translucent band around the first curve
  check_svg(dir.file("sigma.svg"), "σ-curve", {"σ", "test loss", "no mixing", "DCutMix # 3"});

  // Larger figures are the size asked for too.
  axes.width = 1000;
  axes.height = 300;
  line_plot(dir.file("wide.png"), axes, sigma_curves());
  check_png(dir.file("wide.png"), axes);
}

TEST_CASE("plot: a log-y line plot draws positive values over many decades, zeros left out") {
  TempDir dir;
  Series s;
  for (int i = 0; i <= 400; ++i) {
    const double x = -1 + 0.05 * i;
    s.x.push_back(x);
    s.y.push_back(i % 50 == 0 ? 0.0 : std::exp(-x * x / 0.5) + std::exp(-(x - 12) * (x - 12) / 0.1) * 1e-3);
  }
  Axes axes;
  axes.title = "spectral density";
  axes.x_label = "eigenvalue";
  axes.y_label = "density";
  axes.log_y = true;
  line_plot(dir.file("esd.png"), axes, {s});
  check_png(dir.file("esd.png"), axes);
  CHECK(read_png(dir.file("esd.png")).count(kBlue, 2) > 200);

  Series nothing;
  nothing.x = {1, 2, 3};
  nothing.y = {0, -1, 0};
  const std::string e = error_of([&] { line_plot(dir.file("none.png"), axes, {nothing}); });
  CHECK(contains(e, dir.file("none.png")));
  CHECK(contains(e, "nothing to draw"));
}

TEST_CASE("plot: heat maps side by side on one colour scale, with contours and a colour bar") {
  TempDir dir;
  Axes axes;
  axes.title = "loss along the top-2 eigenvectors";
  axes.x_label = "λ1";
  axes.y_label = "λ2";
  axes.width = 1100;
  axes.height = 420;
  const std::vector<Grid2d> grids = {bowl("no mixing", 3), bowl("DCutMix", 1)};
  contour_plot(dir.file("landscape.png"), axes, grids, "loss", 8);
  contour_plot(dir.file("landscape.svg"), axes, grids, "loss", 8);
  check_png(dir.file("landscape.png"), axes);
  const Image im = read_png(dir.file("landscape.png"));
  CHECK(im.count(kViridisLow, 12) > 50);   // the minimum (both bowls' centres and the bar's foot)
  CHECK(im.count(kViridisHigh, 12) > 20);  // the steep bowl's corners and the bar's head
  CHECK(im.distinct_colours() >= 200);     // a smooth scale, not a few bands
  check_svg(dir.file("landscape.svg"), "loss along the top-2 eigenvectors",
            {"λ1", "λ2", "loss", "no mixing", "DCutMix"});
}

TEST_CASE("plot: a 3-D surface coloured by height") {
  TempDir dir;
  Axes axes;
  axes.title = "loss surface";
  axes.x_label = "direction 1";
  axes.y_label = "direction 2";
  surface_plot(dir.file("surface.png"), axes, bowl("", 1), "loss");
  surface_plot(dir.file("surface.svg"), axes, bowl("", 1), "loss");
  check_png(dir.file("surface.png"), axes);
  const Image im = read_png(dir.file("surface.png"));
  CHECK(im.count(kViridisLow, 16) > 20);
  CHECK(im.count(kViridisHigh, 16) > 20);
  CHECK(im.distinct_colours() >= 200);
  check_svg(dir.file("surface.svg"), "loss surface", {"direction 1", "direction 2", "loss"});
}

TEST_CASE("plot: a reliability diagram with bars, gaps, the sample shares and the ECE in the title") {
  TempDir dir;
  Axes axes;
  axes.title = "calibration";
  reliability_diagram(dir.file("reliability.png"), axes, overconfident());
  reliability_diagram(dir.file("reliability.svg"), axes, overconfident());
  check_png(dir.file("reliability.png"), axes);
  const Image im = read_png(dir.file("reliability.png"));
  CHECK(im.count(kBlue, 2) > 2000);   // the accuracy bars
  CHECK(im.count(kGapRed, 6) > 500);  // the gap to confidence above each, every bin overconfident by 0.1
  check_svg(dir.file("reliability.svg"), "calibration  (ECE 4.20%)", {"confidence", "accuracy", "samples"});
}

TEST_CASE("plot: bad input is one error naming the file, and leaves no file") {
  TempDir dir;
  Axes axes;
  const std::vector<Series> good = sigma_curves();
  auto fails_with = [&](const std::string& path, const std::string& part, const std::function<void()>& f) {
    const std::string e = error_of(f);
    CHECK_MESSAGE(contains(e, path), e);
    CHECK_MESSAGE(contains(e, part), e);
    CHECK(e.find('\n') == std::string::npos);
  };

  for (const std::string name : {"plot.jpg", "plot", "plot.png.txt"}) {
    const std::string path = dir.file(name);
    fails_with(path, "unknown file type", [&] { line_plot(path, axes, good); });
    fails_with(path, "written as .png or .svg", [&] { contour_plot(path, axes, {bowl("", 1)}, "z"); });
  }
  const std::string unwritable = dir.file("no/such/folder/plot.png");
  fails_with(unwritable, "cannot write", [&] { line_plot(unwritable, axes, good); });
  fails_with(unwritable, "cannot write", [&] { surface_plot(unwritable, axes, bowl("", 1), "z"); });
  fails_with(unwritable, "cannot write", [&] { reliability_diagram(unwritable, axes, overconfident()); });

  const std::string path = dir.file("bad.png");
  std::vector<Series> mismatched = good;
  mismatched[1].y.pop_back();
  fails_with(path, "series 1 ('DCutMix # 3') has 7 x values but 6 y values",
             [&] { line_plot(path, axes, mismatched); });
  std::vector<Series> bad_band = good;
  bad_band[0].y_high.pop_back();
  fails_with(path, "series 0 ('no mixing')'s band has 7 low and 6 high values",
             [&] { line_plot(path, axes, bad_band); });
  std::vector<Series> empty = good;
  empty[0].x.clear();
  empty[0].y.clear();
  fails_with(path, "series 0 ('no mixing') is empty", [&] { line_plot(path, axes, empty); });
  fails_with(path, "no series to draw", [&] { line_plot(path, axes, {}); });

  Grid2d short_z = bowl("flat", 1);
  short_z.z.pop_back();
  fails_with(path, "grid 1 ('flat') has 314 z values for 21 x by 15 y values (315 expected)", [&] {
    contour_plot(path, axes, {bowl("a", 1), short_z}, "z");
  });
  fails_with(path, "the grid has 314 z values", [&] { surface_plot(path, axes, short_z, "z"); });
  Grid2d unsorted = bowl("", 1);
  std::swap(unsorted.x[3], unsorted.x[4]);
  fails_with(path, "x values are not finite and increasing (at index 4)",
             [&] { contour_plot(path, axes, {unsorted}, "z"); });
  Grid2d nan = bowl("", 1);
  nan.z[5] = NAN;
  fails_with(path, "non-finite z value", [&] { surface_plot(path, axes, nan, "z"); });
  fails_with(path, "no grid to draw", [&] { contour_plot(path, axes, {}, "z"); });

  ReliabilityBins bins = overconfident();
  bins.count.pop_back();
  fails_with(path, "9 bin counts but 10 confidences and 10 accuracies", [&] { reliability_diagram(path, axes, bins); });
  bins = overconfident();
  bins.accuracy[5] = 1.5;
  fails_with(path, "bin 5's accuracy 1.5 is outside [0, 1]", [&] { reliability_diagram(path, axes, bins); });
  bins = overconfident();
  for (auto& c : bins.count) c = 0;
  fails_with(path, "every bin is empty", [&] { reliability_diagram(path, axes, bins); });

  Axes tiny;
  tiny.width = 10;
  fails_with(path, "a figure of 10x600", [&] { line_plot(path, tiny, good); });
  CHECK(dir.entries().empty());
}

TEST_CASE("plot: a failed plot leaves an earlier file as it was") {
  TempDir dir;
  Axes axes;
  const std::string path = dir.file("keep.svg");
  line_plot(path, axes, sigma_curves());
  const std::string before = read_text(path);
  std::vector<Series> bad = sigma_curves();
  bad[0].y.pop_back();
  CHECK(!error_of([&] { line_plot(path, axes, bad); }).empty());
  CHECK(read_text(path) == before);
  CHECK(dir.entries() == std::vector<std::string>{"keep.svg"});
}

TEST_CASE("plot: figures drawn from several threads at once are all whole") {
  TempDir dir;
  Axes axes;
  axes.width = 400;
  axes.height = 300;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      try {
        for (int k = 0; k < 3; ++k) {
          const std::string stem = dir.file("t" + std::to_string(t) + "_" + std::to_string(k));
          line_plot(stem + ".png", axes, sigma_curves());
          contour_plot(stem + "_c.png", axes, {bowl("", 1 + t)}, "z");
        }
      } catch (const std::exception& e) {
        errors[size_t(t)] = e.what();
      }
    });
  for (auto& th : threads) th.join();
  for (const std::string& e : errors) CHECK(e.empty());
  for (int t = 0; t < 4; ++t)
    for (int k = 0; k < 3; ++k) {
      const std::string stem = dir.file("t" + std::to_string(t) + "_" + std::to_string(k));
      check_png(stem + ".png", axes);
      check_png(stem + "_c.png", axes);
      CHECK(read_png(stem + ".png").count(kBlue, 2) > 50);
    }
  CHECK(dir.entries().size() == 24);
}
