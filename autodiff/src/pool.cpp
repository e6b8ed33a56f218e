#include "tapegrad/autodiff/pool.hpp"

#include <algorithm>
#include <memory>
#include <string>

#include "parallel.hpp"
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
  if (xs[1] == 0 || xs[2] == 0)  // as PyTorch: only the batch may be empty
    throw ShapeError(std::string(op) + ": input of shape " + xs.to_string() +
                     " has no channels or samples of length 0 (only the batch may be empty)");
  const std::size_t s = stride == 0 ? kernel : stride;
  return {
      xs[0] * xs[1], xs[2], kernel, s, padding, pool1d_output_length(xs[2], kernel, s, padding)};
}

Shape output_shape(const Shape& xs, const PoolGeometry& g) {
  return Shape{xs[0], xs[1], g.l_out};
}

// The common window of 2 at stride 2 over n pairs x[2i], x[2i + 1]: y[i] = the larger (the first
// on ties; a NaN wins, the second of two NaNs as in PyTorch) and took_second[i] = 1 where it is
// x[2i + 1], else 0. Plain selects on non-aliasing arrays: the compiler vectorises the loop, and
// no branch depends on the data.
template <class T>
void max_of_pairs(const T* __restrict x, T* __restrict y, T* __restrict took_second,
                  std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const T a = x[2 * i], b = x[2 * i + 1];
    const bool take_b = (b > a) | (b != b);
    y[i] = take_b ? b : a;
    took_second[i] = take_b ? T(1) : T(0);
  }
}

// Its gradient: gx[2i + took_second[i]] gets gy[i], and the other of the pair 0.
template <class T>
void max_of_pairs_backward(const T* __restrict gy, const T* __restrict took_second,
                           GradSlot<T> gx) {
  for (std::size_t i = 0, n = gx.size() / 2; i < n; ++i) {
    const bool second = took_second[i] != T(0);
    gx.put(2 * i, second ? T(0) : gy[i]);
    gx.put(2 * i + 1, second ? gy[i] : T(0));
  }
}

// Max-pooling's gradient as a pair of differentiable linear ops on fixed positions: pos[r, t]
// (a shared, constant tensor [N, C, L_out]) is the position in row r of x of output t's maximum.
//   route(gy)  [N, C, L_out] → [N, C, L]: gx[r, pos[r, t]] += gy[r, t]  (a scatter)
//   gather(u)  [N, C, L] → [N, C, L_out]: y[r, t] = u[r, pos[r, t]]
// Each is the other's adjoint, so each one's gradient is the other, to any order; the positions
// stay those of the forward pass (x's second derivative through max-pooling is zero).
template <class T>
Var<T> route_to_max(const Var<T>& gy, std::shared_ptr<const Tensor<T>> pos, const Shape& xs);
template <class T>
Var<T> gather_max(const Var<T>& u, std::shared_ptr<const Tensor<T>> pos);

template <class T>
void scatter_rows(const T* gy, const T* pos, std::size_t rows, std::size_t l_out,
                  std::size_t length, T* gx) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t t = 0; t < l_out; ++t)
      gx[r * length + static_cast<std::size_t>(pos[r * l_out + t])] += gy[r * l_out + t];
}

template <class T>
Var<T> route_to_max(const Var<T>& gy, std::shared_ptr<const Tensor<T>> pos, const Shape& xs) {
  Tensor<T> gx = Tensor<T>::zeros(xs);
  const std::size_t l_out = pos->shape()[2];
  scatter_rows(gy.value().data(), pos->data(), xs[0] * xs[1], l_out, xs[2], gx.data());
  struct Rule {
    std::shared_ptr<const Tensor<T>> pos;
    void operator()(const Tensor<T>& u, Gradients<T>& gr) {
      const std::size_t length = u.shape()[2];
      const T *us = u.data(), *p = pos->data();
      gr.accumulate(0, [&](std::size_t k) {
        return us[(k / pos->shape()[2]) * length + static_cast<std::size_t>(p[k])];
      });
    }
    void operator()(const Var<T>& u, GraphGradients<T>& gr) { gr.add(0, gather_max(u, pos)); }
  };
  return make_op<T>("max_pool1d_route", {gy}, std::move(gx), Rule{std::move(pos)});
}

