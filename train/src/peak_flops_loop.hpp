// The register-only FMA loop of peak_flops.cpp, for a vector type V (GCC's vector extension) of
// `Chains` independent accumulators. Compiled with -ffp-contract=fast so that a * b + c is one
// FMA instruction where the target has one.
#pragma once

#include <cstdint>

namespace tapegrad::peak_detail {

// Runs `iterations` rounds of Chains multiply-adds on vectors of V and returns a sum of the
// accumulators (so that the loop is not removed). acc ← acc · m + a converges to a / (1 − m):
// no overflow, no denormals.
template <class V, int Chains>
float fma_chains(std::uint64_t iterations, float m, float a) {
  V acc[Chains];
  V vm = V{} + m;
  V va = V{} + a;
#pragma GCC unroll 32
  for (int c = 0; c < Chains; ++c) acc[c] = V{} + static_cast<float>(c) * 1e-3f;
  for (std::uint64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 32
    for (int c = 0; c < Chains; ++c) acc[c] = acc[c] * vm + va;
  }
  V total = V{};
#pragma GCC unroll 32
  for (int c = 0; c < Chains; ++c) total += acc[c];
  float s = 0;
  for (std::size_t j = 0; j < sizeof(V) / sizeof(float); ++j) s += total[j];
  return s;
}

// FLOP of one round: Chains vectors of sizeof(V) / 4 floats, 2 FLOP each.
template <class V, int Chains>
constexpr double flop_per_round() {
  return 2.0 * Chains * (sizeof(V) / sizeof(float));
}

// The loop and its FLOP per round, as the dispatcher in peak_flops.cpp sees them.
struct FmaLoop {
  float (*run)(std::uint64_t iterations, float m, float a);
  double flop_per_round;
  const char* isa;
};

// The AVX-512 loop (peak_flops_avx512.cpp); only defined when TAPEGRAD_AVX512_KERNELS is.
FmaLoop avx512_loop();

}  // namespace tapegrad::peak_detail
