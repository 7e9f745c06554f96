// Subsampling: measures, per-class selection, the two outside baselines (MC dropout and
// K-Center on penultimate features) and the subset / scores files.
#include "augment/subsample.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "augment/loader.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "nn/layers.h"
#include "nn/models/feature_head.h"

namespace dmix::augment {
namespace {

// Keys of the subsampler's own random words, apart from the loader's and the scorer's.
constexpr uint64_t kRandomDomain = 0xA54FF53A5F1D36F1ull;     // frac(sqrt(7)) bits
constexpr uint64_t kKCenterDomain = 0x510E527FADE682D1ull;    // frac(sqrt(11)) bits
constexpr uint64_t kMcDropoutDomain = 0x9B05688C2B3E6C1Full;  // frac(sqrt(13)) bits

std::string canonical(const std::string& name) {
  std::string s = name;
  for (char& c : s) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Sets the default generator to a given state for a while and puts the old one back.
class DefaultGeneratorState {
 public:
  DefaultGeneratorState(uint64_t seed, uint64_t stream)
      : saved_seed_(default_generator().seed()), saved_stream_(default_generator().stream()) {
    default_generator().set_state(seed, stream);
  }
  ~DefaultGeneratorState() { default_generator().set_state(saved_seed_, saved_stream_); }
  DefaultGeneratorState(const DefaultGeneratorState&) = delete;
  DefaultGeneratorState& operator=(const DefaultGeneratorState&) = delete;

 private:
  uint64_t saved_seed_, saved_stream_;
};

// Class -> positions (into the candidate lists) of its images, classes in increasing order.
std::map<int64_t, std::vector<int64_t>> by_class(const std::vector<int64_t>& indices,
                                                 const std::vector<int64_t>& labels) {
  check(indices.size() == labels.size(), "select_per_class", "indices and labels differ in length: ", indices.size(),
        " and ", labels.size());
  std::map<int64_t, std::vector<int64_t>> classes;
  for (size_t p = 0; p < indices.size(); ++p) classes[labels[p]].push_back(static_cast<int64_t>(p));
  return classes;
}

void check_ratio(double ratio, const char* op) {
  check(std::isfinite(ratio) && ratio > 0.0 && ratio <= 1.0, op, "the ratio t must be in (0, 1], got ", ratio);
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

double entropy(const std::vector<double>& p) {
  double h = 0.0;
  for (double q : p)
    if (q > 0.0) h -= q * std::log(q);
  return h;
}

// Adds softmax(logits row) to sum (num_classes doubles).
void add_softmax(const float* z, int64_t C, double* sum) {
  double top = z[0];
  for (int64_t c = 1; c < C; ++c) top = std::max<double>(top, z[c]);
  double total = 0.0;
  for (int64_t c = 0; c < C; ++c) total += std::exp(static_cast<double>(z[c]) - top);
  for (int64_t c = 0; c < C; ++c) sum[c] += std::exp(static_cast<double>(z[c]) - top) / total;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

// Writes `text` to path through a temporary file and a rename.
void write_atomically(const std::string& path, const std::string& text, const char* op) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(out.is_open(), op, "cannot write '", tmp, "'");
    out << text;
    out.flush();
    check(out.good(), op, "error writing '", tmp, "'");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    fail(op, "cannot rename '", tmp, "' to '", path, "': ", ec.message());
  }
}

}  // namespace

// ---- names ----

SubsetMeasure parse_subset_measure(const std::string& name) {
  const std::string s = canonical(name);
  if (s == "cv") return SubsetMeasure::Cv;
  if (s == "mean-low" || s == "easy") return SubsetMeasure::MeanLow;
  if (s == "mean-high" || s == "hard") return SubsetMeasure::MeanHigh;
  if (s == "std") return SubsetMeasure::Std;
  if (s == "random") return SubsetMeasure::Random;
  if (s == "mc-dropout") return SubsetMeasure::McDropout;
  if (s == "k-center" || s == "kcenter") return SubsetMeasure::KCenter;
  fail("subsample", "unknown measure '", name,
       "' (expected cv, mean-low, mean-high, std, random, mc-dropout or k-center)");
}

const char* subset_measure_name(SubsetMeasure measure) {
  switch (measure) {
    case SubsetMeasure::Cv: return "cv";
    case SubsetMeasure::MeanLow: return "mean-low";
    case SubsetMeasure::MeanHigh: return "mean-high";
    case SubsetMeasure::Std: return "std";
    case SubsetMeasure::Random: return "random";
    case SubsetMeasure::McDropout: return "mc-dropout";
    case SubsetMeasure::KCenter: return "k-center";
  }
  return "?";
}

bool measure_uses_mixing(SubsetMeasure m) {
  return m == SubsetMeasure::Cv || m == SubsetMeasure::MeanLow || m == SubsetMeasure::MeanHigh ||
         m == SubsetMeasure::Std;
}

SelectionRule parse_selection_rule(const std::string& name) {
  const std::string s = canonical(name);
  if (s == "top") return SelectionRule::Top;
  if (s == "interval") return SelectionRule::Interval;
  fail("subsample", "unknown selection rule '", name, "' (expected top or interval)");
}

const char* selection_rule_name(SelectionRule rule) { return rule == SelectionRule::Top ? "top" : "interval"; }

// ---- selection ----

int64_t per_class_count(double ratio, int64_t class_size) {
  check_ratio(ratio, "per_class_count");
  check(class_size >= 1, "per_class_count", "a class needs at least one image, got ", class_size);
  const double exact = ratio * static_cast<double>(class_size);
  // Products such as 0.07 * 100 = 7.000000000000001 must not round up to 8.
  const int64_t n = static_cast<int64_t>(std::ceil(exact - 1e-9 * std::max(1.0, exact)));
  return std::clamp<int64_t>(n, 1, class_size);
}

std::vector<int64_t> select_per_class(const std::vector<int64_t>& indices, const std::vector<int64_t>& labels,
                                      const std::vector<double>& scores, double ratio, SelectionRule rule) {
  const char* op = "select_per_class";
  check_ratio(ratio, op);
  check(scores.size() == indices.size(), op, "scores and indices differ in length: ", scores.size(), " and ",
        indices.size());
  std::vector<int64_t> chosen;
  for (auto& [label, members] : by_class(indices, labels)) {
    std::vector<int64_t> rank = members;
    std::sort(rank.begin(), rank.end(), [&](int64_t a, int64_t b) {
      const double sa = scores[static_cast<size_t>(a)], sb = scores[static_cast<size_t>(b)];
      // NaN scores rank last, so they never displace a real one.
      if (std::isnan(sa) != std::isnan(sb)) return std::isnan(sb);
      if (sa != sb && !std::isnan(sa)) return sa > sb;
      return indices[static_cast<size_t>(a)] < indices[static_cast<size_t>(b)];
    });
    const int64_t N = static_cast<int64_t>(rank.size()), n = per_class_count(ratio, N);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t r = rule == SelectionRule::Top ? j : j * N / n;
      chosen.push_back(indices[static_cast<size_t>(rank[static_cast<size_t>(r)])]);
    }
  }
  return sorted(std::move(chosen));
}

std::vector<double> measure_scores(SubsetMeasure measure, const std::vector<SampleUncertainty>& scores) {
  check(measure_uses_mixing(measure), "measure_scores", subset_measure_name(measure),
        " is not a measure of the mixing loss distribution");
  std::vector<double> out;
  out.reserve(scores.size());
  for (const SampleUncertainty& s : scores) {
    switch (measure) {
      case SubsetMeasure::Cv: out.push_back(s.cv); break;
      case SubsetMeasure::MeanLow: out.push_back(-s.mean); break;
      case SubsetMeasure::MeanHigh: out.push_back(s.mean); break;
      default: out.push_back(s.std); break;
    }
  }
  return out;
}

std::vector<double> random_scores(const std::vector<int64_t>& indices, uint64_t seed) {
  std::vector<double> out;
  out.reserve(indices.size());
  for (int64_t i : indices) {
    SampleRng rng(seed ^ kRandomDomain, 0, static_cast<uint64_t>(i));
    out.push_back(rng.uniform());
  }
  return out;
}

// ---- K-Center ----

std::vector<int64_t> kcenter_greedy(const float* features, int64_t n, int64_t dim, int64_t budget, int64_t first) {
  const char* op = "kcenter_greedy";
  check(n >= 1 && dim >= 1, op, "needs at least one row of at least one feature, got ", n, " x ", dim);
  check(budget >= 1 && budget <= n, op, "budget must be in [1, ", n, "], got ", budget);
  check(first >= 0 && first < n, op, "first row ", first, " is outside [0, ", n, ")");
  // Squared distances: the farthest point is the same, without n square roots per pick.
  std::vector<double> nearest(static_cast<size_t>(n), INFINITY);
  std::vector<int64_t> picked{first};
  picked.reserve(static_cast<size_t>(budget));
  int64_t centre = first;
  while (static_cast<int64_t>(picked.size()) < budget) {
    const float* c = features + centre * dim;
#pragma omp parallel for schedule(static) if (n * dim >= (int64_t{1} << 16))
    for (int64_t i = 0; i < n; ++i) {
      const float* x = features + i * dim;
      double d = 0.0;
      for (int64_t j = 0; j < dim; ++j) {
        const double diff = static_cast<double>(x[j]) - static_cast<double>(c[j]);
        d += diff * diff;
      }
      nearest[static_cast<size_t>(i)] = std::min(nearest[static_cast<size_t>(i)], d);
    }
    centre = static_cast<int64_t>(std::max_element(nearest.begin(), nearest.end()) - nearest.begin());
    picked.push_back(centre);
  }
  return picked;
}

std::vector<int64_t> select_kcenter_per_class(const std::vector<int64_t>& indices, const std::vector<int64_t>& labels,
                                              const float* features, int64_t dim, double ratio, uint64_t seed) {
  check_ratio(ratio, "select_kcenter_per_class");
  std::vector<int64_t> chosen;
  std::vector<float> rows;
  for (auto& [label, members] : by_class(indices, labels)) {
    const int64_t N = static_cast<int64_t>(members.size());
    rows.resize(static_cast<size_t>(N * dim));
    for (int64_t r = 0; r < N; ++r)
      std::copy_n(features + members[static_cast<size_t>(r)] * dim, dim, rows.begin() + r * dim);
    // No labelled set to start from: the first centre is uniform, as kCenterGreedy does.
    SampleRng rng(seed ^ kKCenterDomain, 0, static_cast<uint64_t>(label));
    const int64_t first = rng.randint(0, N);
    for (int64_t r : kcenter_greedy(rows.data(), N, dim, per_class_count(ratio, N), first))
      chosen.push_back(indices[static_cast<size_t>(members[static_cast<size_t>(r)])]);
  }
  return sorted(std::move(chosen));
}

// ---- model passes ----

Tensor penultimate_features(nn::Module& model, const Dataset& dataset, const Pipeline& pipeline,
                            const std::vector<int64_t>& pool_in, int64_t batch_size) {
  const char* op = "penultimate_features";
  check(batch_size >= 1, op, "batch_size must be >= 1, got ", batch_size);
  const std::vector<int64_t> pool = resolve_pool(dataset, pool_in);
  const nn::FeatureHead head = nn::feature_head(model);
  PreparedImages images(dataset, pipeline);
  const Device device = model.device();
  TrainingModeGuard restore(model);
  model.eval();
  autograd::NoGradGuard no_grad;
  const int64_t P = static_cast<int64_t>(pool.size());
  Tensor out;
  for (int64_t start = 0; start < P; start += batch_size) {
    const std::vector<int64_t> part(pool.begin() + start, pool.begin() + std::min(P, start + batch_size));
    Tensor f = head.features(images.batch(part).to(device)).to(Device::cpu());
    check(f.dtype() == DType::f32 && f.dim() == 2 && f.size(0) == static_cast<int64_t>(part.size()), op,
          "the model's features are ", f.str(), " for ", part.size(), " images");
    if (!out.defined()) out = Tensor::empty({P, f.size(1)}, DType::f32);
    std::copy_n(f.data<float>(), f.numel(), out.data<float>() + start * f.size(1));
  }
  return out;
}

std::vector<double> mc_dropout_entropy(nn::Module& model, const Dataset& dataset, const Pipeline& pipeline,
                                       const std::vector<int64_t>& pool_in, const McDropoutOptions& o) {
  const char* op = "mc_dropout";
  check(o.passes >= 1, op, "passes (T) must be >= 1, got ", o.passes);
  check(o.batch_size >= 1, op, "batch_size must be >= 1, got ", o.batch_size);
  check(std::isfinite(o.head_dropout) && o.head_dropout >= 0.0 && o.head_dropout < 1.0, op,
        "head_dropout must be in [0, 1), got ", o.head_dropout);
  const std::vector<int64_t> pool = resolve_pool(dataset, pool_in);
  const int64_t P = static_cast<int64_t>(pool.size()), C = dataset.num_classes;

  std::vector<nn::Module*> dropouts;
  for (nn::Module* m : model.modules())
    if (dynamic_cast<nn::Dropout*>(m)) dropouts.push_back(m);
  check(dropouts.empty() || o.head_dropout == 0.0, op, "the model has ", dropouts.size(),
        " Dropout layers of its own; head dropout applies only to models without any");
  check(!dropouts.empty() || o.head_dropout > 0.0, op,
        "the model has no Dropout layer to keep on at test time: give a head dropout probability "
        "(McDropoutOptions::head_dropout, e.g. 0.5) to drop the classifier's input");

  PreparedImages images(dataset, pipeline);
  const Device device = model.device();
  TrainingModeGuard restore(model);
  model.eval();
  autograd::NoGradGuard no_grad;
  std::vector<double> out(static_cast<size_t>(P));
  std::vector<double> mean(static_cast<size_t>(o.batch_size * C));

  auto accumulate = [&](const Tensor& logits_on_device, int64_t count) {
    const Tensor logits = logits_on_device.to(Device::cpu());
    check(logits.dtype() == DType::f32 && logits.shape() == Shape{count, C}, op, "the model gave ", logits.str(),
          " for ", count, " images of ", C, " classes");
    for (int64_t r = 0; r < count; ++r) add_softmax(logits.data<float>() + r * C, C, mean.data() + r * C);
  };

  if (!dropouts.empty()) {
    for (nn::Module* m : dropouts) m->set_training_flag(true);
    DefaultGeneratorState state(o.seed ^ kMcDropoutDomain, 0);
    for (int64_t start = 0; start < P; start += o.batch_size) {
      const std::vector<int64_t> part(pool.begin() + start, pool.begin() + std::min(P, start + o.batch_size));
      const int64_t count = static_cast<int64_t>(part.size());
      const Tensor x = images.batch(part).to(device);
      std::fill(mean.begin(), mean.end(), 0.0);
      for (int64_t t = 0; t < o.passes; ++t) accumulate(model.forward(x), count);
      for (int64_t r = 0; r < count; ++r) {
        std::vector<double> p(mean.begin() + r * C, mean.begin() + (r + 1) * C);
        for (double& q : p) q /= static_cast<double>(o.passes);
        out[static_cast<size_t>(start + r)] = entropy(p);
      }
    }
    return out;
  }

  // Head dropout: the features once, then T passes of the classifier over masked copies.
  const nn::FeatureHead head = nn::feature_head(model);
  const double keep = 1.0 - o.head_dropout;
  for (int64_t start = 0; start < P; start += o.batch_size) {
    const std::vector<int64_t> part(pool.begin() + start, pool.begin() + std::min(P, start + o.batch_size));
    const int64_t count = static_cast<int64_t>(part.size());
    const Tensor features = head.features(images.batch(part).to(device)).to(Device::cpu());
    check(features.dtype() == DType::f32 && features.dim() == 2 && features.size(0) == count, op,
          "the model's features are ", features.str(), " for ", count, " images");
    const int64_t D = features.size(1);
    std::fill(mean.begin(), mean.end(), 0.0);
    Tensor masked = Tensor::empty({count, D}, DType::f32);
    for (int64_t t = 0; t < o.passes; ++t) {
      const float* f = features.data<float>();
      float* dst = masked.data<float>();
      for (int64_t r = 0; r < count; ++r) {
        SampleRng rng(o.seed ^ kMcDropoutDomain, static_cast<uint64_t>(t),
                      static_cast<uint64_t>(part[static_cast<size_t>(r)]));
        for (int64_t j = 0; j < D; ++j)
          dst[r * D + j] = rng.bernoulli(keep) ? static_cast<float>(f[r * D + j] / keep) : 0.0f;
      }
      accumulate(head.classifier->forward(masked.to(device)), count);
    }
    for (int64_t r = 0; r < count; ++r) {
      std::vector<double> p(mean.begin() + r * C, mean.begin() + (r + 1) * C);
      for (double& q : p) q /= static_cast<double>(o.passes);
      out[static_cast<size_t>(start + r)] = entropy(p);
    }
  }
  return out;
}

// ---- end to end ----

SubsampleResult subsample(nn::Module& model, const Dataset& dataset, const Pipeline& pipeline,
                          const std::vector<int64_t>& pool_in, const SubsampleOptions& o) {
  check_ratio(o.ratio, "subsample");
  check(o.measure != SubsetMeasure::KCenter || o.rule == SelectionRule::Top, "subsample",
        "k-center picks its own centres; the interval rule needs a ranking (use top)");
  const std::vector<int64_t> pool = resolve_pool(dataset, pool_in);
  std::vector<int64_t> labels;
  labels.reserve(pool.size());
  for (int64_t i : pool) labels.push_back(dataset.labels.data<int64_t>()[i]);

  SubsampleResult r;
  switch (o.measure) {
    case SubsetMeasure::KCenter: {
      const Tensor f = penultimate_features(model, dataset, pipeline, pool, o.uncertainty.batch_size);
      r.subset = select_kcenter_per_class(pool, labels, f.data<float>(), f.size(1), o.ratio, o.uncertainty.seed);
      return r;
    }
    case SubsetMeasure::Random: r.measure = random_scores(pool, o.uncertainty.seed); break;
    case SubsetMeasure::McDropout: r.measure = mc_dropout_entropy(model, dataset, pipeline, pool, o.mc_dropout); break;
    default:
      r.scores = score_uncertainty(model, dataset, pipeline, pool, o.uncertainty);
      r.measure = measure_scores(o.measure, r.scores);
      break;
  }
  r.subset = select_per_class(pool, labels, r.measure, o.ratio, o.rule);
  return r;
}

// ---- files ----

void write_subset_file(const std::string& path, const std::vector<int64_t>& subset, const SubsetFileInfo& info) {
  std::ostringstream text;
  text << "# dmix subset: measure " << info.measure << ", rule " << info.rule << ", ratio " << info.ratio << ", seed "
       << info.seed << ", checkpoint " << (info.checkpoint.empty() ? "(none)" : info.checkpoint) << ", dataset "
       << info.dataset << " (" << info.dataset_size << " images), " << subset.size() << " indices\n";
  for (int64_t i : subset) text << i << '\n';
  write_atomically(path, text.str(), "write_subset_file");
}

void write_scores_json(const std::string& path, const std::vector<SampleUncertainty>& scores,
                       const UncertaintyOptions& o, const std::string& checkpoint, const std::string& dataset) {
  std::ostringstream j;
  j << "{\"draws\": " << o.draws << ", \"anchor_share\": " << json_number(o.anchor_share)
    << ", \"alpha\": " << json_number(o.alpha) << ", \"k\": " << o.k << ", \"anchor_depth\": " << o.anchor_depth
    << ", \"seed\": " << o.seed << ", \"checkpoint\": " << json_string(checkpoint)
    << ", \"dataset\": " << json_string(dataset) << ",\n \"images\": [";
  for (size_t n = 0; n < scores.size(); ++n) {
    const SampleUncertainty& s = scores[n];
    j << (n ? ",\n  " : "\n  ") << "{\"index\": " << s.index << ", \"class\": " << s.label
      << ", \"mean\": " << json_number(s.mean) << ", \"std\": " << json_number(s.std)
      << ", \"cv\": " << json_number(s.cv);
    if (!s.losses.empty()) {
      j << ", \"losses\": [";
      for (size_t m = 0; m < s.losses.size(); ++m) j << (m ? ", " : "") << json_number(s.losses[m]);
      j << "]";
    }
    j << "}";
  }
  j << "\n]}\n";
  write_atomically(path, j.str(), "write_scores_json");
}

}  // namespace dmix::augment
