// A DARTS genotype: the discrete cell a search derives, and what an evaluation network is
// built from. Each cell has 4 intermediate nodes; node i (numbered 2..5, after the cell's
// two inputs 0 and 1) sums two edges, each an operation applied to an earlier node, so a
// cell is 8 edges in node order, (op, input node), input node < 2 + i. The cell's output
// concatenates the nodes listed in `*_concat` (DARTS: 2, 3, 4, 5).
//
// Files are JSON in the field layout of DARTS's genotypes.py:
//   {"normal": [["sep_conv_3x3", 1], ["skip_connect", 0], ...], "normal_concat": [2, 3, 4, 5],
//    "reduce": [...], "reduce_concat": [2, 3, 4, 5]}
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dmix::nas {

// (operation, input node), as DARTS writes an edge.
using GenotypeEdge = std::pair<std::string, int64_t>;

struct Genotype {
  std::vector<GenotypeEdge> normal;
  std::vector<int64_t> normal_concat;
  std::vector<GenotypeEdge> reduce;
  std::vector<int64_t> reduce_concat;

  bool operator==(const Genotype& o) const {
    return normal == o.normal && normal_concat == o.normal_concat && reduce == o.reduce &&
           reduce_concat == o.reduce_concat;
  }
  bool operator!=(const Genotype& o) const { return !(*this == o); }
};

// Intermediate nodes per cell, and edges per node.
constexpr int64_t kGenotypeSteps = 4;
constexpr int64_t kEdgesPerNode = 2;

// Throws a one-line dmix::Error (naming `source`, a file or built-in name) when the genotype
// does not describe a DARTS cell: not 8 edges per cell, an operation that is not a primitive
// (or is `none`, which a derived genotype never keeps), an input node out of range for its
// node, or a concat list that is empty, repeats a node or names one that does not exist.
void validate_genotype(const Genotype& g, const std::string& source = "genotype");

// The DARTS JSON text (one line). Inverse of genotype_from_json.
std::string genotype_to_json(const Genotype& g);
// Parses and validates; malformed JSON, missing or unknown fields are one-line errors naming `source`.
Genotype genotype_from_json(const std::string& text, const std::string& source = "genotype");

// Built-in genotypes of genotypes.py: DARTS_V1, DARTS_V2, PC_DARTS_cifar, PC_DARTS_image.
const std::vector<std::string>& builtin_genotype_names();
bool is_builtin_genotype(const std::string& name);
const Genotype& builtin_genotype(const std::string& name);

// A built-in name, else a JSON file's path.
Genotype load_genotype(const std::string& name_or_path);
// Writes the JSON file atomically (temporary file, then rename).
void save_genotype(const std::string& path, const Genotype& g);

}  // namespace dmix::nas
