#!/usr/bin/env bash
# Every repository path the docs name in backticks must exist, so the tour and the API
# reference never send a reader to a file that moved. A path is a backticked word that
# starts with one of the repository's top-level folders (`engine/ops/conv.cpp`,
# `kernels/cpu/`), optionally followed by a doctest or ctest filter after a space, which
# is ignored. A word with a wildcard (`kernels/cpu/conv2d_*.cpp`) must match at least one
# path. Prints every missing path and fails if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

docs=(docs/*.md)
roots='apps|augment|cmake|docs|engine|examples|include|kernels|nas|nn|probe|scripts|tests|\.ci'
# True when the path exists, or when the wildcard pattern matches something.
shopt -s nullglob
exists() {
  local matches=($1)
  [ ${#matches[@]} -gt 0 ] && [ -e "${matches[0]}" ]
}

missing=0
checked=0
while IFS=: read -r file path; do
  checked=$((checked + 1))
  if ! exists "$path"; then
    echo "check-docs: $file names \`$path\`, which does not exist"
    missing=1
  fi
done < <(grep -oHE "\`($roots)/[A-Za-z0-9_./*+-]*" "${docs[@]}" | sed 's/`//' | sort -u)
echo "check-docs: $checked paths named in ${docs[*]}"
exit "$missing"
