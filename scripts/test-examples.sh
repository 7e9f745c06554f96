#!/usr/bin/env bash
# The embedding front door, checked end to end: installs the already-built tree (build/,
# or the folder given as $1) into a temporary prefix, checks that every installed header
# compiles on its own from that prefix, builds examples/ as a separate project against
# the installed CMake package (find_package(dmix)), runs each example briefly, and checks
# that the docs name only paths that exist. Fails on the first error.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
test -f "$build/CMakeCache.txt" || { echo "test-examples: $build is not a dmix build folder (run scripts/build.sh first)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

echo "== install $build into a temporary prefix"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
test -f "$prefix/lib/cmake/dmix/dmixConfig.cmake"
test -f "$prefix/include/dmix/dmix.h"

echo "== every installed header compiles on its own"
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
failed=0
while IFS= read -r header; do
  rel=${header#"$prefix/include/"}
  if ! printf '#include <%s>\n' "$rel" | "${cxx:-c++}" -std=c++17 -fsyntax-only -fopenmp \
         -I"$prefix/include" -I"$prefix/include/dmix" -x c++ - 2> "$tmp/header.log"; then
    echo "test-examples: <$rel> does not compile from the installed prefix:"; head -5 "$tmp/header.log"; failed=1
  fi
done < <(find "$prefix/include" -name '*.h' | sort)
[ "$failed" -eq 0 ]

echo "== configure and build examples/ against the package"
cmake -S examples -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
grep 'dmix [0-9]' "$tmp/configure.log"
cmake --build "$tmp/build" --parallel "${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" > "$tmp/build.log" || { cat "$tmp/build.log"; exit 1; }

export OMP_WAIT_POLICY=passive
echo "== hessian_vector_product"
"$tmp/build/hessian_vector_product"
echo "== train_fashion_mnist (512 images, 1 epoch)"
"$tmp/build/train_fashion_mnist" 512 1 auto "$tmp/fashion_mnist.safetensors"
echo "== classify with that checkpoint"
"$tmp/build/classify" "$tmp/fashion_mnist.safetensors"
echo "== classify with a hand-built network (plain state dict)"
"$tmp/build/classify"

echo "== docs name only existing paths"
bash scripts/check-docs.sh
echo "test-examples: all passed"
