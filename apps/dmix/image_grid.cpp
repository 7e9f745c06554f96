#include "apps/dmix/image_grid.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/error.h"

// stb's writer and bitmap font, compiled here and kept private to this file.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace dmix::app {

namespace {
constexpr int kLineHeight = 10;  // stb_easy_font glyphs are 7 px tall (+ descenders)
constexpr int kPad = 4;
constexpr uint8_t kBackground = 24, kText = 235;
}  // namespace

ImageGrid::ImageGrid(int64_t count, int64_t columns, int64_t h, int64_t w, int64_t scale, int caption_lines)
    : h_(h), w_(w), scale_(scale) {
  check(count > 0 && columns > 0 && h > 0 && w > 0 && scale > 0, "ImageGrid", "needs a positive size");
  tile_w_ = static_cast<int>(std::max<int64_t>(w * scale, 96));
  tile_h_ = static_cast<int>(h * scale) + caption_lines * kLineHeight + 2;
  cols_ = static_cast<int>(std::min(columns, count));
  const int rows = static_cast<int>((count + cols_ - 1) / cols_);
  width_ = cols_ * (tile_w_ + kPad) + kPad;
  height_ = rows * (tile_h_ + kPad) + kPad;
  rgb_.assign(static_cast<size_t>(width_) * height_ * 3, kBackground);
}

int ImageGrid::tile_x(int64_t tile) const { return kPad + static_cast<int>(tile % cols_) * (tile_w_ + kPad); }
int ImageGrid::tile_y(int64_t tile) const { return kPad + static_cast<int>(tile / cols_) * (tile_h_ + kPad); }

void ImageGrid::set(int x, int y, uint8_t r, uint8_t g, uint8_t b) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  uint8_t* p = &rgb_[(static_cast<size_t>(y) * width_ + x) * 3];
  p[0] = r, p[1] = g, p[2] = b;
}

void ImageGrid::image(int64_t tile, const float* pixels, int64_t channels, const std::vector<float>& mean,
                      const std::vector<float>& std) {
  const int x0 = tile_x(tile), y0 = tile_y(tile);
  for (int64_t y = 0; y < h_ * scale_; ++y)
    for (int64_t x = 0; x < w_ * scale_; ++x) {
      uint8_t rgb[3];
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t ch = channels == 3 ? c : 0;
        const size_t k = static_cast<size_t>(ch);
        const float v = pixels[(ch * h_ + y / scale_) * w_ + x / scale_];
        const float plain = mean.empty() ? v : v * std[k] + mean[k];
        rgb[c] = static_cast<uint8_t>(std::lround(std::clamp(plain, 0.0f, 1.0f) * 255.0f));
      }
      set(x0 + static_cast<int>(x), y0 + static_cast<int>(y), rgb[0], rgb[1], rgb[2]);
    }
}

// stb_easy_font gives the text as axis-aligned quads, filled here.
void ImageGrid::caption(int64_t tile, int line, const std::string& s) {
  const int x = tile_x(tile), y = tile_y(tile) + static_cast<int>(h_ * scale_) + 2 + line * kLineHeight;
  std::string printable;
  for (char c : s) printable.push_back(c >= 32 && c < 127 ? c : '?');
  while (!printable.empty() && stb_easy_font_width(printable.data()) > tile_w_) printable.pop_back();
  std::vector<char> vertices(printable.size() * 300 + 64);
  const int quads =
      stb_easy_font_print(0.0f, 0.0f, printable.data(), nullptr, vertices.data(), static_cast<int>(vertices.size()));
  for (int q = 0; q < quads; ++q) {
    float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
    for (int v = 0; v < 4; ++v) {
      float xy[2];
      std::memcpy(xy, vertices.data() + (q * 4 + v) * 16, sizeof xy);
      x0 = std::min(x0, xy[0]), x1 = std::max(x1, xy[0]);
      y0 = std::min(y0, xy[1]), y1 = std::max(y1, xy[1]);
    }
    for (int py = static_cast<int>(std::lround(y0)); py < static_cast<int>(std::lround(y1)); ++py)
      for (int px = static_cast<int>(std::lround(x0)); px < static_cast<int>(std::lround(x1)); ++px)
        set(x + px, y + py, kText, kText, kText);
  }
}

void ImageGrid::write_png(const std::string& path, const char* op) const {
  check(stbi_write_png(path.c_str(), width_, height_, 3, rgb_.data(), width_ * 3) != 0, op, "cannot write ", path);
}

}  // namespace dmix::app
