// Softmax over rows, shared by the softmax ops and the fused losses: shifted by the row's
// maximum so that no exponential overflows.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "vector_math.hpp"

namespace tapegrad::detail {

// For one row: its maximum m and s = Σ e^{x_j − m}; writes e^{x_j − m} to e (may be null).
template <class T>
void row_exp(const T* x, std::size_t n, std::size_t stride, T* e, T& m, T& s) {
  m = x[0];
  for (std::size_t j = 1; j < n; ++j) m = std::max(m, x[j * stride]);
  s = 0;
  if (std::isinf(m)) m = m > 0 ? m : T(0);  // all −∞: any finite shift; +∞: the row is ∞
  for (std::size_t j = 0; j < n; ++j) {
    const T v = detail::exp_vec(x[j * stride] - m);
    if (e) e[j * stride] = v;
    s += v;
  }
}

// probs = the softmax of each row of a [n, k]; lse[i] = the logsumexp of row i (−∞ when k = 0).
template <class T>
void softmax_rows(const T* a, std::size_t n, std::size_t k, T* probs, T* lse) {
  if (k == 0) {  // no classes: ln of an empty sum
    std::fill(lse, lse + n, -std::numeric_limits<T>::infinity());
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    T m, s;
    row_exp(a + i * k, k, 1, probs + i * k, m, s);
    const T inv = T(1) / s;
    for (std::size_t j = 0; j < k; ++j) probs[i * k + j] *= inv;
    lse[i] = m + std::log(s);
  }
}

}  // namespace tapegrad::detail
