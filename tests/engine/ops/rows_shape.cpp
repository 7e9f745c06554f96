// Op-table rows of the data-movement ops (cat, narrow, pad_channels, channel_shuffle,
// index_select, index_add) against naive loops.
#include <cstdint>
#include <vector>

#include "tests/engine/op_table.h"

using namespace dmix;
using namespace dmix::testing;

namespace {

// Row-major offset of (a, b, c) in a tensor seen as (A, B, C).
int64_t at3(int64_t a, int64_t b, int64_t c, int64_t B, int64_t C) { return (a * B + b) * C + c; }

// Concatenation of inputs seen as (outer, size_i, inner) along the middle axis.
std::vector<double> cat_reference(const Inputs& in, int64_t outer, const std::vector<int64_t>& sizes, int64_t inner) {
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  std::vector<double> out(outer * total * inner);
  for (int64_t o = 0; o < outer; ++o) {
    int64_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      for (int64_t s = 0; s < sizes[i]; ++s)
        for (int64_t c = 0; c < inner; ++c) out[at3(o, offset + s, c, total, inner)] = in[i][at3(o, s, c, sizes[i], inner)];
      offset += sizes[i];
    }
  }
  return out;
}

std::vector<double> narrow_reference(const std::vector<double>& x, int64_t outer, int64_t size, int64_t inner,
                                     int64_t start, int64_t length) {
  std::vector<double> out(outer * length * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t s = 0; s < length; ++s)
      for (int64_t c = 0; c < inner; ++c) out[at3(o, s, c, length, inner)] = x[at3(o, start + s, c, size, inner)];
  return out;
}

std::vector<double> shuffle_reference(const std::vector<double>& x, int64_t n, int64_t groups, int64_t per_group,
                                      int64_t plane) {
  const int64_t channels = groups * per_group;
  std::vector<double> out(x.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < groups; ++i)
      for (int64_t j = 0; j < per_group; ++j)
        for (int64_t p = 0; p < plane; ++p)
          out[at3(b, j * groups + i, p, channels, plane)] = x[at3(b, i * per_group + j, p, channels, plane)];
  return out;
}

std::vector<double> index_select_reference(const std::vector<double>& x, const std::vector<double>& index,
                                           int64_t outer, int64_t size, int64_t inner) {
  const int64_t m = static_cast<int64_t>(index.size());
  std::vector<double> out(outer * m * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < m; ++k)
      for (int64_t c = 0; c < inner; ++c)
        out[at3(o, k, c, m, inner)] = x[at3(o, static_cast<int64_t>(index[k]), c, size, inner)];
  return out;
}

std::vector<double> index_add_reference(const std::vector<double>& src, const std::vector<double>& index,
                                        int64_t outer, int64_t size, int64_t inner) {
  const int64_t m = static_cast<int64_t>(index.size());
  std::vector<double> out(outer * size * inner, 0.0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < m; ++k)
      for (int64_t c = 0; c < inner; ++c)
        out[at3(o, static_cast<int64_t>(index[k]), c, size, inner)] += src[at3(o, k, c, m, inner)];
  return out;
}

OpCaseRegistrar reg_cat_dim0({
    .name = "cat dim 0",
    .inputs = {InputSpec::uniform({2, 3}), InputSpec::uniform({1, 3}), InputSpec::uniform({3, 3})},
    .fn = [](const TensorList& in) { return cat({in[0], in[1], in[2]}, 0); },
    .reference = [](const Inputs& in) { return cat_reference(in, 1, {6, 3, 9}, 1); },
});

OpCaseRegistrar reg_cat_dim1({
    .name = "cat dim 1",
    .inputs = {InputSpec::uniform({2, 3, 2}), InputSpec::uniform({2, 1, 2}), InputSpec::uniform({2, 2, 2})},
    .fn = [](const TensorList& in) { return cat({in[0], in[1], in[2]}, 1); },
    .reference = [](const Inputs& in) { return cat_reference(in, 2, {3, 1, 2}, 2); },
});

