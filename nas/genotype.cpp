#include "nas/genotype.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "nas/operations.h"

namespace dmix::nas {

namespace {

using json = nlohmann::json;

void validate_cell(const std::vector<GenotypeEdge>& edges, const std::vector<int64_t>& concat, const char* cell,
                   const std::string& source) {
  const int64_t want = kGenotypeSteps * kEdgesPerNode;
  check(int64_t(edges.size()) == want, "genotype", source, ": '", cell, "' has ", edges.size(), " edges, not ",
        want, " (", kEdgesPerNode, " per node x ", kGenotypeSteps, " nodes)");
  for (size_t k = 0; k < edges.size(); ++k) {
    const auto& [op, input] = edges[k];
    check(is_primitive(op), "genotype", source, ": '", cell, "' edge ", k, " names unknown primitive '", op, "'");
    check(op != "none", "genotype", source, ": '", cell, "' edge ", k, " is 'none', which a genotype never keeps");
    const int64_t node = 2 + int64_t(k) / kEdgesPerNode;
    check(input >= 0 && input < node, "genotype", source, ": '", cell, "' edge ", k, " (node ", node,
          ") takes input node ", input, ", which must be in [0, ", node, ")");
  }
  check(!concat.empty(), "genotype", source, ": '", cell, "_concat' is empty");
  std::set<int64_t> seen;
  for (int64_t n : concat) {
    check(n >= 0 && n < 2 + kGenotypeSteps, "genotype", source, ": '", cell, "_concat' names node ", n,
          ", which must be in [0, ", 2 + kGenotypeSteps, ")");
    check(seen.insert(n).second, "genotype", source, ": '", cell, "_concat' repeats node ", n);
  }
}

std::vector<GenotypeEdge> edges_from(const json& j, const char* field, const std::string& source) {
  check(j.is_array(), "genotype", source, ": '", field, "' must be a list of [\"op\", input] pairs");
  std::vector<GenotypeEdge> edges;
  for (const json& e : j) {
    check(e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_number_integer(), "genotype", source,
          ": '", field, "' entry ", e.dump(), " is not an [\"op\", input] pair");
    edges.emplace_back(e[0].get<std::string>(), e[1].get<int64_t>());
  }
  return edges;
}

std::vector<int64_t> nodes_from(const json& j, const char* field, const std::string& source) {
  check(j.is_array(), "genotype", source, ": '", field, "' must be a list of node numbers");
  std::vector<int64_t> nodes;
  for (const json& n : j) {
    check(n.is_number_integer(), "genotype", source, ": '", field, "' entry ", n.dump(), " is not a node number");
    nodes.push_back(n.get<int64_t>());
  }
  return nodes;
}

json edges_json(const std::vector<GenotypeEdge>& edges) {
  json out = json::array();
  for (const auto& [op, input] : edges) out.push_back(json::array({op, input}));
  return out;
}

Genotype make(std::vector<GenotypeEdge> normal, std::vector<GenotypeEdge> reduce) {
  return {std::move(normal), {2, 3, 4, 5}, std::move(reduce), {2, 3, 4, 5}};
}

// genotypes.py of yuhuixu1993/PC-DARTS (DARTS_V1 and DARTS_V2 as in quark0/darts).
const std::map<std::string, Genotype>& builtins() {
  static const std::map<std::string, Genotype> g = {
      {"DARTS_V1",
       make({{"sep_conv_3x3", 1}, {"sep_conv_3x3", 0}, {"skip_connect", 0}, {"sep_conv_3x3", 1},
             {"skip_connect", 0}, {"sep_conv_3x3", 1}, {"sep_conv_3x3", 0}, {"skip_connect", 2}},
            {{"max_pool_3x3", 0}, {"max_pool_3x3", 1}, {"skip_connect", 2}, {"max_pool_3x3", 0},
             {"max_pool_3x3", 0}, {"skip_connect", 2}, {"skip_connect", 2}, {"avg_pool_3x3", 0}})},
      {"DARTS_V2",
       make({{"sep_conv_3x3", 0}, {"sep_conv_3x3", 1}, {"sep_conv_3x3", 0}, {"sep_conv_3x3", 1},
             {"sep_conv_3x3", 1}, {"skip_connect", 0}, {"skip_connect", 0}, {"dil_conv_3x3", 2}},
            {{"max_pool_3x3", 0}, {"max_pool_3x3", 1}, {"skip_connect", 2}, {"max_pool_3x3", 1},
             {"max_pool_3x3", 0}, {"skip_connect", 2}, {"skip_connect", 2}, {"max_pool_3x3", 1}})},
      {"PC_DARTS_cifar",
       make({{"sep_conv_3x3", 1}, {"skip_connect", 0}, {"sep_conv_3x3", 0}, {"dil_conv_3x3", 1},
             {"sep_conv_5x5", 0}, {"sep_conv_3x3", 1}, {"avg_pool_3x3", 0}, {"dil_conv_3x3", 1}},
            {{"sep_conv_5x5", 1}, {"max_pool_3x3", 0}, {"sep_conv_5x5", 1}, {"sep_conv_5x5", 2},
             {"sep_conv_3x3", 0}, {"sep_conv_3x3", 3}, {"sep_conv_3x3", 1}, {"sep_conv_3x3", 2}})},
      {"PC_DARTS_image",
       make({{"skip_connect", 1}, {"sep_conv_3x3", 0}, {"sep_conv_3x3", 0}, {"skip_connect", 1},
             {"sep_conv_3x3", 1}, {"sep_conv_3x3", 3}, {"sep_conv_3x3", 1}, {"dil_conv_5x5", 4}},
            {{"sep_conv_3x3", 0}, {"skip_connect", 1}, {"dil_conv_5x5", 2}, {"max_pool_3x3", 1},
             {"sep_conv_3x3", 2}, {"sep_conv_3x3", 1}, {"sep_conv_5x5", 0}, {"sep_conv_3x3", 3}})},
  };
  return g;
}

}  // namespace

void validate_genotype(const Genotype& g, const std::string& source) {
  validate_cell(g.normal, g.normal_concat, "normal", source);
  validate_cell(g.reduce, g.reduce_concat, "reduce", source);
}

std::string genotype_to_json(const Genotype& g) {
  // ordered_json keeps DARTS's field order in the file.
  nlohmann::ordered_json j;
  j["normal"] = edges_json(g.normal);
  j["normal_concat"] = g.normal_concat;
  j["reduce"] = edges_json(g.reduce);
  j["reduce_concat"] = g.reduce_concat;
  return j.dump();
}

Genotype genotype_from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann's message ends with the byte offset; its first part repeats the exception's id.
    std::string what = e.what();
    const auto colon = what.find("]: ");
    if (colon != std::string::npos) what = what.substr(colon + 3);
    fail("genotype", source, ": not valid JSON (", what, ")");
  }
  check(j.is_object(), "genotype", source,
        ": expected a JSON object with normal, normal_concat, reduce, reduce_concat");
  static const std::vector<std::string> fields{"normal", "normal_concat", "reduce", "reduce_concat"};
  for (const auto& field : fields)
    check(j.contains(field), "genotype", source, ": missing field '", field, "'");
  for (const auto& [key, value] : j.items())
    check(std::find(fields.begin(), fields.end(), key) != fields.end(), "genotype", source, ": unknown field '", key,
          "' (the fields are normal, normal_concat, reduce, reduce_concat)");
  Genotype g;
  g.normal = edges_from(j["normal"], "normal", source);
  g.normal_concat = nodes_from(j["normal_concat"], "normal_concat", source);
  g.reduce = edges_from(j["reduce"], "reduce", source);
  g.reduce_concat = nodes_from(j["reduce_concat"], "reduce_concat", source);
  validate_genotype(g, source);
  return g;
}

