// conv1d's kernels for AVX-512 (x86-64-v4: 32 registers of 64 bytes), built with that
// instruction set by CMakeLists.txt and run only on CPUs that have it (conv_kernels.cpp).
#if defined(TAPEGRAD_AVX512_KERNELS)

#include "conv_kernels_impl.hpp"

namespace tapegrad::conv_kernels {

// Blocks of 4 × 4 accumulators (correlate) and 4 × 6 (weight gradient), + their operands.
template <>
const Kernels<float>& avx512_kernels<float>() {
  return make_kernels<float, 64, 4, 4, 4, 6>("avx512", true);
}
template <>
const Kernels<double>& avx512_kernels<double>() {
  return make_kernels<double, 64, 4, 4, 4, 6>("avx512", true);
}

}  // namespace tapegrad::conv_kernels

#endif
