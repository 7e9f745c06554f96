// The CPU thread count used by dmix's OpenMP kernels and by OpenBLAS, set together so a
// benchmark or a user's --threads flag means the same thing for every kernel.
#pragma once

namespace dmix::kernels::cpu {

void set_num_threads(int n);  // n >= 1
int num_threads();

// Flush denormal floats to zero (x86 FTZ/DAZ) on the calling thread and on every OpenMP
// worker. Denormals appear as gradients shrink and make each arithmetic operation on them
// roughly 100x slower; flushing them changes results only below 1e-38. Threads started
// later by the calling thread inherit the setting. Returns false where unsupported.
bool set_flush_denormal(bool on);

}  // namespace dmix::kernels::cpu
