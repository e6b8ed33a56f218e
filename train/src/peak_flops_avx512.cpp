// The peak-rate loop on 64-byte vectors, compiled with -march=x86-64-v4 (CMakeLists.txt); run
// only when the CPU has AVX-512F (peak_flops.cpp).
#if defined(TAPEGRAD_AVX512_KERNELS)
#include "peak_flops_loop.hpp"

namespace tapegrad::peak_detail {

namespace {
typedef float V512 __attribute__((vector_size(64)));
// 16 chains: 2 FMA units × 4 cycles of latency need 8 in flight; 16 leaves room, and with the
// two constants fits the 32 zmm registers.
constexpr int chains = 16;
float run(std::uint64_t iterations, float m, float a) {
  return fma_chains<V512, chains>(iterations, m, a);
}
}  // namespace

FmaLoop avx512_loop() {
  return {run, flop_per_round<V512, chains>(), "avx512"};
}

}  // namespace tapegrad::peak_detail
#endif
