#include "nn/models/registry.h"

#include <mutex>
#include <regex>
#include <sstream>

#include "engine/error.h"
#include "nn/models/preact_resnet.h"
#include "nn/models/pyramidnet.h"
#include "nn/models/resnet.h"
#include "nn/models/resnext.h"
#include "nn/models/wide_resnet.h"

namespace dmix::nn {

namespace {

const std::vector<std::string>& ready_made_names() {
  static const std::vector<std::string> names{
      "pyramidnet110_a64", "pyramidnet200_a240", "pyramidnet20_a48", "resnet18",        "resnet34",
      "resnet50",          "resnet101",          "resnet152",        "preactresnet18",  "preactresnet34",
      "preactresnet50",    "preactresnet101",    "preactresnet152",  "wrn16_8",         "wrn28_10",
      "resnext29_4_24"};
  return names;
}

const std::vector<std::string>& name_patterns() {
  static const std::vector<std::string> patterns{"pyramidnet<depth>_a<alpha>[_basic][_imagenet]",
                                                 "wrn<depth>_<widen>", "resnext<depth>_<cardinality>_<width>"};
  return patterns;
}

[[noreturn]] void unknown(const std::string& name, const std::string& why = "") {
  std::ostringstream os;
  if (why.empty())
    os << "unknown model '" << name << "'; known: ";
  else
    os << "cannot build '" << name << "' (" << why << "); known: ";
  const auto names = model_names();
  for (size_t i = 0; i < names.size(); ++i) os << (i ? ", " : "") << names[i];
  throw Error("make_model: " + os.str());
}

int64_t to_int(const std::string& s) { return std::stoll(s); }

// nn's own families: the names listed at the top of registry.h.
std::shared_ptr<Module> make_builtin(const std::string& name, int64_t num_classes, int64_t in_channels,
                                     Generator& gen);

// Families registered by higher layers, guarded because registration may happen on any thread.
struct Families {
  std::mutex mutex;
  std::vector<ModelFamily> list;
};
Families& families() {
  static Families f;
  return f;
}
std::vector<ModelFamily> registered_families() {
  Families& f = families();
  std::lock_guard<std::mutex> lock(f.mutex);
  return f.list;
}

}  // namespace

void register_model_family(ModelFamily family) {
  check(!family.names.empty() && family.matches && family.make, "register_model_family",
        "a family needs names, matches and make");
  Families& f = families();
  std::lock_guard<std::mutex> lock(f.mutex);
  for (ModelFamily& existing : f.list)
    if (existing.names.front() == family.names.front()) {
      existing = std::move(family);
      return;
    }
  f.list.push_back(std::move(family));
}

std::vector<std::string> model_names() {
  std::vector<std::string> out = ready_made_names();
  out.insert(out.end(), name_patterns().begin(), name_patterns().end());
  for (const ModelFamily& family : registered_families())
    out.insert(out.end(), family.names.begin(), family.names.end());
  return out;
}

std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes, int64_t in_channels, Generator& gen) {
  return make_model(name, num_classes, in_channels, ModelSettings{}, gen);
}

std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes, int64_t in_channels,
                                   const ModelSettings& settings, Generator& gen) {
  check(num_classes > 0 && in_channels > 0, "make_model", "num_classes (", num_classes, ") and in_channels (",
        in_channels, ") must be positive for '", name, "'");
  for (const ModelFamily& family : registered_families())
    if (family.matches(name)) return family.make(name, num_classes, in_channels, settings, gen);
  std::shared_ptr<Module> model = make_builtin(name, num_classes, in_channels, gen);
  if (!settings.empty()) fail("make_model", "'", name, "' takes no settings, got '", settings.begin()->first, "'");
  return model;
}

namespace {

std::shared_ptr<Module> make_builtin(const std::string& name, int64_t num_classes, int64_t in_channels,
                                     Generator& gen) {
  std::smatch m;
  // Digits are bounded so std::stoll cannot overflow.
  static const std::regex pyramid(R"(pyramidnet(\d{1,4})_a(\d{1,5}(?:\.\d{1,6})?)(_basic)?(_imagenet)?)");
  static const std::regex resnet(R"(resnet(\d{1,4}))");
  static const std::regex preact(R"(preactresnet(\d{1,4}))");
  static const std::regex wrn(R"(wrn(\d{1,4})_(\d{1,3}))");
  static const std::regex resnext(R"(resnext(\d{1,4})_(\d{1,3})_(\d{1,4}))");
  try {
    if (std::regex_match(name, m, pyramid)) {
      PyramidNetConfig c;
      c.depth = to_int(m[1]);
      c.alpha = std::stod(m[2]);
      c.bottleneck = !m[3].matched;
      c.imagenet = m[4].matched;
      c.num_classes = num_classes;
      c.in_channels = in_channels;
      return std::make_shared<PyramidNet>(c, gen);
    }
    if (std::regex_match(name, m, resnet)) {
      ResNetConfig c;
      c.depth = to_int(m[1]);
      c.num_classes = num_classes;
      c.in_channels = in_channels;
      return std::make_shared<ResNet>(c, gen);
    }
    if (std::regex_match(name, m, preact)) {
      PreActResNetConfig c;
      c.depth = to_int(m[1]);
      c.num_classes = num_classes;
      c.in_channels = in_channels;
      return std::make_shared<PreActResNet>(c, gen);
    }
    if (std::regex_match(name, m, wrn)) {
      WideResNetConfig c;
      c.depth = to_int(m[1]);
      c.widen_factor = to_int(m[2]);
      c.num_classes = num_classes;
      c.in_channels = in_channels;
      return std::make_shared<WideResNet>(c, gen);
    }
    if (std::regex_match(name, m, resnext)) {
      ResNeXtConfig c;
      c.depth = to_int(m[1]);
      c.cardinality = to_int(m[2]);
      c.base_width = to_int(m[3]);
      c.num_classes = num_classes;
      c.in_channels = in_channels;
      return std::make_shared<ResNeXt>(c, gen);
    }
  } catch (const Error& e) {
    // A family matched but its parameters are impossible (resnet20, wrn17_2, ...).
    unknown(name, e.what());
  }
  unknown(name);
}

}  // namespace

std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes, int64_t in_channels) {
  return make_model(name, num_classes, in_channels, default_generator());
}

}  // namespace dmix::nn
