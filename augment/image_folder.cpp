// Image folders (ImageNet layout) and the stb_image decoder behind them.
//
// Listing a folder reads directory entries only; no image is opened until the loader
// asks for it. The file names live in one character buffer with offsets (ImageNet's
// 1.28M training names take ~40 MB that way, against ~150 MB as separate strings).
// The order of classes and of files within a class follows torchvision's ImageFolder
// (sorted class names; files sorted by folder, then name), so dataset indices, and the
// subset files written from them, mean the same images in both.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "augment/datasets.h"
#include "engine/error.h"

// stb's decoder, compiled here and kept private to this file. Its failure reason is
// thread-local (C++11 thread_local), so loader threads may decode side by side.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_HDR
#define STBI_NO_PSD
#define STBI_NO_PIC
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace dmix::augment {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string extension_of(const std::string& name) {
  const size_t dot = name.rfind('.');
  return dot == std::string::npos ? "" : lower(name.substr(dot));
}

// Formats torchvision lists but stb_image cannot decode: such a file is an error rather
// than silently skipped, since skipping it would shift every later index.
bool is_undecodable_image_name(const std::string& name) {
  const std::string ext = extension_of(name);
  return ext == ".tif" || ext == ".tiff" || ext == ".webp";
}

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Splits off the first whitespace-separated token of s; returns {token, rest trimmed}.
std::pair<std::string, std::string> first_token(const std::string& s) {
  const std::string t = trim(s);
  size_t end = 0;
  while (end < t.size() && !std::isspace(static_cast<unsigned char>(t[end]))) ++end;
  return {t.substr(0, end), trim(t.substr(end))};
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// The class folders of a split: its sub-folders (links followed, '.' names skipped), sorted.
std::vector<std::string> class_folders(const fs::path& split) {
  const char* op = "load_image_folder";
  const std::string split_name = split.string();
  std::vector<std::string> names;
  bool loose_images = false;
  std::error_code ec;
  fs::directory_iterator it(split, ec);
  check(!ec, op, "cannot list '", split_name, "': ", ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    check(!ec, op, "cannot list '", split_name, "': ", ec.message());
    if (hidden(it->path())) continue;
    std::error_code sec;
    if (it->is_directory(sec)) {
      names.push_back(it->path().filename().string());
    } else if (is_image_file_name(it->path().filename().string())) {
      loose_images = true;
    }
  }
  check(!ec, op, "cannot list '", split_name, "': ", ec.message());
  check(!names.empty(), op, "'", split_name, "' holds no class folder",
        loose_images ? " (it holds image files directly; put each class's images in a folder of its own)" : "",
        " (expected ", split_name, "/<class>/<image files>)");
  std::sort(names.begin(), names.end());
  return names;
}

// The images of one split, named relative to the split folder.
class FolderImageSource final : public ImageSource {
 public:
  FolderImageSource(std::string root, std::string names, std::vector<size_t> offsets)
      : root_(std::move(root)), names_(std::move(names)), offsets_(std::move(offsets)) {}

  int64_t size() const override { return static_cast<int64_t>(offsets_.size()) - 1; }
  int64_t channels() const override { return 3; }
  Tensor decode(int64_t i) const override { return decode_image_file(describe(i), 3); }
  std::string describe(int64_t i) const override {
    check(i >= 0 && i < size(), "image folder", "image ", i, " is outside [0, ", size(), ")");
    return root_ + "/" + names_.substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
  }

 private:
  std::string root_;
  std::string names_;            // every relative path, back to back
  std::vector<size_t> offsets_;  // size() + 1 entries
};

ClassIndex class_index_from_json(const std::string& path, const std::string& text) {
  const char* op = "load_class_index";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(op, path, ": not valid JSON (", e.what(), ")");
  }
  check(j.is_object(), op, path, ": expected a JSON object {\"index\": [\"name\", \"description\"], ...}");
  const size_t k = j.size();
  check(k > 0, op, path, " holds no class");
  ClassIndex ci;
  ci.names.resize(k);
  ci.descriptions.resize(k);
  std::vector<bool> seen(k, false);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    check(all_digits(key), op, path, ": key \"", key, "\" is not a class index");
    const size_t index = std::stoull(key);
    check(index < k, op, path, ": class index ", index, " is outside [0, ", k, ") (the file holds ", k, " classes)");
    check(!seen[index], op, path, ": class index ", index, " appears twice");
    seen[index] = true;
    const nlohmann::json& v = it.value();
    if (v.is_string()) {
      ci.names[index] = v.get<std::string>();
    } else if (v.is_array() && !v.empty() && v[0].is_string() && (v.size() < 2 || v[1].is_string())) {
      ci.names[index] = v[0].get<std::string>();
      if (v.size() >= 2) ci.descriptions[index] = v[1].get<std::string>();
    } else {
      fail(op, path, ": class ", index, " should be \"name\" or [\"name\", \"description\"], got ", v.dump());
    }
    check(!ci.names[index].empty(), op, path, ": class ", index, " has an empty name");
  }
  return ci;
}

