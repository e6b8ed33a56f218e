#include "tapegrad/autodiff/pool.hpp"

#include <algorithm>
#include <string>

#include "tapegrad/autodiff/op.hpp"

namespace tapegrad {
namespace {

struct PoolGeometry {
  std::size_t rows, length, kernel, stride, padding, l_out;  // rows = N·C
};

PoolGeometry geometry(const char* op, const Shape& xs, std::size_t kernel, std::size_t stride,
                      std::size_t padding) {
  if (xs.rank() != 3)
    throw ShapeError(std::string(op) + ": input must be [N, C, L], got shape " + xs.to_string());
  const std::size_t s = stride == 0 ? kernel : stride;
  return {
      xs[0] * xs[1], xs[2], kernel, s, padding, pool1d_output_length(xs[2], kernel, s, padding)};
}

Shape output_shape(const Shape& xs, const PoolGeometry& g) {
  return Shape{xs[0], xs[1], g.l_out};
}

}  // namespace

std::size_t pool1d_output_length(std::size_t length, std::size_t kernel, std::size_t stride,
                                 std::size_t padding) {
  auto params = [&] {  // built only on failure: this runs on every forward pass
    return " (length " + std::to_string(length) + ", kernel " + std::to_string(kernel) +
           ", stride " + std::to_string(stride) + ", padding " + std::to_string(padding) + ")";
  };
  if (kernel == 0 || stride == 0)
    throw std::invalid_argument("pool1d: kernel and stride must be positive" + params());
  if (2 * padding > kernel)
    throw std::invalid_argument("pool1d: padding must be at most half the kernel" + params());
  if (length + 2 * padding < kernel)
    throw ShapeError("pool1d: the input, padded, is shorter than the kernel" + params());
  return (length + 2 * padding - kernel) / stride + 1;
}

template <class T>
Var<T> max_pool1d(const Var<T>& x, std::size_t kernel, std::size_t stride, std::size_t padding) {
  const PoolGeometry g = geometry("max_pool1d", x.shape(), kernel, stride, padding);
  const Shape out = output_shape(x.shape(), g);
  Tensor<T> y(out), where(out);  // `where`: each maximum's position in its row of x
  const T* px = x.value().data();
  const bool pairs = g.kernel == 2 && g.stride == 2 && g.padding == 0;
  for (std::size_t r = 0; r < g.rows; ++r) {
    const T* row = px + r * g.length;
    if (pairs) {  // the common 2/2 window, in a loop the compiler vectorises
      T* yr = y.data() + r * g.l_out;
      T* wr = where.data() + r * g.l_out;
      for (std::size_t t = 0; t < g.l_out; ++t) {
        const T a = row[2 * t], b = row[2 * t + 1];
        const bool take_b = (b > a) | ((b != b) & (a == a));  // no short-circuit: no jumps
        yr[t] = take_b ? b : a;
        wr[t] = static_cast<T>(2 * t + (take_b ? 1 : 0));
      }
      continue;
    }
    for (std::size_t t = 0; t < g.l_out; ++t) {
      const long start = static_cast<long>(t * g.stride) - static_cast<long>(g.padding);
      const long begin = std::max(start, 0L);
      const long end = std::min(start + static_cast<long>(g.kernel), static_cast<long>(g.length));
      // Branch-free scan (selects, not jumps: the comparisons are data-dependent). A strict >
      // keeps the first maximum; a NaN replaces a number and then stays.
      T best = row[begin];
      long best_i = begin;
      for (long i = begin + 1; i < end; ++i) {
        const T v = row[i];
        const bool take = (v > best) | ((v != v) & (best == best));
        best = take ? v : best;
        best_i = take ? i : best_i;
      }
      y[r * g.l_out + t] = best;
      where[r * g.l_out + t] = static_cast<T>(best_i);
    }
  }
  return make_op<T>("max_pool1d", {x, Var<T>(std::move(where))}, std::move(y),
                    [g](const Tensor<T>& gy, Gradients<T>& gr) {
                      const Tensor<T>& where = gr.input(1);
                      GradSlot<T> slot = gr.slot(0);
                      if (slot.overwrite) std::fill(slot.data, slot.data + slot.size, T(0));
                      for (std::size_t r = 0; r < g.rows; ++r)
                        for (std::size_t t = 0; t < g.l_out; ++t) {
                          const std::size_t k = r * g.l_out + t;
                          slot.data[r * g.length + static_cast<std::size_t>(where[k])] += gy[k];
                        }
                    });
}

template <class T>
Var<T> avg_pool1d(const Var<T>& x, std::size_t kernel, std::size_t stride, std::size_t padding) {
  const PoolGeometry g = geometry("avg_pool1d", x.shape(), kernel, stride, padding);
  Tensor<T> y(output_shape(x.shape(), g));
  const T* px = x.value().data();
  const T inv = T(1) / static_cast<T>(g.kernel);
  auto window = [g](std::size_t t, long& begin, long& end) {
    const long start = static_cast<long>(t * g.stride) - static_cast<long>(g.padding);
    begin = std::max(start, 0L);
    end = std::min(start + static_cast<long>(g.kernel), static_cast<long>(g.length));
  };
  for (std::size_t r = 0; r < g.rows; ++r)
    for (std::size_t t = 0; t < g.l_out; ++t) {
      long begin, end;
      window(t, begin, end);
      T acc = 0;
      for (long i = begin; i < end; ++i) acc += px[r * g.length + static_cast<std::size_t>(i)];
      y[r * g.l_out + t] = acc * inv;
    }
  return make_op<T>("avg_pool1d", {x}, std::move(y),
                    [g, inv, window](const Tensor<T>& gy, Gradients<T>& gr) {
                      GradSlot<T> slot = gr.slot(0);
                      if (slot.overwrite) std::fill(slot.data, slot.data + slot.size, T(0));
                      for (std::size_t r = 0; r < g.rows; ++r)
                        for (std::size_t t = 0; t < g.l_out; ++t) {
                          long begin, end;
                          window(t, begin, end);
                          const T share = gy[r * g.l_out + t] * inv;
                          for (long i = begin; i < end; ++i)
                            slot.data[r * g.length + static_cast<std::size_t>(i)] += share;
                        }
                    });
}

#define TAPEGRAD_INSTANTIATE(T)                                                     \
  template Var<T> max_pool1d(const Var<T>&, std::size_t, std::size_t, std::size_t); \
  template Var<T> avg_pool1d(const Var<T>&, std::size_t, std::size_t, std::size_t);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
