#!/usr/bin/env bash
# scripts/check-layers.sh on small trees built here, each with one include or link that
# breaks (or keeps) the layer order, then on the repository itself.
#   bash tests/scripts/test_check_layers.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
check="$repo/scripts/check-layers.sh"
work=$(mktemp -d /tmp/dmix-check-layers-XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

# A tree that keeps the order: every layer includes the one below it.
base_tree() {
  local t="$1"
  mkdir -p "$t"/{kernels/cpu,kernels/cuda,engine,nn,augment,apps/dmix,include/dmix,tests/kernels/cpu,tests/gpu}
  echo '#pragma once' > "$t/kernels/error.h"
  printf '#pragma once\n#include "kernels/error.h"\n' > "$t/kernels/cpu/gemm.h"
  printf '#pragma once\n#include "kernels/cpu/gemm.h"\n#include "kernels/error.h"\n' > "$t/kernels/cuda/gemm.h"
  printf '#pragma once\n#include "kernels/cuda/gemm.h"\n' > "$t/engine/tensor.h"
  printf '#include "tensor.h"\n#include <vector>\n' > "$t/engine/tensor.cpp"
  printf '#pragma once\n#include "engine/tensor.h"\n' > "$t/nn/module.h"
  printf '#pragma once\n#include "nn/module.h"\n' > "$t/augment/loader.h"
  printf '#pragma once\n#include "augment/loader.h"\n' > "$t/include/dmix/dmix.h"
  printf '#include "dmix/dmix.h"\n#include "apps/dmix/flags.h"\n' > "$t/apps/dmix/main.cpp"
  echo '#pragma once' > "$t/apps/dmix/flags.h"
  printf '#pragma once\n#include "kernels/error.h"\n' > "$t/tests/test_util.h"
  printf '#include "tests/test_util.h"\n#include "kernels/cpu/gemm.h"\n' > "$t/tests/kernels/cpu/test_gemm.cpp"
  printf '#include "augment/loader.h"\n#include "kernels/cuda/gemm.h"\n' > "$t/tests/gpu/test_mixing.cpp"
  printf 'add_library(dmix_nn STATIC x.cpp)\ntarget_link_libraries(dmix_nn PUBLIC\n  dmix_engine)  # dmix_apps here is a comment\n' \
    > "$t/nn/CMakeLists.txt"
}

# expect pass|fail NAME SETUP...: builds a fresh tree, runs SETUP in it, checks the verdict,
# and for a failure that the report names the offending file and line.
expect() {
  local want="$1" name="$2" where="${3:-}"; shift 3
  local t="$work/$name"
  base_tree "$t"
  (cd "$t" && eval "$@")
  local out rc=0
  out=$(bash "$check" "$t" 2>&1) || rc=$?
  if [ "$want" = pass ] && [ $rc -ne 0 ]; then
    echo "FAIL $name: expected OK, got rc=$rc: $out"; failures=$((failures + 1))
  elif [ "$want" = fail ] && [ $rc -ne 1 ]; then
    echo "FAIL $name: expected a violation, got rc=$rc: $out"; failures=$((failures + 1))
  elif [ "$want" = fail ] && ! grep -qF "$where" <<< "$out"; then
    echo "FAIL $name: report does not name $where: $out"; failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}

expect pass clean_tree ""                   true
expect fail engine_includes_nn "engine/tensor.h:3:" 'echo "#include \"nn/module.h\"" >> engine/tensor.h'
expect fail kernels_include_engine "kernels/cpu/gemm.h:3:" 'echo "#include \"engine/tensor.h\"" >> kernels/cpu/gemm.h'
expect fail relative_upward "engine/tensor.cpp:3:" 'echo "#include \"../nn/module.h\"" >> engine/tensor.cpp'
expect fail cpu_includes_cuda "kernels/cpu/gemm.h:3:" 'echo "#include \"kernels/cuda/gemm.h\"" >> kernels/cpu/gemm.h'
expect fail api_includes_apps "include/dmix/dmix.h:3:" 'echo "#include \"apps/dmix/flags.h\"" >> include/dmix/dmix.h'
expect fail nn_includes_api "nn/module.h:3:" 'echo "#include <dmix/dmix.h>" >> nn/module.h'
expect fail kernel_test_includes_engine "tests/kernels/cpu/test_gemm.cpp:3:" \
  'echo "#include \"engine/tensor.h\"" >> tests/kernels/cpu/test_gemm.cpp'
expect fail gpu_test_includes_apps "tests/gpu/test_mixing.cpp:3:" \
  'echo "#include \"apps/dmix/flags.h\"" >> tests/gpu/test_mixing.cpp'
expect fail cmake_links_upward "nn/CMakeLists.txt:4:" \
  'printf "target_link_libraries(dmix_nn\n  PUBLIC dmix::augment)\n" >> nn/CMakeLists.txt'
expect pass include_in_comment ""           'echo "// #include \"apps/dmix/flags.h\"" >> engine/tensor.h'
# In a git work tree the files are the tracked ones and new ones git does not ignore.
expect fail git_untracked "engine/tensor.h:3:" \
  'git init -q . && git add kernels && echo "#include \"nn/module.h\"" >> engine/tensor.h'
expect pass git_ignored "" \
  'git init -q . && echo "generated/" > .gitignore && mkdir -p engine/generated &&
   echo "#include \"apps/dmix/flags.h\"" > engine/generated/x.h'

out=$(bash "$check") || { echo "FAIL the repository: $out"; failures=$((failures + 1)); }
echo "$out"

if [ $failures -gt 0 ]; then
  echo "test_check_layers: $failures failure(s)"
  exit 1
fi
echo "test_check_layers: all passed"
