// The peak-rate loop: it runs on the threads asked for, reports a positive rate, and
// TAPEGRAD_KERNELS=baseline selects the baseline loop (run so by CTest as
// train.peak_flops_baseline).
#include "tapegrad/train/peak_flops.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <string>

using namespace tapegrad;

TEST_CASE("peak flops: a positive rate on the threads asked for, from the loop this CPU runs") {
  for (std::size_t threads : {0, 1, 2}) {
    CAPTURE(threads);
    const PeakFlops p = measure_peak_flops(threads, 0.002, 1);
    CHECK(p.threads == (threads == 0 ? 1 : threads));
    CHECK(p.gflops > 0.1);
    CHECK(std::string(p.isa) == peak_flops_isa());
  }
  const std::string isa = peak_flops_isa();
  CHECK((isa == "avx512" || isa == "fma256" || isa == "generic256"));
  const char* forced = std::getenv("TAPEGRAD_KERNELS");
  if (forced && std::strcmp(forced, "baseline") == 0) CHECK(isa != "avx512");
}
