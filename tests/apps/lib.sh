# Shared by the CLI tests (tests/apps/test_*.sh): source it after setting $work, the
# test's scratch folder.

# expect_error PATTERN CMD...: CMD fails (non-zero exit) and writes exactly one line to
# stderr, which matches the grep pattern PATTERN. The line itself is what a user sees, so
# the pattern should hold the words that tell them what to fix.
expect_error() {
  local pattern="$1"; shift
  if "$@" > "$work/out.txt" 2> "$work/err.txt"; then echo "expected failure: $*"; exit 1; fi
  grep -q -- "$pattern" "$work/err.txt" || { echo "unexpected message for $*:"; cat "$work/err.txt"; exit 1; }
  test "$(wc -l < "$work/err.txt")" -eq 1 || { echo "more than one line for $*:"; cat "$work/err.txt"; exit 1; }
}
