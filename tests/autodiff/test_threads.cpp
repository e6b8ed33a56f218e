// set_flush_denormal: the calling thread and every thread of tapegrad's pool.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>

#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;

namespace {
// x · 1 over a tensor large enough to be split among the threads; counts the elements that came
// out 0 and those that kept the denormal input.
struct Outcome {
  std::size_t zero = 0, kept = 0;
};
Outcome times_one(float denormal, std::size_t n) {
  Tensor<float> x(Shape{n});
  for (std::size_t i = 0; i < n; ++i) x[i] = denormal;
  NoGradGuard no_grad;
  const Tensor<float> y = (Var<float>(x) * Scalar<float>(1.0f)).value();
  // Compared as bits: under DAZ this thread would read a denormal as 0 in a comparison too.
  const auto bits = [](float v) {
    std::uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
  };
  Outcome o;
  for (std::size_t i = 0; i < n; ++i) {
    if (bits(y[i]) == 0) ++o.zero;
    if (bits(y[i]) == bits(denormal)) ++o.kept;
  }
  return o;
}
}  // namespace

TEST_CASE("set_flush_denormal flushes on the calling thread and every pool thread") {
  const std::size_t threads_before = num_threads();
  const bool before = flush_denormal();
  const float denormal = std::numeric_limits<float>::denorm_min() * 1000;
  set_flush_denormal(false);
  REQUIRE(denormal != 0.0f);
  REQUIRE(denormal < std::numeric_limits<float>::min());
  const std::size_t n = 1 << 21;  // 2 M values: split among every thread

#if defined(__x86_64__)
  set_num_threads(2);
  REQUIRE(set_flush_denormal(false));
  CHECK_FALSE(flush_denormal());
  Outcome o = times_one(denormal, n);
  CHECK(o.kept == n);  // denormals kept, by every thread

  REQUIRE(set_flush_denormal(true));
  CHECK(flush_denormal());
  o = times_one(denormal, n);
  CHECK(o.zero == n);  // read as zero, by every thread

  // A thread the pool adds later starts in the mode of the thread that made it.
  set_num_threads(3);
  o = times_one(denormal, n);
  CHECK(o.zero == n);

  REQUIRE(set_flush_denormal(false));
  o = times_one(denormal, n);
  CHECK(o.kept == n);  // every one of the 3 threads back to keeping them
#else
  CHECK_FALSE(set_flush_denormal(true));
  CHECK_FALSE(flush_denormal());
#endif
  set_flush_denormal(before);
  set_num_threads(threads_before);
}
