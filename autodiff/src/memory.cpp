#include "tapegrad/autodiff/memory.hpp"

#include <array>
#include <atomic>

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

std::atomic<std::size_t> live_blocks{0}, live_bytes{0}, cached_bytes{0}, system_allocations{0};

std::size_t class_index(std::size_t bytes) {
  std::size_t c = 0, size = min_class_bytes;
  while (size < bytes) {
    size <<= 1;
    ++c;
  }
  return c;
}
std::size_t class_bytes(std::size_t c) {
  return min_class_bytes << c;
}

// A freed block stores the next free block of its class in its first bytes.
struct FreeBlock {
  FreeBlock* next;
};

struct FreeLists {
  std::array<FreeBlock*, class_count> head{};
  void release() noexcept {
    for (std::size_t c = 0; c < class_count; ++c) {
      while (FreeBlock* b = head[c]) {
        head[c] = b->next;
        cached_bytes -= class_bytes(c);
        ::operator delete(b, std::align_val_t(alignment));
      }
    }
  }
  ~FreeLists() { release(); }
};

FreeLists& free_lists() {
  thread_local FreeLists lists;
  return lists;
}

}  // namespace

void* allocate(std::size_t bytes) {
  const std::size_t c = class_index(bytes == 0 ? 1 : bytes);
  if (c >= class_count) throw std::bad_alloc();
  FreeLists& lists = free_lists();
  void* p;
  if (FreeBlock* b = pooling ? lists.head[c] : nullptr) {
    lists.head[c] = b->next;
    cached_bytes -= class_bytes(c);
    p = b;
  } else {
    p = ::operator new(class_bytes(c), std::align_val_t(alignment));
    ++system_allocations;
  }
  ++live_blocks;
  live_bytes += class_bytes(c);
  return p;
}

void deallocate(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  const std::size_t c = class_index(bytes == 0 ? 1 : bytes);
  --live_blocks;
  live_bytes -= class_bytes(c);
  if (!pooling) {
    ::operator delete(p, std::align_val_t(alignment));
    return;
  }
  FreeLists& lists = free_lists();
  auto* b = static_cast<FreeBlock*>(p);
  b->next = lists.head[c];
  lists.head[c] = b;
  cached_bytes += class_bytes(c);
}

Stats stats() {
  return Stats{live_blocks.load(), live_bytes.load(), cached_bytes.load(),
               system_allocations.load()};
}

void release_cached() noexcept {
  free_lists().release();
}

}  // namespace tapegrad::memory
