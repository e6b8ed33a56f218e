#include "tapegrad/autodiff/threads.hpp"

#include <algorithm>
#include <atomic>

#if defined(__x86_64__) && defined(__SSE2__)
#include <xmmintrin.h>
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "parallel.hpp"
#include "tapegrad/autodiff/blas.hpp"

namespace tapegrad {
namespace {
std::atomic<std::size_t> configured{0};   // 0: not set, follow OpenBLAS
std::atomic<std::size_t> largest_set{0};  // the largest count set_num_threads was given
}  // namespace

std::size_t num_threads() {
  const std::size_t n = configured.load(std::memory_order_relaxed);
  return n != 0 ? n : blas::default_threads();
}

void set_num_threads(std::size_t n) {
  configured.store(n == 0 ? 1 : n, std::memory_order_relaxed);
  std::size_t largest = largest_set.load(std::memory_order_relaxed);
  while (n > largest && !largest_set.compare_exchange_weak(largest, n, std::memory_order_relaxed)) {
  }
}

void detail::parallel_ranges(std::size_t count, std::size_t values_per_item,
                             void (*body)(void*, std::size_t, std::size_t), void* context) {
  parallel_for_values(count, values_per_item,
                      [&](std::size_t begin, std::size_t end) { body(context, begin, end); });
}

#if defined(__x86_64__) && defined(__SSE2__)
namespace {
constexpr unsigned flush_bits = 0x8040;  // MXCSR: flush to zero (bit 15), denormals are zero (6)

void set_this_thread(bool on) {
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(on ? (csr | flush_bits) : (csr & ~flush_bits));
}
}  // namespace

bool set_flush_denormal(bool on) {
  set_this_thread(on);
#if defined(_OPENMP)
  // Every thread of the pool: tapegrad's teams are never larger than the largest thread count it
  // has had, and a larger team's new threads are cloned from this thread and start in its mode.
  const int team = static_cast<int>(
      std::max({num_threads(), largest_set.load(std::memory_order_relaxed), std::size_t(1)}));
#pragma omp parallel num_threads(team)
  set_this_thread(on);
#endif
  return true;
}

bool flush_denormal() {
  return (_mm_getcsr() & flush_bits) == flush_bits;
}
#else
bool set_flush_denormal(bool) {
  return false;
}

bool flush_denormal() {
  return false;
}
#endif

}  // namespace tapegrad