template <class T>
Var<T> gather_max(const Var<T>& u, std::shared_ptr<const Tensor<T>> pos) {
  Tensor<T> y(pos->shape());
  const std::size_t l_out = pos->shape()[2], length = u.shape()[2];
  const T *us = u.value().data(), *p = pos->data();
  for (std::size_t k = 0; k < y.numel(); ++k)
    y[k] = us[(k / l_out) * length + static_cast<std::size_t>(p[k])];
  struct Rule {
    std::shared_ptr<const Tensor<T>> pos;
    void operator()(const Tensor<T>& gy, Gradients<T>& gr) {
      const Shape& xs = gr.input(0).shape();
      T* gx = gr.slot(0).zeroed();
      scatter_rows(gy.data(), pos->data(), xs[0] * xs[1], pos->shape()[2], xs[2], gx);
    }
    void operator()(const Var<T>& gy, GraphGradients<T>& gr) {
      gr.add(0, route_to_max(gy, pos, gr.input(0).shape()));
    }
  };
  return make_op<T>("max_pool1d_gather", {u}, std::move(y), Rule{std::move(pos)});
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
  // `where`: for each output, the position of its maximum in its row of x; for windows of 2 at
  // stride 2, which of the pair (0 or 1).
  Tensor<T> y(out), where(out);
  const T* px = x.value().data();
  const bool pairs = g.kernel == 2 && g.stride == 2 && g.padding == 0;
  if (pairs && g.length % 2 == 0) {  // the rows end to end are pairs too: one long loop
    T *py = y.data(), *pw = where.data();
    detail::parallel_for_values(g.rows * g.l_out, 4, [&](std::size_t begin, std::size_t end) {
      max_of_pairs(px + 2 * begin, py + begin, pw + begin, end - begin);
    });
  } else if (pairs) {  // an odd length: each row's last value is in no window
    T *py = y.data(), *pw = where.data();
    detail::parallel_for_values(g.rows, 2 * g.length, [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r)
        max_of_pairs(px + r * g.length, py + r * g.l_out, pw + r * g.l_out, g.l_out);
    });
  } else {
    for (std::size_t r = 0; r < g.rows; ++r) {
      const T* row = px + r * g.length;
      for (std::size_t t = 0; t < g.l_out; ++t) {
        const long start = static_cast<long>(t * g.stride) - static_cast<long>(g.padding);
        const long begin = std::max(start, 0L);
        const long end = std::min(start + static_cast<long>(g.kernel), static_cast<long>(g.length));
        // Branch-free scan (selects, not jumps: the comparisons are data-dependent). A strict >
        // keeps the first maximum; a NaN replaces anything, so the last NaN wins (as PyTorch's
        // `val > max || isnan(val)`).
        T best = row[begin];
        long best_i = begin;
        for (long i = begin + 1; i < end; ++i) {
          const T v = row[i];
          const bool take = (v > best) | (v != v);
          best = take ? v : best;
          best_i = take ? i : best_i;
        }
        y[r * g.l_out + t] = best;
        where[r * g.l_out + t] = static_cast<T>(best_i);
      }
    }
  }
  struct Rule {
    PoolGeometry g;
    bool pairs;
    void operator()(const Tensor<T>& gy, Gradients<T>& gr) {
      const Tensor<T>& where = gr.input(1);
      const GradSlot<T> slot = gr.slot(0);
      if (pairs && g.length % 2 == 0) {
        detail::parallel_for_values(g.rows * g.l_out, 4, [&](std::size_t begin, std::size_t end) {
          max_of_pairs_backward(gy.data() + begin, where.data() + begin,
                                slot.part(2 * begin, 2 * (end - begin)));
        });
        return;
      }
      if (pairs) {  // an odd length: each row's pairs as above, then its last element, never taken
        detail::parallel_for_values(g.rows, 2 * g.length, [&](std::size_t r0, std::size_t r1) {
          for (std::size_t r = r0; r < r1; ++r) {
            max_of_pairs_backward(gy.data() + r * g.l_out, where.data() + r * g.l_out,
                                  slot.part(r * g.length, 2 * g.l_out));
            slot.put(r * g.length + 2 * g.l_out, T(0));
          }
        });
        return;
      }
      T* gx = slot.zeroed();
      for (std::size_t r = 0; r < g.rows; ++r) {
        const T* gy_row = gy.data() + r * g.l_out;
        const T* where_row = where.data() + r * g.l_out;
        T* gx_row = gx + r * g.length;
        for (std::size_t t = 0; t < g.l_out; ++t)
          gx_row[static_cast<std::size_t>(where_row[t])] += gy_row[t];
      }
    }
    // gx = route(gy) to the maxima's positions (for pairs, `where` holds 0 or 1 in pair t).
    void operator()(const Var<T>& gy, GraphGradients<T>& gr) {
      auto pos = std::make_shared<Tensor<T>>(gr.input(1).value());
      if (pairs)
        for (std::size_t k = 0; k < pos->numel(); ++k)
          (*pos)[k] += static_cast<T>(2 * (k % g.l_out));
      gr.add(0, route_to_max<T>(gy, std::move(pos), gr.input(0).shape()));
    }
  };
  return make_op<T>("max_pool1d", {x, Var<T>(std::move(where))}, std::move(y), Rule{g, pairs});
}

