// The FLOP every benchmark side counts for an MLP training step.
#pragma once

#include <cstddef>
#include <vector>

// FLOP of an MLP step (multiply-add = 2): the forward products, every weight gradient, and the
// input gradient of every layer but the first (its input is data).
template <class Int>
double mlp_flop(const std::vector<Int>& sizes, Int batch) {
  double all = 0, past_first = 0;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    const double p = static_cast<double>(sizes[l]) * static_cast<double>(sizes[l + 1]);
    all += p;
    if (l > 0) past_first += p;
  }
  return 2.0 * static_cast<double>(batch) * (2 * all + past_first);
}
