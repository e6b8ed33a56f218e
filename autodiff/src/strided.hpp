// Private helpers: NumPy broadcasting and strided loops over contiguous tensors.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>

#include "parallel.hpp"
#include "tapegrad/autodiff/shape.hpp"
#include "tapegrad/autodiff/tape.hpp"
#include "tapegrad/autodiff/tensor.hpp"

namespace tapegrad::detail {

using Strides = std::array<std::size_t, max_rank>;

// The NumPy broadcast of two shapes: align on the right; each pair of dims must be equal or
// contain a 1. Throws a ShapeError naming `op` and both shapes.
inline Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const std::size_t r = a.rank() > b.rank() ? a.rank() : b.rank();
  Shape out;
  for (std::size_t i = 0; i < r; ++i) {
    const std::size_t da = i + a.rank() >= r ? a[i + a.rank() - r] : 1;
    const std::size_t db = i + b.rank() >= r ? b[i + b.rank() - r] : 1;
    if (da != db && da != 1 && db != 1)
      throw ShapeError(std::string(op) + ": shapes " + a.to_string() + " and " + b.to_string() +
                       " cannot be broadcast together");
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

// Strides of a contiguous tensor of shape `s` read as if broadcast to `out` (rank >= s.rank()):
// broadcast axes get stride 0.
inline Strides broadcast_strides(const Shape& s, const Shape& out) {
  Strides st{};
  const Strides own = contiguous_strides(s);
  const std::size_t lead = out.rank() - s.rank();
  for (std::size_t i = 0; i < s.rank(); ++i) st[lead + i] = (s[i] == 1) ? 0 : own[i];
  return st;
}

// Walks `shape` in row-major order one innermost row at a time, tracking an offset into each
// of two operands with the given strides: inner(k, off_a, off_b, n, step_a, step_b) handles
// elements k .. k + n of the walk.
template <class F>
void for_each_row(const Shape& shape, const Strides& sa, const Strides& sb, F&& inner) {
  const std::size_t r = shape.rank();
  if (r == 0) {
    inner(std::size_t(0), std::size_t(0), std::size_t(0), std::size_t(1), std::size_t(0),
          std::size_t(0));
    return;
  }
  const std::size_t n = shape[r - 1], total = shape.numel();
  if (total == 0) return;
  std::array<std::size_t, max_rank> idx{};
  std::size_t a = 0, b = 0;
  for (std::size_t k = 0; k < total; k += n) {
    inner(k, a, b, n, sa[r - 1], sb[r - 1]);
    for (std::size_t ax = r - 1; ax-- > 0;) {
      if (++idx[ax] < shape[ax]) {
        a += sa[ax];
        b += sb[ax];
        break;
      }
      a -= sa[ax] * (shape[ax] - 1);
      b -= sb[ax] * (shape[ax] - 1);
      idx[ax] = 0;
    }
  }
}

// Σ p[0..n) with `lanes` independent partial sums (a power of two), added pairwise at the end
// (((acc₀ + acc₁) + (acc₂ + acc₃)) + …): vectorisable, and its rounding error grows with
// n/lanes rather than n. Tensor ops sum with eight; conv1d's bias gradient, over rows of a
// thousand values and more, with 32, which keep enough additions in flight to reach the adders'
// throughput.
template <class T, std::size_t lanes = 8>
T sum_contiguous(const T* p, std::size_t n) {
  static_assert(lanes >= 2 && (lanes & (lanes - 1)) == 0, "lanes: a power of two");
  T acc[lanes] = {};
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes)
    for (std::size_t l = 0; l < lanes; ++l) acc[l] += p[j + l];
  for (std::size_t width = lanes; width > 1; width /= 2)
    for (std::size_t l = 0; l < width / 2; ++l) acc[l] = acc[2 * l] + acc[2 * l + 1];
  T total = acc[0];
  for (; j < n; ++j) total += p[j];
  return total;
}
template <class T>
T sum_strided(const T* p, std::size_t n, std::size_t step) {
  T total = 0;
  for (std::size_t j = 0; j < n; ++j) total += p[j * step];
  return total;
}

// dst (shape `to`) += src (shape `from`) summed over the axes that `to` broadcasts: the adjoint
// of broadcasting. `to` must broadcast to `from`.
template <class T>
void sum_into(const T* src, const Shape& from, T* dst, const Shape& to) {
  const Strides sd = broadcast_strides(to, from);
  const Strides ss = contiguous_strides(from);
  for_each_row(from, ss, sd,
               [&](std::size_t, std::size_t s, std::size_t d, std::size_t n, std::size_t s_step,
                   std::size_t d_step) {
                 if (d_step == 0) {
                   dst[d] +=
                       s_step == 1 ? sum_contiguous(src + s, n) : sum_strided(src + s, n, s_step);
                 } else {
                   for (std::size_t j = 0; j < n; ++j) dst[d + j * d_step] += src[s + j * s_step];
                 }
               });
}

// dst (shape `to`) gets src (shape `from`) broadcast to `to`, put through its slot.
template <class T>
void broadcast_to(const T* src, const Shape& from, const GradSlot<T>& dst, const Shape& to) {
  if (from.numel() == 1) {
    // One value everywhere (the gradient of a sum), split among threads like the passes that
    // read it next when it is large.
    const T v = src[0];
    if (to.numel() < serial_values) {
      dst.put_range(0, to.numel(), [v](std::size_t) { return v; });
      return;
    }
    parallel_for_values(to.numel(), 1, [&](std::size_t begin, std::size_t end) {
      dst.put_range(begin, end, [v](std::size_t) { return v; });
    });
    return;
  }
  const Strides ss = broadcast_strides(from, to);
  const Strides sd = contiguous_strides(to);
  for_each_row(to, sd, ss,
               [&](std::size_t, std::size_t d, std::size_t s, std::size_t n, std::size_t,
                   std::size_t s_step) {
                 if (s_step == 0) {  // one value along the row (a local: it cannot alias dst)
                   const T v = src[s];
                   dst.put_range(d, d + n, [v](std::size_t) { return v; });
                 } else {
                   dst.put_range(d, d + n,
                                 [&](std::size_t k) { return src[s + (k - d) * s_step]; });
                 }
               });
}

}  // namespace tapegrad::detail