namespace {

// avg_pool1d's window t: x[begin … end − 1] of its row (the part inside the input).
void window(const PoolGeometry& g, std::size_t t, long& begin, long& end) {
  const long start = static_cast<long>(t * g.stride) - static_cast<long>(g.padding);
  begin = std::max(start, 0L);
  end = std::min(start + static_cast<long>(g.kernel), static_cast<long>(g.length));
}

// y = A x: y[r, t] = (1/k) Σ of window t of row r.
template <class T>
void average_windows(const PoolGeometry& g, const T* px, T* y) {
  const T inv = T(1) / static_cast<T>(g.kernel);
  for (std::size_t r = 0; r < g.rows; ++r)
    for (std::size_t t = 0; t < g.l_out; ++t) {
      long begin, end;
      window(g, t, begin, end);
      T acc = 0;
      for (long i = begin; i < end; ++i) acc += px[r * g.length + static_cast<std::size_t>(i)];
      y[r * g.l_out + t] = acc * inv;
    }
}

// gx += Aᵀ gy: each input in window t of row r receives gy[r, t]/k.
template <class T>
void spread_windows(const PoolGeometry& g, const T* gy, T* gx) {
  const T inv = T(1) / static_cast<T>(g.kernel);
  for (std::size_t r = 0; r < g.rows; ++r)
    for (std::size_t t = 0; t < g.l_out; ++t) {
      long begin, end;
      window(g, t, begin, end);
      const T share = gy[r * g.l_out + t] * inv;
      for (long i = begin; i < end; ++i) gx[r * g.length + static_cast<std::size_t>(i)] += share;
    }
}

// Average pooling is linear, y = A x; its gradient gx = Aᵀ gy is this op, whose gradient is A
// again (avg_pool1d itself): each the other's adjoint, to any order.
template <class T>
Var<T> avg_pool1d_adjoint(const Var<T>& gy, const PoolGeometry& g, const Shape& xs) {
  Tensor<T> gx = Tensor<T>::zeros(xs);
  spread_windows(g, gy.value().data(), gx.data());
  struct Rule {
    PoolGeometry g;
    void operator()(const Tensor<T>& u, Gradients<T>& gr) {
      Tensor<T> y(gr.input(0).shape());
      average_windows(g, u.data(), y.data());
      gr.add(0, y);
    }
    void operator()(const Var<T>& u, GraphGradients<T>& gr) {
      gr.add(0, avg_pool1d(u, g.kernel, g.stride, g.padding));
    }
  };
  return make_op<T>("avg_pool1d_adjoint", {gy}, std::move(gx), Rule{g});
}

}  // namespace

template <class T>
Var<T> avg_pool1d(const Var<T>& x, std::size_t kernel, std::size_t stride, std::size_t padding) {
  const PoolGeometry g = geometry("avg_pool1d", x.shape(), kernel, stride, padding);
  Tensor<T> y(output_shape(x.shape(), g));
  average_windows(g, x.value().data(), y.data());
  struct Rule {
    PoolGeometry g;
    void operator()(const Tensor<T>& gy, Gradients<T>& gr) {
      spread_windows(g, gy.data(), gr.slot(0).zeroed());
    }
    void operator()(const Var<T>& gy, GraphGradients<T>& gr) {
      gr.add(0, avg_pool1d_adjoint(gy, g, gr.input(0).shape()));
    }
  };
  return make_op<T>("avg_pool1d", {x}, std::move(y), Rule{g});
}

#define TAPEGRAD_INSTANTIATE(T)                                                     \
  template Var<T> max_pool1d(const Var<T>&, std::size_t, std::size_t, std::size_t); \
  template Var<T> avg_pool1d(const Var<T>&, std::size_t, std::size_t, std::size_t);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
