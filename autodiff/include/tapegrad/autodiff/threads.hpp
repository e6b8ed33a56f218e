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

// Denormal floats (magnitude below 1.18e-38 in float, 2.2e-308 in double): with `on`, results
// that would be denormal are flushed to zero and denormal inputs read as zero (x86's FTZ and DAZ
// bits) on the calling thread and on every thread of tapegrad's pool, as
// torch.set_flush_denormal(True) does. Arithmetic on denormals takes a microcode assist of some
// 100 cycles on x86 CPUs, and they arise in training: an SGD momentum buffer whose gradient stays
// 0 (the weights of a pixel that is 0 in every image) decays by 0.9 a step into them. Off by
// default, as in PyTorch; the trainer turns it on while it runs (TrainOptions::flush_denormal).
// Returns false, and changes nothing, where the CPU has no such mode (not x86-64 with SSE).
bool set_flush_denormal(bool on);
// Whether denormals are flushed on the calling thread.
bool flush_denormal();

}  // namespace tapegrad
