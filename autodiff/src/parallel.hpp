// Splitting independent work items among threads (OpenMP's team; serial when the library is
// built without OpenMP or the work is small): parallel_for (one contiguous part per thread),
// parallel_for_affine (each thread its own part first, then what others have left), and
// parallel_for_values (parallel_for_affine for passes bound by memory).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "tapegrad/autodiff/threads.hpp"

namespace tapegrad::detail {

// What moving one value through memory costs, in the "flop" that parallel_parts weighs work
// by, for passes bound by memory rather than arithmetic (a core moves some 5 G values/s through
// its caches and multiply-adds some 200 G flop/s): a part then has at least ~60 000 values.
constexpr double flop_per_value = 32;

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

// The ranges [first, last) of one part of parallel_for_affine, taken from the front by the
// thread that owns them and from the back by threads that have finished their own.
class RangeDeque {
 public:
  void reset(std::uint32_t first, std::uint32_t last) {
    ends_.store(pack(first, last), std::memory_order_relaxed);
  }
  bool take_front(std::size_t& range) { return take(range, true); }
  bool take_back(std::size_t& range) { return take(range, false); }

 private:
  static std::uint64_t pack(std::uint32_t front, std::uint32_t back) {
    return (std::uint64_t(back) << 32) | front;
  }
  bool take(std::size_t& range, bool front) {
    std::uint64_t v = ends_.load(std::memory_order_relaxed);
    for (;;) {
      const auto f = static_cast<std::uint32_t>(v), b = static_cast<std::uint32_t>(v >> 32);
      if (f >= b) return false;
      const std::uint64_t next = front ? pack(f + 1, b) : pack(f, b - 1);
      if (ends_.compare_exchange_weak(v, next, std::memory_order_relaxed)) {
        range = front ? f : b - 1;
        return true;
      }
    }
  }
  alignas(64) std::atomic<std::uint64_t> ends_{0};  // one cache line per part
};

// Runs body(begin, end, thread) over [0, count) in ranges of `grain` items, on
// parallel_parts(ranges, flop) threads. Thread i first works through the i-th contiguous part
// of the ranges, front to back, so that consecutive passes over the same data (forward and
// backward of one op) find it in the cache of the thread that last wrote it; a thread done with
// its part takes the remaining ranges of the others from their back (threads need not run at
// the same speed). Which thread runs a range can change from run to run, so body's results
// must not depend on `thread` (it is for scratch buffers). body must not throw.
template <class Body>
void parallel_for_affine(std::size_t count, std::size_t grain, double flop, Body&& body) {
  const std::size_t ranges = (count + grain - 1) / grain;
  const std::size_t parts = parallel_parts(ranges, flop);
  const auto run = [&](std::size_t r, std::size_t thread) {
    body(r * grain, std::min(count, (r + 1) * grain), thread);
  };
#if defined(_OPENMP)
  if (parts > 1) {
    constexpr std::size_t max_parts = 64;
    RangeDeque deques[max_parts];
    const std::size_t used = std::min(parts, max_parts);
    for (std::size_t p = 0; p < used; ++p)
      deques[p].reset(static_cast<std::uint32_t>(ranges * p / used),
                      static_cast<std::uint32_t>(ranges * (p + 1) / used));
#pragma omp parallel num_threads(static_cast <int>(used))
    {
      const auto thread = static_cast<std::size_t>(omp_get_thread_num());
      std::size_t r;
      while (deques[thread].take_front(r)) run(r, thread);
      for (std::size_t other = 1; other < used; ++other) {
        RangeDeque& victim = deques[(thread + other) % used];
        while (victim.take_back(r)) run(r, thread);
      }
    }
    return;
  }
#endif
  for (std::size_t r = 0; r < ranges; ++r) run(r, 0);
}

// body(begin, end) over [0, count) for a pass bound by memory that moves values_per_item values
// per item (an elementwise op: its inputs and output), split among threads when that is large
// (parallel_for_affine: a thread takes the same part of equal-sized tensors in every pass).
template <class Body>
void parallel_for_values(std::size_t count, std::size_t values_per_item, Body&& body) {
  parallel_for_affine(count, 4096, flop_per_value * static_cast<double>(values_per_item * count),
                      [&](std::size_t begin, std::size_t end, std::size_t) { body(begin, end); });
}

}  // namespace tapegrad::detail
