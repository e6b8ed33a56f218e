#include "tapegrad/autodiff/threads.hpp"

#include <atomic>

#include "tapegrad/autodiff/blas.hpp"

namespace tapegrad {
namespace {
std::atomic<std::size_t> configured{0};  // 0: not set, follow OpenBLAS
}

std::size_t num_threads() {
  const std::size_t n = configured.load(std::memory_order_relaxed);
  return n != 0 ? n : blas::default_threads();
}

void set_num_threads(std::size_t n) {
  configured.store(n == 0 ? 1 : n, std::memory_order_relaxed);
}

}  // namespace tapegrad
