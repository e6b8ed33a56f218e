#include "tapegrad/train/peak_flops.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "peak_flops_loop.hpp"

namespace tapegrad {

namespace peak_detail {
namespace {
typedef float V256 __attribute__((vector_size(32)));
// 12 chains of 32-byte vectors plus the two constants fit the 16 ymm registers of AVX2.
constexpr int chains = 12;
float run_baseline(std::uint64_t iterations, float m, float a) {
  return fma_chains<V256, chains>(iterations, m, a);
}

#if defined(TAPEGRAD_AVX512_KERNELS)
bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}
#endif

FmaLoop choose() {
  const char* forced = std::getenv("TAPEGRAD_KERNELS");
  const bool baseline = forced && std::strcmp(forced, "baseline") == 0;
#if defined(TAPEGRAD_AVX512_KERNELS)
  if (!baseline && cpu_has_avx512()) return avx512_loop();
#else
  (void)baseline;
#endif
#if defined(__FMA__)
  return {run_baseline, flop_per_round<V256, chains>(), "fma256"};
#else
  return {run_baseline, flop_per_round<V256, chains>(), "generic256"};
#endif
}

const FmaLoop& loop() {
  static const FmaLoop chosen = choose();
  return chosen;
}

// Wall seconds for `threads` threads each running `iterations` rounds, started together.
double timed_run(const FmaLoop& f, std::size_t threads, std::uint64_t iterations) {
  std::atomic<std::size_t> ready{0};
  std::atomic<bool> go{false};
  std::vector<float> sink(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (std::size_t t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      ++ready;
      while (!go.load(std::memory_order_acquire)) {
      }
      sink[t] = f.run(iterations, 0.999f, 1e-3f);
    });
  while (ready.load() < threads) {
  }
  const auto start = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  for (std::thread& th : pool) th.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  volatile float keep = 0;
  for (float v : sink) keep = keep + v;
  return s;
}
}  // namespace
}  // namespace peak_detail

const char* peak_flops_isa() {
  return peak_detail::loop().isa;
}

PeakFlops measure_peak_flops(std::size_t threads, double seconds, int repeats) {
  using namespace peak_detail;
  threads = std::max<std::size_t>(threads, 1);
  const FmaLoop& f = loop();
  // Calibrate on one thread: grow the round count until a run takes a tenth of `seconds`.
  std::uint64_t iterations = 1 << 14;
  double s = timed_run(f, 1, iterations);
  while (s < seconds / 10 && iterations < (std::uint64_t{1} << 40)) {
    iterations *= 4;
    s = timed_run(f, 1, iterations);
  }
  iterations =
      static_cast<std::uint64_t>(static_cast<double>(iterations) * seconds / std::max(s, 1e-9)) + 1;
  double best = 0;
  for (int r = 0; r < std::max(repeats, 1); ++r) {
    const double t = timed_run(f, threads, iterations);
    best = std::max(best, f.flop_per_round * static_cast<double>(iterations) *
                              static_cast<double>(threads) / t);
  }
  return {best * 1e-9, threads, f.isa};
}

}  // namespace tapegrad
