// How many threads tapegrad uses: one pool (OpenMP's) runs its own kernels (conv1d) and its
// gemms, which it splits among the threads itself while OpenBLAS runs single-threaded; two
// pools spinning side by side would fight for the cores.
#pragma once

#include <cstddef>
#include <type_traits>

namespace tapegrad {

// The thread count. Until set_num_threads is called it is the count OpenBLAS starts with:
// OPENBLAS_NUM_THREADS if set, else one per core. Results never depend on it: every parallel
// kernel and gemm splits its output, never a sum, between threads.
std::size_t num_threads();

// Sets the count (0 is taken as 1), for every thread of the program.
void set_num_threads(std::size_t n);

// Runs body(begin, end) over [0, count) for an elementwise pass that moves `values_per_item`
// values per item (its inputs and outputs): split among tapegrad's threads into contiguous
// ranges when the pass is large enough to gain from it, in one call on the calling thread
// otherwise. For loops whose every item is computed on its own, so that how the range is split
// cannot change a result (the optimisers' updates). body must not throw.
template <class Body>
void parallel_ranges(std::size_t count, std::size_t values_per_item, Body&& body);

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

namespace detail {
// parallel_ranges without a template: body(context, begin, end) for each range, each thread
// taking the same part of equal-sized tensors in every pass.
void parallel_ranges(std::size_t count, std::size_t values_per_item,
                     void (*body)(void* context, std::size_t begin, std::size_t end),
                     void* context);
}  // namespace detail

template <class Body>
void parallel_ranges(std::size_t count, std::size_t values_per_item, Body&& body) {
  using F = std::remove_reference_t<Body>;
  detail::parallel_ranges(
      count, values_per_item,
      [](void* f, std::size_t begin, std::size_t end) { (*static_cast<F*>(f))(begin, end); },
      const_cast<void*>(static_cast<const void*>(&body)));
}

}  // namespace tapegrad
