// Genotypes: the built-ins as genotypes.py writes them, DARTS's JSON layout both ways, files,
// and a one-line error for every malformed genotype.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "nas/genotype.h"
#include "tests/test_util.h"

using namespace dmix;
using namespace dmix::nas;
using dmix::testing::error_of;
using dmix::testing::TempDir;

namespace {

const char* kPcDartsCifarJson =
    R"({"normal":[["sep_conv_3x3",1],["skip_connect",0],["sep_conv_3x3",0],["dil_conv_3x3",1],)"
    R"(["sep_conv_5x5",0],["sep_conv_3x3",1],["avg_pool_3x3",0],["dil_conv_3x3",1]],"normal_concat":[2,3,4,5],)"
    R"("reduce":[["sep_conv_5x5",1],["max_pool_3x3",0],["sep_conv_5x5",1],["sep_conv_5x5",2],)"
    R"(["sep_conv_3x3",0],["sep_conv_3x3",3],["sep_conv_3x3",1],["sep_conv_3x3",2]],"reduce_concat":[2,3,4,5]})";

std::string with(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// The error genotype_from_json throws for `text`, which must be one line.
std::string parse_error(const std::string& text) {
  const std::string e = error_of([&] { genotype_from_json(text, "g.json"); });
  CHECK(e.find('\n') == std::string::npos);
  CHECK(e.find("g.json") != std::string::npos);
  return e;
}

}  // namespace

TEST_CASE("genotype: the built-ins, and DARTS's JSON layout of PC_DARTS_cifar") {
  CHECK(builtin_genotype_names() ==
        std::vector<std::string>{"DARTS_V1", "DARTS_V2", "PC_DARTS_cifar", "PC_DARTS_image"});
  for (const auto& name : builtin_genotype_names()) {
    CAPTURE(name);
    const Genotype& g = builtin_genotype(name);
    validate_genotype(g, name);
    CHECK(g.normal_concat == std::vector<int64_t>{2, 3, 4, 5});
    CHECK(g.reduce_concat == std::vector<int64_t>{2, 3, 4, 5});
    CHECK(genotype_from_json(genotype_to_json(g)) == g);
  }
  CHECK(genotype_to_json(builtin_genotype("PC_DARTS_cifar")) == kPcDartsCifarJson);
  const Genotype& v2 = builtin_genotype("DARTS_V2");
  CHECK(v2.normal.back() == GenotypeEdge{"dil_conv_3x3", 2});
  CHECK(v2.reduce.front() == GenotypeEdge{"max_pool_3x3", 0});
  const Genotype& image = builtin_genotype("PC_DARTS_image");
  CHECK(image.normal.back() == GenotypeEdge{"dil_conv_5x5", 4});
  CHECK(image.reduce[6] == GenotypeEdge{"sep_conv_5x5", 0});
  CHECK(builtin_genotype("DARTS_V1") != builtin_genotype("DARTS_V2"));
  CHECK(error_of([] { builtin_genotype("DARTS_V3"); }).find("unknown built-in genotype 'DARTS_V3'") !=
        std::string::npos);
}

TEST_CASE("genotype: files round-trip; load_genotype takes a built-in name or a path") {
  TempDir dir;
  const Genotype& g = builtin_genotype("PC_DARTS_image");
  save_genotype(dir.file("g.json"), g);
  CHECK(load_genotype(dir.file("g.json")) == g);
  CHECK(dir.entries() == std::vector<std::string>{"g.json"});  // no temporary left behind
  CHECK(load_genotype("DARTS_V2") == builtin_genotype("DARTS_V2"));
  // Whitespace and field order are free, as json.dump of a namedtuple's _asdict() writes them.
  {
    std::ofstream f(dir.file("pretty.json"));
    f << "{\n  \"reduce_concat\": [2, 3, 4, 5],\n  \"normal_concat\": [2, 3, 4, 5],\n"
      << "  \"normal\": [[\"skip_connect\", 1], [\"sep_conv_3x3\", 0], [\"sep_conv_3x3\", 0], [\"skip_connect\", 1],"
      << " [\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 3], [\"sep_conv_3x3\", 1], [\"dil_conv_5x5\", 4]],\n"
      << "  \"reduce\": [[\"sep_conv_3x3\", 0], [\"skip_connect\", 1], [\"dil_conv_5x5\", 2], [\"max_pool_3x3\", 1],"
      << " [\"sep_conv_3x3\", 2], [\"sep_conv_3x3\", 1], [\"sep_conv_5x5\", 0], [\"sep_conv_3x3\", 3]]\n}\n";
  }
  CHECK(load_genotype(dir.file("pretty.json")) == g);
  const std::string missing = error_of([&] { load_genotype(dir.file("nothing.json")); });
  CHECK(missing.find("cannot read") != std::string::npos);
  CHECK(missing.find("built-in genotype") != std::string::npos);
}

TEST_CASE("genotype: every malformed genotype is a one-line error") {
  CHECK(genotype_from_json(kPcDartsCifarJson) == builtin_genotype("PC_DARTS_cifar"));
  CHECK(parse_error("{\"normal\": [").find("not valid JSON") != std::string::npos);
  CHECK(parse_error("[1, 2]").find("expected a JSON object") != std::string::npos);
  CHECK(parse_error(with(kPcDartsCifarJson, "\"reduce_concat\"", "\"reduce_cat\""))
            .find("missing field 'reduce_concat'") != std::string::npos);
  CHECK(parse_error(with(kPcDartsCifarJson, "{", "{\"extra\": 1, ")).find("unknown field 'extra'") !=
        std::string::npos);
  // Unknown primitive, and none (never kept by a derived genotype).
  CHECK(parse_error(with(kPcDartsCifarJson, "dil_conv_3x3", "sep_conv_7x7"))
            .find("unknown primitive 'sep_conv_7x7'") != std::string::npos);
  CHECK(parse_error(with(kPcDartsCifarJson, "avg_pool_3x3", "none")).find("'none'") != std::string::npos);
  // Wrong number of edges: 7, and 9.
  CHECK(parse_error(with(kPcDartsCifarJson, "[\"sep_conv_3x3\",1],", ""))
            .find("'normal' has 7 edges, not 8 (2 per node x 4 nodes)") != std::string::npos);
  CHECK(parse_error(with(kPcDartsCifarJson, "\"reduce\":[", "\"reduce\":[[\"sep_conv_3x3\",0],"))
            .find("'reduce' has 9 edges, not 8") != std::string::npos);
  // Input nodes out of range: node 2 (edges 0, 1) reads nodes 0 and 1 only; negative never.
  CHECK(parse_error(with(kPcDartsCifarJson, "[\"sep_conv_3x3\",1]", "[\"sep_conv_3x3\",2]"))
            .find("edge 0 (node 2) takes input node 2, which must be in [0, 2)") != std::string::npos);
  CHECK(parse_error(with(kPcDartsCifarJson, "[\"sep_conv_3x3\",3],", "[\"sep_conv_3x3\",-1],"))
            .find("takes input node -1") != std::string::npos);
  // Malformed edges and concat lists.
  CHECK(parse_error(with(kPcDartsCifarJson, "[\"sep_conv_3x3\",1]", "[\"sep_conv_3x3\",1.5]"))
            .find("is not an [\"op\", input] pair") != std::string::npos);
  CHECK(parse_error(with(kPcDartsCifarJson, "[\"sep_conv_3x3\",1]", "\"sep_conv_3x3\""))
            .find("is not an [\"op\", input] pair") != std::string::npos);
  CHECK(parse_error(with(kPcDartsCifarJson, "\"normal_concat\":[2,3,4,5]", "\"normal_concat\":[2,3,4,6]"))
            .find("'normal_concat' names node 6") != std::string::npos);
  CHECK(parse_error(with(kPcDartsCifarJson, "\"normal_concat\":[2,3,4,5]", "\"normal_concat\":[2,2]"))
            .find("repeats node 2") != std::string::npos);
  CHECK(parse_error(with(kPcDartsCifarJson, "\"reduce_concat\":[2,3,4,5]", "\"reduce_concat\":[]"))
            .find("'reduce_concat' is empty") != std::string::npos);
  CHECK(parse_error(with(kPcDartsCifarJson, "\"reduce_concat\":[2,3,4,5]", "\"reduce_concat\":\"2345\""))
            .find("must be a list of node numbers") != std::string::npos);
}