OpCaseRegistrar reg_cat_last({
    .name = "cat dim -1",
    .inputs = {InputSpec::uniform({3, 2}), InputSpec::uniform({3, 3})},
    .fn = [](const TensorList& in) { return cat({in[0], in[1]}, -1); },
    .reference = [](const Inputs& in) { return cat_reference(in, 3, {2, 3}, 1); },
});

OpCaseRegistrar reg_narrow({
    .name = "narrow dim 1",
    .inputs = {InputSpec::uniform({3, 5, 2})},
    .fn = [](const TensorList& in) { return narrow(in[0], 1, 1, 3); },
    .reference = [](const Inputs& in) { return narrow_reference(in[0], 3, 5, 2, 1, 3); },
});

OpCaseRegistrar reg_narrow_dim0({
    .name = "narrow dim 0",
    .inputs = {InputSpec::uniform({4, 3})},
    .fn = [](const TensorList& in) { return narrow(in[0], 0, 2, 2); },
    .reference = [](const Inputs& in) { return narrow_reference(in[0], 1, 4, 3, 2, 2); },
});

OpCaseRegistrar reg_pad_channels({
    .name = "pad_channels",
    .inputs = {InputSpec::uniform({2, 3, 2, 3})},
    .fn = [](const TensorList& in) { return pad_channels(in[0], 2); },
    .reference =
        [](const Inputs& in) {
          std::vector<double> out(2 * 5 * 6, 0.0);
          for (int64_t n = 0; n < 2; ++n)
            for (int64_t c = 0; c < 3; ++c)
              for (int64_t p = 0; p < 6; ++p) out[at3(n, c, p, 5, 6)] = in[0][at3(n, c, p, 3, 6)];
          return out;
        },
});

OpCaseRegistrar reg_shuffle2({
    .name = "channel_shuffle groups 2",
    .inputs = {InputSpec::uniform({2, 6, 2, 3})},
    .fn = [](const TensorList& in) { return channel_shuffle(in[0], 2); },
    .reference = [](const Inputs& in) { return shuffle_reference(in[0], 2, 2, 3, 6); },
});

OpCaseRegistrar reg_shuffle3({
    .name = "channel_shuffle groups 3",
    .inputs = {InputSpec::uniform({1, 6, 3, 1})},
    .fn = [](const TensorList& in) { return channel_shuffle(in[0], 3); },
    .reference = [](const Inputs& in) { return shuffle_reference(in[0], 1, 3, 2, 3); },
});

OpCaseRegistrar reg_index_select0({
    .name = "index_select dim 0",
    .inputs = {InputSpec::uniform({5, 3}), InputSpec::integer({7}, 0, 5)},
    .fn = [](const TensorList& in) { return index_select(in[0], 0, in[1]); },
    .reference = [](const Inputs& in) { return index_select_reference(in[0], in[1], 1, 5, 3); },
});

OpCaseRegistrar reg_index_select1({
    .name = "index_select dim 1",
    .inputs = {InputSpec::uniform({2, 4, 3}), InputSpec::integer({5}, 0, 4)},
    .fn = [](const TensorList& in) { return index_select(in[0], 1, in[1]); },
    .reference = [](const Inputs& in) { return index_select_reference(in[0], in[1], 2, 4, 3); },
});

OpCaseRegistrar reg_index_add0({
    .name = "index_add dim 0",
    .inputs = {InputSpec::uniform({6, 3}), InputSpec::integer({6}, 0, 4)},
    .fn = [](const TensorList& in) { return index_add(in[0], 0, in[1], 4); },
    .reference = [](const Inputs& in) { return index_add_reference(in[0], in[1], 1, 4, 3); },
});

OpCaseRegistrar reg_index_add1({
    .name = "index_add dim 1",
    .inputs = {InputSpec::uniform({2, 5, 3}), InputSpec::integer({5}, 0, 3)},
    .fn = [](const TensorList& in) { return index_add(in[0], 1, in[1], 3); },
    .reference = [](const Inputs& in) { return index_add_reference(in[0], in[1], 2, 3, 3); },
});

}  // namespace