const std::vector<std::string>& builtin_genotype_names() {
  static const std::vector<std::string> names{"DARTS_V1", "DARTS_V2", "PC_DARTS_cifar", "PC_DARTS_image"};
  return names;
}

bool is_builtin_genotype(const std::string& name) { return builtins().count(name) > 0; }

const Genotype& builtin_genotype(const std::string& name) {
  auto it = builtins().find(name);
  check(it != builtins().end(), "genotype", "unknown built-in genotype '", name,
        "' (built-in: DARTS_V1, DARTS_V2, PC_DARTS_cifar, PC_DARTS_image)");
  return it->second;
}

Genotype load_genotype(const std::string& name_or_path) {
  if (is_builtin_genotype(name_or_path)) return builtin_genotype(name_or_path);
  std::ifstream in(name_or_path, std::ios::binary);
  check(bool(in), "genotype", "cannot read ", name_or_path,
        " (neither a file nor a built-in genotype: DARTS_V1, DARTS_V2, PC_DARTS_cifar, PC_DARTS_image)");
  std::ostringstream text;
  text << in.rdbuf();
  return genotype_from_json(text.str(), name_or_path);
}

void save_genotype(const std::string& path, const Genotype& g) {
  validate_genotype(g, path);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(bool(out), "save_genotype", "cannot write ", tmp);
    out << genotype_to_json(g) << "\n";
    out.flush();
    check(bool(out), "save_genotype", "writing ", tmp, " failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("save_genotype", "cannot rename ", tmp, " to ", path);
  }
}

}  // namespace dmix::nas