ClassIndex class_index_from_text(const std::string& path, const std::string& text) {
  const char* op = "load_class_index";
  struct Entry {
    int64_t line;
    std::string first, rest;
  };
  std::vector<Entry> entries;
  std::istringstream in(text);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    auto [first, rest] = first_token(t);
    entries.push_back({line_no, first, rest});
  }
  check(!entries.empty(), op, path, " holds no class");
  const bool indexed = std::all_of(entries.begin(), entries.end(),
                                   [](const Entry& e) { return all_digits(e.first) && !e.rest.empty(); });
  const size_t k = entries.size();
  ClassIndex ci;
  ci.names.resize(k);
  ci.descriptions.resize(k);
  std::vector<int64_t> line_of(k, 0);
  for (size_t e = 0; e < k; ++e) {
    const Entry& entry = entries[e];
    size_t index = e;
    std::string name = entry.first, description = entry.rest;
    if (indexed) {
      index = std::stoull(entry.first);
      check(index < k, op, path, ":", entry.line, ": class index ", index, " is outside [0, ", k, ") (the file holds ",
            k, " classes)");
      check(line_of[index] == 0, op, path, ":", entry.line, ": class index ", index, " repeats line ",
            line_of[index]);
      std::tie(name, description) = first_token(entry.rest);
    }
    line_of[index] = entry.line;
    ci.names[index] = name;
    ci.descriptions[index] = description;
  }
  std::map<std::string, size_t> where;
  for (size_t i = 0; i < k; ++i) {
    auto [it, fresh] = where.emplace(ci.names[i], i);
    check(fresh, op, path, ":", line_of[i], ": class name '", ci.names[i], "' repeats line ", line_of[it->second]);
  }
  return ci;
}

}  // namespace

// ---- decoding ----

bool is_image_file_name(const std::string& name) {
  const std::string ext = extension_of(name);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".ppm" || ext == ".pgm";
}

Tensor decode_image(const uint8_t* data, size_t size, const std::string& what, int64_t channels) {
  const char* op = "decode_image";
  check(channels == 1 || channels == 3, op, "channels must be 1 or 3, got ", channels);
  check(size > 0, op, what, ": the file is empty");
  check(size <= static_cast<size_t>(INT_MAX), op, what, ": ", size, " bytes is more than stb_image reads (2 GiB)");
  int w = 0, h = 0, file_channels = 0;
  stbi_uc* pixels = stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &file_channels,
                                          static_cast<int>(channels));
  if (pixels == nullptr) {
    const char* reason = stbi_failure_reason();
    fail(op, what, ": cannot decode the image (stb_image: ",
         reason != nullptr && *reason != '\0' ? reason : "corrupt or truncated data", ")");
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> owner(pixels, stbi_image_free);
  check(w > 0 && h > 0, op, what, ": decoded to an empty ", w, "x", h, " image");
  const int64_t H = h, W = w, C = channels, HW = H * W;
  Tensor out = Tensor::empty({C, H, W}, DType::u8);
  uint8_t* dst = out.data<uint8_t>();
  // stb gives interleaved HWC; the engine wants planar CHW.
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = 0; p < HW; ++p) dst[c * HW + p] = pixels[p * C + c];
  return out;
}

Tensor decode_image_file(const std::string& path, int64_t channels) {
  const char* op = "decode_image";
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in.is_open()) fail(op, "cannot open image file '", path, "': ", std::strerror(errno));
  const std::streamoff end = in.tellg();
  check(end >= 0, op, "cannot read image file '", path, "'");
  std::vector<uint8_t> bytes(static_cast<size_t>(end));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  check(in.gcount() == static_cast<std::streamsize>(bytes.size()), op, "error reading image file '", path, "'");
  return decode_image(bytes.data(), bytes.size(), path, channels);
}

// ---- class-index files ----

ClassIndex load_class_index(const std::string& path) {
  const char* op = "load_class_index";
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) fail(op, "cannot open class-index file '", path, "': ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  check(!in.bad(), op, "error reading class-index file '", path, "'");
  const std::string text = buffer.str();
  const std::string head = trim(text.substr(0, 64));
  ClassIndex ci = !head.empty() && head[0] == '{' ? class_index_from_json(path, text)
                                                  : class_index_from_text(path, text);
  std::map<std::string, size_t> where;
  for (size_t i = 0; i < ci.names.size(); ++i) {
    auto [it, fresh] = where.emplace(ci.names[i], i);
    check(fresh, op, path, ": class name '", ci.names[i], "' is given to classes ", it->second, " and ", i);
  }
  return ci;
}

