// Errors: every failure in dmix is a dmix::Error whose message names the op and the
// offending shapes, dtypes or devices. The CLI prints what() as one line and exits non-zero.
// It lives in kernels/, the lowest layer, so the kernels report failures the same way as
// everything above them; engine/error.h re-exports it for the layers that include that.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace dmix {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Builds "op: part1part2..." from streamable parts, e.g. fail("matmul", "inner sizes differ: ", a, " vs ", b).
template <class... Parts>
[[noreturn]] void fail(const char* op, const Parts&... parts) {
  std::ostringstream os;
  os << op << ": ";
  (os << ... << parts);
  throw Error(os.str());
}

template <class... Parts>
void check(bool ok, const char* op, const Parts&... parts) {
  if (!ok) fail(op, parts...);
}

}  // namespace dmix
