// Allocation counters of a benchmark program. Include it in exactly one source file of the
// program: it defines the program's allocation functions.
// - g_heap_allocations: every operator new in the process (replaced below).
// - g_malloc_calls: every C allocation in the process, the libraries' included (glibc: malloc and
//   its relatives forward to the __libc_ entry points).
// - timed_counting_allocations: the benchmark loop, setting both counts per iteration.
#pragma once

#include <benchmark/benchmark.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <new>

// ---- heap allocation counting: every operator new in the process ----
// The replacements allocate with malloc and free with free. Where GCC inlines one of them into a
// caller that got its pointer from operator new, it warns of a mismatch that is not one.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
inline std::atomic<std::size_t> g_heap_allocations{0};

// ---- and every C allocation (glibc: the __libc_ functions are malloc's own entry points) ----
inline std::atomic<std::size_t> g_malloc_calls{0};
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
void* malloc(std::size_t n) noexcept {
  ++g_malloc_calls;
  return __libc_malloc(n);
}
void* calloc(std::size_t count, std::size_t n) noexcept {
  ++g_malloc_calls;
  return __libc_calloc(count, n);
}
void* realloc(void* p, std::size_t n) noexcept {
  ++g_malloc_calls;
  return __libc_realloc(p, n);
}
void* memalign(std::size_t align, std::size_t n) noexcept {
  ++g_malloc_calls;
  return __libc_memalign(align, n);
}
void* aligned_alloc(std::size_t align, std::size_t n) noexcept {
  ++g_malloc_calls;
  return __libc_memalign(align, n);
}
int posix_memalign(void** p, std::size_t align, std::size_t n) noexcept {
  ++g_malloc_calls;
  if (align % sizeof(void*) != 0 || (align & (align - 1)) != 0) return EINVAL;
  *p = __libc_memalign(align, n);
  return *p || n == 0 ? 0 : ENOMEM;
}
void free(void* p) noexcept {
  __libc_free(p);
}
}
void* operator new(std::size_t n) {
  ++g_heap_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  ++g_heap_allocations;
  const std::size_t align = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// Runs `step` in the benchmark loop (after the caller's warm-up) and sets the counters
// heap_allocs and malloc_calls: each count's growth over the loop, per iteration.
template <class Step>
void timed_counting_allocations(benchmark::State& state, const Step& step) {
  const std::size_t heap_before = g_heap_allocations.load(), malloc_before = g_malloc_calls.load();
  std::size_t iterations = 0;
  for (auto _ : state) {
    step();
    ++iterations;
  }
  const auto per_iteration = [&](std::size_t grown) {
    return static_cast<double>(grown) / static_cast<double>(iterations);
  };
  state.counters["heap_allocs"] = per_iteration(g_heap_allocations.load() - heap_before);
  state.counters["malloc_calls"] = per_iteration(g_malloc_calls.load() - malloc_before);
}