// ---- folders ----

Dataset load_image_folder(const std::string& dir, bool train, const std::string& class_index_path) {
  const char* op = "load_image_folder";
  check(!dir.empty(), op, "no folder given");
  std::error_code ec;
  const fs::path root(dir);
  check(fs::exists(root, ec), op, "image folder '", dir, "' does not exist");
  check(is_dir(root), op, "'", dir, "' is not a folder");

  // The split: DIR/train + DIR/val, or DIR for both.
  fs::path split = root;
  const bool has_train = is_dir(root / "train"), has_val = is_dir(root / "val");
  if (has_train || has_val) {
    const char* want = train ? "train" : "val";
    check(train ? has_train : has_val, op, "'", dir, "' has a ", train ? "val" : "train", "/ folder but no ", want,
          "/ folder (an image folder is either DIR/train + DIR/val, or the class folders directly in DIR)");
    split = root / want;
  }
  const std::string split_name = split.string();

  const std::vector<std::string> class_dirs = class_folders(split);

  Dataset d;
  d.name = "folder";
  std::vector<int64_t> label_of_folder(class_dirs.size());
  std::map<std::string, int64_t> index_of;
  if (class_index_path.empty()) {
    // Both splits take their numbering from the training folders, so that a class
    // missing from val/ does not shift the labels of the classes after it.
    d.class_names = has_train ? class_folders(root / "train") : class_dirs;
    for (size_t k = 0; k < d.class_names.size(); ++k) index_of[d.class_names[k]] = static_cast<int64_t>(k);
  } else {
    const ClassIndex ci = load_class_index(class_index_path);
    for (size_t k = 0; k < ci.names.size(); ++k) {
      index_of[ci.names[k]] = static_cast<int64_t>(k);
      d.class_names.push_back(ci.descriptions[k].empty() ? ci.names[k] : ci.descriptions[k]);
    }
  }
  d.num_classes = static_cast<int64_t>(d.class_names.size());
  for (size_t c = 0; c < class_dirs.size(); ++c) {
    auto found = index_of.find(class_dirs[c]);
    if (found == index_of.end()) {
      if (class_index_path.empty())
        fail(op, "class folder '", class_dirs[c], "' of '", split_name, "' has no twin in '", (root / "train").string(),
             "', whose class folders number the classes (or pass a class-index file)");
      fail(op, "class folder '", class_dirs[c], "' of '", split_name, "' is not in the class-index file '",
           class_index_path, "' (", d.num_classes, " classes, e.g. '", index_of.begin()->first, "')");
    }
    label_of_folder[c] = found->second;
  }

  std::string names;
  std::vector<size_t> offsets{0};
  std::vector<int64_t> labels;
  for (size_t c = 0; c < class_dirs.size(); ++c) {
    const fs::path class_path = split / class_dirs[c];
    // (folder relative to the split, file name): torchvision's order.
    std::vector<std::pair<std::string, std::string>> files;
    fs::recursive_directory_iterator walk(class_path, fs::directory_options::follow_directory_symlink, ec);
    check(!ec, op, "cannot list '", class_path.string(), "': ", ec.message());
    for (; walk != fs::recursive_directory_iterator(); walk.increment(ec)) {
      check(!ec, op, "cannot list '", class_path.string(), "': ", ec.message());
      const fs::path& p = walk->path();
      std::error_code sec;
      if (hidden(p)) {
        if (walk->is_directory(sec)) walk.disable_recursion_pending();
        continue;
      }
      if (!walk->is_regular_file(sec)) continue;
      const std::string file = p.filename().string();
      check(!is_undecodable_image_name(file), op, "'", p.string(),
            "' is a TIFF or WebP image, which stb_image cannot decode; convert it to PNG or JPEG");
      if (!is_image_file_name(file)) continue;
      files.emplace_back(p.parent_path().lexically_relative(split).generic_string(), file);
    }
    check(!ec, op, "cannot list '", class_path.string(), "': ", ec.message());
    check(!files.empty(), op, "class folder '", class_path.string(),
          "' holds no image file (.jpg .jpeg .png .bmp .ppm .pgm)");
    std::sort(files.begin(), files.end());
    for (const auto& [folder, file] : files) {
      names += folder + "/" + file;
      offsets.push_back(names.size());
      labels.push_back(label_of_folder[c]);
    }
  }
  const int64_t n = static_cast<int64_t>(labels.size());
  d.labels = Tensor::from_vector(labels, {n});
  d.source = std::make_shared<FolderImageSource>(split_name, std::move(names), std::move(offsets));
  return d;
}

}  // namespace dmix::augment
