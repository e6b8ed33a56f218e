// How many threads tapegrad uses: one pool (OpenMP's) runs its own kernels (conv1d) and its
// gemms, which it splits among the threads itself while OpenBLAS runs single-threaded; two
// pools spinning side by side would fight for the cores.
#pragma once

#include <cstddef>

namespace tapegrad {

// The thread count. Until set_num_threads is called it is the count OpenBLAS starts with:
// OPENBLAS_NUM_THREADS if set, else one per core. Results never depend on it: every parallel
// kernel and gemm splits its output, never a sum, between threads.
std::size_t num_threads();

// Sets the count (0 is taken as 1), for every thread of the program.
void set_num_threads(std::size_t n);

}  // namespace tapegrad
