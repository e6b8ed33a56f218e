// conv1d's kernels for the instruction set the library is built for (the baseline), and the
// choice, once per process, of the best set this CPU runs.
#include "conv_kernels.hpp"

#include <cstdlib>
#include <cstring>

#include "conv_kernels_impl.hpp"

namespace tapegrad::conv_kernels {

// 32-byte vectors: AVX2 registers on x86-64-v3 (16 of them: blocks of 4 × 2 and 2 × 6
// accumulators), two halves elsewhere.
template <>
const Kernels<float>& baseline_kernels<float>() {
  return make_kernels<float, 32, 4, 2, 2, 6>("baseline", false);
}
template <>
const Kernels<double>& baseline_kernels<double>() {
  return make_kernels<double, 32, 4, 2, 2, 6>("baseline", false);
}

namespace {
bool cpu_has_avx512() {
#if defined(TAPEGRAD_AVX512_KERNELS)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

template <class T>
const Kernels<T>& choose() {
  const char* forced = std::getenv("TAPEGRAD_KERNELS");
  const bool baseline = forced && std::strcmp(forced, "baseline") == 0;
#if defined(TAPEGRAD_AVX512_KERNELS)
  if (!baseline && cpu_has_avx512()) return avx512_kernels<T>();
#else
  (void)baseline;
#endif
  return baseline_kernels<T>();
}
}  // namespace

template <class T>
const Kernels<T>& conv_kernels() {
  static const Kernels<T>& chosen = choose<T>();
  return chosen;
}

template const Kernels<float>& conv_kernels<float>();
template const Kernels<double>& conv_kernels<double>();

}  // namespace tapegrad::conv_kernels
