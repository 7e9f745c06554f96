#!/usr/bin/env bash
# Fails when a file includes (or a layer's CMake target links) a layer above its own.
#
#   bash scripts/check-layers.sh [ROOT]      ROOT: the tree to check (default: this repository)
#
# The order, lowest first: kernels < engine < nn < augment < probe < nas < apps. A file may
# include its own layer and the layers below it. Besides that:
#   - include/dmix/ (the public API, "dmix/...") may include every library layer, not apps;
#     apps/ may include it.
#   - kernels/cpu/ must not include kernels/cuda/ (the CPU build stands alone); kernels/cuda/
#     may include kernels/cpu/ headers, whose parameter structs the two backends share.
#   - tests/<layer>/ may include that layer, the layers below it, and test helpers of those
#     (tests/*.h count as the lowest layer); tests/gpu/ and examples/ may include every
#     library layer and include/dmix/. No test or example needs apps/.
#   - <layer>/CMakeLists.txt: target_link_libraries of a layer's targets name only lower
#     layers' dmix targets.
# Only quoted includes and <dmix/...> are read; a name without a folder is the including
# file's neighbour. Files are the tracked ones plus new ones git does not ignore.
set -euo pipefail

root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"

folders=(kernels engine nn augment probe nas apps include tests examples)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Files deleted from the work tree but still in the index are left out.
  files=$(git ls-files --cached --others --exclude-standard -- "${folders[@]}" | grep -E '\.(h|cpp|cu|cuh)$' |
          while read -r f; do [ -f "$f" ] && echo "$f"; done || true)
else
  files=$(find "${folders[@]}" -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) \
          2>/dev/null || true)
fi
cmake_files=$(for l in kernels engine nn augment probe nas apps; do
                [ -f "$l/CMakeLists.txt" ] && echo "$l/CMakeLists.txt"; done || true)
file_count=$(printf '%s\n' "$files" | grep -c . || true)

# grep prints "file:line:text" for each include.
{
  if [ -n "$files" ]; then
    printf '%s\n' "$files" | xargs grep -sHnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*("|<dmix/)' || true
  fi
  for f in $cmake_files; do awk -v f="$f" '{ print f ":" NR ":" $0 }' "$f"; done
} | awk -v file_count="$file_count" '
function rank_of(layer) {
  return (layer in rank) ? rank[layer] : -1
}
# The layer a path belongs to, "" for paths outside the checked folders.
function layer_of(path,   parts, n) {
  n = split(path, parts, "/")
  if (parts[1] == "include" || parts[1] == "dmix") return "include"
  if (parts[1] == "tests") {
    if (n == 2) return "kernels"            # tests/test_util.h, tests/doctest_main.cpp
    if (parts[2] == "gpu" || parts[2] == "scripts") return "include"
    return (parts[2] in rank) ? parts[2] : "include"
  }
  if (parts[1] == "examples") return "include"
  return (parts[1] in rank) ? parts[1] : ""
}
# kernels/cpu, kernels/cuda or "".
function backend_of(path,   parts) {
  split(path, parts, "/")
  if (parts[1] == "tests" || parts[1] != "kernels") return ""
  if (parts[2] == "cpu") return "cpu"
  if (parts[2] ~ /^cuda/) return "cuda"
  return ""
}
function dirname(path) {
  sub(/\/[^\/]*$/, "", path)
  return path
}
# Joins a relative include onto the including file folder and folds "..".
function resolve(dir, name,   parts, n, i, out, m) {
  n = split(dir "/" name, parts, "/")
  m = 0
  for (i = 1; i <= n; i++) {
    if (parts[i] == "." || parts[i] == "") continue
    if (parts[i] == ".." && m > 0) { m--; continue }
    out[++m] = parts[i]
  }
  name = out[1]
  for (i = 2; i <= m; i++) name = name "/" out[i]
  return name
}
function target_layer(t) {
  if (t ~ /^dmix_kernels/) return "kernels"
  if (t == "dmix_library") return "include"
  if (t == "dmix") return "apps"
  sub(/^dmix_/, "", t)
  return (t in rank) ? t : ""
}
function report(where, why) {
  print where ": " why
  bad++
}
function check_links(where, own, args,   words, n, i, to) {
  n = split(args, words, /[ \t]+/)
  if (target_layer(words[1]) != own) return   # a helper target, e.g. a test executable
  for (i = 2; i <= n; i++) {
    if (words[i] !~ /^dmix(_|::)/) continue
    to = words[i]
    sub(/^dmix::/, "dmix_", to)
    to = target_layer(to)
    if (to == "") continue
    links++
    if (rank_of(to) > rank_of(own))
      report(where, words[1] " (layer " own ") links " words[i] " (layer " to "), a layer above it")
  }
}
BEGIN {
  split("kernels engine nn augment probe nas apps", order, " ")
  for (i = 1; i <= 7; i++) rank[order[i]] = i - 1
  rank["include"] = 5.5   # above every library layer, below apps
  bad = 0; includes = 0; links = 0
}
{
  # "file:line:text"; the text may hold colons.
  file = $0; sub(/:.*/, "", file)
  rest = substr($0, length(file) + 2)
  line = rest; sub(/:.*/, "", line)
  text = substr(rest, length(line) + 2)
  where = file ":" line

  if (file ~ /CMakeLists\.txt$/) {
    sub(/#.*/, "", text)
    if (pending == "" && text ~ /target_link_libraries[ \t]*\(/) {
      pending_where = where
      pending_layer = file; sub(/\/.*/, "", pending_layer)
      sub(/.*target_link_libraries[ \t]*\(/, "", text)
      pending = " "
    }
    if (pending != "") {
      pending = pending " " text
      if (pending ~ /\)/) {
        sub(/\).*/, "", pending)
        gsub(/^[ \t]+/, "", pending)
        check_links(pending_where, pending_layer, pending)
        pending = ""
      }
    }
    next
  }

  # The included name, between quotes or angle brackets.
  name = text
  sub(/^[^"<]*["<]/, "", name)
  sub(/[">].*$/, "", name)
  if (name !~ /\//) name = dirname(file) "/" name
  if (name ~ /(^|\/)\.\.?\//) name = resolve(dirname(file), name)
  includes++

  from = layer_of(file)
  to = layer_of(name)
  if (from == "" || to == "") next
  if (rank_of(to) > rank_of(from)) {
    report(where, "includes \"" name "\" (layer " to ") from layer " from \
           "; a file may include only its own layer and the layers below it")
  } else if (backend_of(file) == "cpu" && backend_of(name) == "cuda") {
    report(where, "includes \"" name "\": kernels/cpu must not depend on the CUDA backend")
  }
}
END {
  if (bad > 0) {
    print "check-layers: " bad " violation(s) of kernels < engine < nn < augment < probe < nas < apps (see scripts/check-layers.sh)"
    exit 1
  }
  print "check-layers: OK (" file_count " files, " includes " includes, " links " CMake links; kernels < engine < nn < augment < probe < nas < apps)"
}
'
