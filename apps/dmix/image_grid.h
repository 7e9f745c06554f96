// A PNG grid of images with a few lines of caption under each, as `dmix augment` and
// `dmix subsample --grid` draw them: an RGB canvas, images enlarged by pixel repetition,
// text in stb_easy_font's bitmap font.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dmix::app {

class ImageGrid {
 public:
  // count tiles, `columns` to a row, each an image of h x w pixels enlarged `scale` times
  // above caption_lines lines of text (tiles at least 96 px wide, for the text).
  ImageGrid(int64_t count, int64_t columns, int64_t h, int64_t w, int64_t scale, int caption_lines);

  // Draws tile `tile`'s image: C x H x W floats (C = 1 or 3), normalised with mean and std
  // per channel (empty: already in [0, 1]), clamped to [0, 1].
  void image(int64_t tile, const float* pixels, int64_t channels, const std::vector<float>& mean,
             const std::vector<float>& std);
  // Writes caption line `line` of tile `tile`, cut to the tile's width.
  void caption(int64_t tile, int line, const std::string& text);
  // Writes the PNG; a failure is a dmix::Error starting with op.
  void write_png(const std::string& path, const char* op) const;

 private:
  void set(int x, int y, uint8_t r, uint8_t g, uint8_t b);
  int tile_x(int64_t tile) const;
  int tile_y(int64_t tile) const;

  int64_t h_, w_, scale_;
  int tile_w_, tile_h_, cols_, width_, height_;
  std::vector<uint8_t> rgb_;
};

}  // namespace dmix::app
