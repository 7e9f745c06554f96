// Sets one thread count for dmix's OpenMP kernels and OpenBLAS together (see threads.h).
#include "kernels/cpu/threads.h"

#include <cblas.h>
#include <omp.h>
#include <xmmintrin.h>

namespace dmix::kernels::cpu {

void set_num_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

namespace {
#if defined(__SSE__)
void set_flush_denormal_here(bool on) {
  constexpr unsigned kFtzDaz = 0x8040;  // MXCSR flush-to-zero (bit 15) and denormals-are-zero (bit 6)
  _mm_setcsr(on ? (_mm_getcsr() | kFtzDaz) : (_mm_getcsr() & ~kFtzDaz));
}
#endif
}  // namespace

bool set_flush_denormal(bool on) {
#if defined(__SSE__)
  set_flush_denormal_here(on);
#pragma omp parallel
  set_flush_denormal_here(on);
  return true;
#else
  (void)on;
  return false;
#endif
}

}  // namespace dmix::kernels::cpu
