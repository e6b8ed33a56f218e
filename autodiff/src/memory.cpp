#include "tapegrad/autodiff/memory.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <vector>

namespace tapegrad::memory {
namespace {

constexpr std::size_t alignment = 64;
constexpr std::size_t min_class_bytes = 64;
constexpr std::size_t class_count = 48;
// Sanitizer builds define TAPEGRAD_NO_POOL so that every block goes back to the system at once
// and AddressSanitizer sees each use after free.
#ifdef TAPEGRAD_NO_POOL
constexpr bool pooling = false;
#else
constexpr bool pooling = true;
#endif

// Counters are per thread, each written only by its own thread (relaxed load + store, no locked
// read-modify-write on the hot path) and summed by stats(). Counts may go negative on a thread
// that frees blocks another thread allocated; the sum is what is meaningful.
struct Counters {
  std::atomic<long long> live_blocks{0}, live_bytes{0}, cached_bytes{0}, system_allocations{0};
};
void bump(std::atomic<long long>& c, long long by) {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

std::size_t class_index(std::size_t bytes) {
  std::size_t c = 0, size = min_class_bytes;
  while (size < bytes) {
    size <<= 1;
    ++c;
  }
  return c;
}
long long class_bytes(std::size_t c) {
  return static_cast<long long>(min_class_bytes << c);
}

// A freed block stores the next free block of its class in its first bytes.
struct FreeBlock {
  FreeBlock* next;
};

// Set once the calling thread's pool is destroyed (at thread or program exit): blocks freed
// after that, e.g. by a static Tensor, go straight back to the system.
thread_local bool pool_destroyed = false;

struct ThreadPool;
struct Registry {
  std::mutex mutex;
  std::vector<ThreadPool*> threads;
  long long retired[4] = {};  // counters of threads that have exited
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: threads may exit after main
  return *r;
}

struct ThreadPool {
  std::array<FreeBlock*, class_count> head{};
  Counters counters;
  ThreadPool() {
    std::lock_guard<std::mutex> lock(registry().mutex);
    registry().threads.push_back(this);
  }
  void release() noexcept {
    for (std::size_t c = 0; c < class_count; ++c) {
      while (FreeBlock* b = head[c]) {
        head[c] = b->next;
        bump(counters.cached_bytes, -class_bytes(c));
        ::operator delete(b, std::align_val_t(alignment));
      }
    }
  }
  ~ThreadPool() {
    pool_destroyed = true;
    release();
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.retired[0] += counters.live_blocks.load();
    r.retired[1] += counters.live_bytes.load();
    r.retired[2] += counters.cached_bytes.load();
    r.retired[3] += counters.system_allocations.load();
    r.threads.erase(std::find(r.threads.begin(), r.threads.end(), this));
  }
};

ThreadPool& thread_pool() {
  thread_local ThreadPool pool;
  return pool;
}

}  // namespace

void* allocate(std::size_t bytes) {
  const std::size_t c = class_index(bytes == 0 ? 1 : bytes);
  if (c >= class_count) throw std::bad_alloc();
  if (pool_destroyed)
    return ::operator new(static_cast<std::size_t>(class_bytes(c)), std::align_val_t(alignment));
  ThreadPool& pool = thread_pool();
  void* p;
  if (FreeBlock* b = pooling ? pool.head[c] : nullptr) {
    pool.head[c] = b->next;
    bump(pool.counters.cached_bytes, -class_bytes(c));
    p = b;
  } else {
    p = ::operator new(static_cast<std::size_t>(class_bytes(c)), std::align_val_t(alignment));
    bump(pool.counters.system_allocations, 1);
  }
  bump(pool.counters.live_blocks, 1);
  bump(pool.counters.live_bytes, class_bytes(c));
  return p;
}

void deallocate(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  const std::size_t c = class_index(bytes == 0 ? 1 : bytes);
  if (pool_destroyed) {
    ::operator delete(p, std::align_val_t(alignment));
    return;
  }
  ThreadPool& pool = thread_pool();
  bump(pool.counters.live_blocks, -1);
  bump(pool.counters.live_bytes, -class_bytes(c));
  if (!pooling) {
    ::operator delete(p, std::align_val_t(alignment));
    return;
  }
  auto* b = static_cast<FreeBlock*>(p);
  b->next = pool.head[c];
  pool.head[c] = b;
  bump(pool.counters.cached_bytes, class_bytes(c));
}

Stats stats() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  long long total[4] = {r.retired[0], r.retired[1], r.retired[2], r.retired[3]};
  for (const ThreadPool* t : r.threads) {
    total[0] += t->counters.live_blocks.load(std::memory_order_relaxed);
    total[1] += t->counters.live_bytes.load(std::memory_order_relaxed);
    total[2] += t->counters.cached_bytes.load(std::memory_order_relaxed);
    total[3] += t->counters.system_allocations.load(std::memory_order_relaxed);
  }
  auto u = [](long long v) { return static_cast<std::size_t>(v < 0 ? 0 : v); };
  return Stats{u(total[0]), u(total[1]), u(total[2]), u(total[3])};
}

void release_cached() noexcept {
  if (!pool_destroyed) thread_pool().release();
}

void prepare_thread() {
  thread_pool();
}

}  // namespace tapegrad::memory
