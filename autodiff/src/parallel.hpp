// parallel_for: a range of independent work items split into one contiguous part per thread
// (OpenMP's team; serial when the library is built without OpenMP or the work is small).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "tapegrad/autodiff/threads.hpp"

namespace tapegrad::detail {

// How many parts parallel_for splits `count` items of `flop` total work into: at most
// num_threads() and count, and few enough that each gets at least 2 MFLOP (some 10 µs;
// starting a team costs a few µs).
inline std::size_t parallel_parts(std::size_t count, double flop) {
  std::size_t parts = num_threads();
  if (parts > count) parts = count;
  while (parts > 1 && flop < 2e6 * static_cast<double>(parts)) --parts;
  return parts < 1 ? 1 : parts;
}

// Runs body(begin, end, part) for part < parallel_parts(count, flop), on a partition of
// [0, count) into contiguous ranges, each part on its own thread. body must not throw.
template <class Body>
void parallel_for(std::size_t count, double flop, Body&& body) {
  const std::size_t parts = parallel_parts(count, flop);
#if defined(_OPENMP)
  if (parts > 1) {
#pragma omp parallel num_threads(static_cast <int>(parts))
    {
      // The team may be smaller than asked for (nested inside another parallel region): the
      // threads present then take the missing parts too.
      const auto team = static_cast<std::size_t>(omp_get_num_threads());
      for (auto part = static_cast<std::size_t>(omp_get_thread_num()); part < parts; part += team)
        body(count * part / parts, count * (part + 1) / parts, part);
    }
    return;
  }
#endif
  body(std::size_t(0), count, std::size_t(0));
}

// Runs body(begin, end, thread) over [0, count) in ranges of `grain` items that threads
// thread < parallel_parts(count / grain, flop) take as they become free: for work whose items
// cost the same but whose threads may not run at the same speed. Which thread runs a range
// changes from run to run, so body's results must not depend on `thread` (it is for scratch
// buffers). body must not throw.
template <class Body>
void parallel_for_dynamic(std::size_t count, std::size_t grain, double flop, Body&& body) {
  const std::size_t ranges = (count + grain - 1) / grain;
  const std::size_t parts = parallel_parts(ranges, flop);
#if defined(_OPENMP)
  if (parts > 1) {
    std::atomic<std::size_t> next{0};
#pragma omp parallel num_threads(static_cast <int>(parts))
    {
      const auto thread = static_cast<std::size_t>(omp_get_thread_num());
      for (std::size_t r = next.fetch_add(1, std::memory_order_relaxed); r < ranges;
           r = next.fetch_add(1, std::memory_order_relaxed))
        body(r * grain, std::min(count, (r + 1) * grain), thread);
    }
    return;
  }
#endif
  for (std::size_t r = 0; r < ranges; ++r) body(r * grain, std::min(count, (r + 1) * grain), 0);
}

}  // namespace tapegrad::detail
