#!/usr/bin/env bash
# Runs clang-tidy (the checks in .clang-tidy: bugprone-*, performance-*) over dmix's C++
# sources, or over the files given. CUDA sources (.cu) are not checked: clang-tidy would
# need clang's CUDA front end and the toolkit's headers in clang's dialect.
#
#   bash scripts/tidy.sh [-p BUILD_DIR] [FILE...]
#
# BUILD_DIR (default build/) must hold compile_commands.json: configure it with
#   cmake -S . -B build -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
# With no FILE, every .cpp in compile_commands.json is checked (the ones under kernels/cuda
# only when the CUDA backend is configured). A finding fails the run (WarningsAsErrors).
# Time: 3-5 s a file; the whole tree (about 140 files) takes 10 CPU-minutes, 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build=build
if [ "${1:-}" = "-p" ]; then
  build="$2"
  shift 2
fi
db="$build/compile_commands.json"
if [ ! -f "$db" ]; then
  echo "tidy: $db not found; configure with: cmake -S . -B $build -DCMAKE_EXPORT_COMPILE_COMMANDS=ON" >&2
  exit 2
fi
tidy=$(command -v clang-tidy || command -v clang-tidy-14 || true)
if [ -z "$tidy" ]; then
  echo "tidy: clang-tidy not found (Debian: apt-get install clang-tidy)" >&2
  exit 2
fi

if [ $# -gt 0 ]; then
  files=("$@")
else
  # The sources the build compiles, as paths relative to the repository.
  mapfile -t files < <(grep -o '"file": *"[^"]*\.cpp"' "$db" | sed 's/.*"\([^"]*\)"$/\1/' |
                       sed "s|^$root/||" | grep -v '^build' | sort -u)
fi

# -w: the compiler's own warnings are GCC's job (see DMIX_WARNINGS_AS_ERRORS); clang's
# differ, and GCC-only flags in the database (-fno-tree-slp-vectorize) would be reported.
# Each file in its own clang-tidy, so a file that fails to parse (or a crash) is reported
# and the others still run: xargs stops at a child's exit status 255 or a signal, hence
# the "|| exit 1".
printf '%s\n' "${files[@]}" |
  xargs -P "$(nproc)" -n 1 bash -c '"$0" -p "$1" --quiet --extra-arg=-w "$2" 2>&1 | grep -v " warnings\? generated\.$"
                                    [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1' "$tidy" "$build" ||
  { echo "tidy: findings above (checks in .clang-tidy; silence a deliberate one with // NOLINT(check-name): why)" >&2; exit 1; }
echo "tidy: OK (${#files[@]} files)"
