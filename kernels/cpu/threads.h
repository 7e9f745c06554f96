// The CPU thread count used by dmix's OpenMP kernels and by OpenBLAS, set together so a
// benchmark or a user's --threads flag means the same thing for every kernel.
#pragma once

namespace dmix::kernels::cpu {

void set_num_threads(int n);  // n >= 1
int num_threads();

}  // namespace dmix::kernels::cpu
