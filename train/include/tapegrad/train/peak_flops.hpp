// The machine's peak float32 multiply-add rate, measured: a loop of independent FMA chains that
// never touches memory, run on 1 or more threads at once. It is the ceiling no kernel can pass,
// so "% of peak" = a workload's FLOP / time / this rate (a multiply-add counts 2 FLOP).
//
// The loop is built twice: for the instruction set the library is compiled for (the baseline:
// 32-byte vectors, FMA instructions on x86-64-v3) and, where the compiler can, for AVX-512
// (64-byte vectors, 16 chains in the 32 zmm registers), run only when the CPU has AVX-512F.
// TAPEGRAD_KERNELS=baseline forces the baseline loop, as it forces conv1d's baseline kernels.
#pragma once

#include <cstddef>

namespace tapegrad {

struct PeakFlops {
  double gflops = 0;        // float32 GFLOP/s summed over the threads
  std::size_t threads = 0;  // threads that ran the loop at once
  const char* isa = "";     // the loop that ran: "avx512", "fma256" or "generic256"
};

// Runs the loop on `threads` threads (0 is taken as 1) at once, each for about `seconds`;
// the best of `repeats` runs. Each run starts all threads together and ends when the last one
// does, so a thread descheduled by another process lowers the figure: repeat on a busy machine.
PeakFlops measure_peak_flops(std::size_t threads, double seconds = 0.05, int repeats = 3);

// The loop measure_peak_flops runs on this CPU.
const char* peak_flops_isa();

}  // namespace tapegrad
