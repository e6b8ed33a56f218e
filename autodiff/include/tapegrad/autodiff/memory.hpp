// Buffer pool: every tensor's storage and every tape node come from here. Freed blocks are
// kept on per-thread free lists by power-of-two size class and handed out again, so a training
// step whose shapes repeat makes no heap allocation once the first step has warmed the pool.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace tapegrad::memory {

// 64-byte aligned block of at least `bytes` bytes (rounded up to its size class).
void* allocate(std::size_t bytes);
// Returns a block obtained from allocate(bytes) to the calling thread's free list.
void deallocate(void* p, std::size_t bytes) noexcept;

struct Stats {
  std::size_t live_blocks = 0;         // blocks handed out and not yet returned
  std::size_t live_bytes = 0;          // their size-class bytes
  std::size_t cached_bytes = 0;        // bytes held on free lists for reuse (all threads)
  std::size_t system_allocations = 0;  // blocks ever obtained from operator new
};
// Process-wide counters; cheap to read. Used by tests to prove memory stays flat.
Stats stats();

// Gives every block cached on the calling thread's free lists back to the system.
void release_cached() noexcept;

// Creates the calling thread's cache now. A thread_local object that frees pooled memory in its
// destructor calls this in its constructor, so that the cache outlives it.
void prepare_thread();

// A standard allocator over the pool, for std::vector and std::allocate_shared.
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(memory::allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { memory::deallocate(p, n * sizeof(T)); }
  // Value-less construction default-initialises: a fresh numeric buffer is not zero-filled
  // (callers that need zeros say so), which saves a pass over memory per tensor.
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const noexcept {
    return true;
  }
  template <class U>
  bool operator!=(const PoolAllocator<U>&) const noexcept {
    return false;
  }
};

}  // namespace tapegrad::memory
