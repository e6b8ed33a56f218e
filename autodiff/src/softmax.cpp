#include "tapegrad/autodiff/softmax.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "softmax_rows.hpp"
#include "tapegrad/autodiff/binary.hpp"
#include "tapegrad/autodiff/elementwise.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/reduce.hpp"
#include "tapegrad/autodiff/reshape.hpp"
#include "vector_math.hpp"

namespace tapegrad {
namespace {

// x viewed as [outer, n, inner] around the reduced axis; row r = (o, i) has elements
// x[o·n·inner + j·inner + i], j < n.
struct Rows {
  std::size_t outer = 1, n = 1, inner = 1;
  Rows(const char* op, const Shape& s, long axis) {
    const std::size_t a = normalize_axis(op, axis, s);
    for (std::size_t d = 0; d < a; ++d) outer *= s[d];
    n = s[a];
    for (std::size_t d = a + 1; d < s.rank(); ++d) inner *= s[d];
  }
  // Calls f(base, stride) for every row: elements base + j·stride, j < n. Rows of an empty axis
  // hold no elements and are skipped (logsumexp fills in their −∞).
  template <class F>
  void each(F&& f) const {
    if (n == 0) return;
    for (std::size_t o = 0; o < outer; ++o)
      for (std::size_t i = 0; i < inner; ++i) f(o * n * inner + i, inner);
  }
};

}  // namespace

template <class T>
Var<T> softmax(const Var<T>& x, long axis) {
  const Rows rows("softmax", x.shape(), axis);
  const T* px = x.value().data();
  Tensor<T> y(x.shape());
  T* py = y.data();
  rows.each([&](std::size_t b, std::size_t st) {
    T m, s;
    detail::row_exp(px + b, rows.n, st, py + b, m, s);
    const T inv = T(1) / s;
    for (std::size_t j = 0; j < rows.n; ++j) py[b + j * st] *= inv;
  });
  const long a = static_cast<long>(normalize_axis("softmax", axis, x.shape()));
  auto graph = [a](const Var<T>& gy, GraphGradients<T>& g) {  // y ⊙ (gy − Σ_axis gy ⊙ y)
    const Var<T> y = g.output();
    g.add(0, y * (gy - sum(gy * y, {a}, true)));
  };
  auto raw = [rows](const Tensor<T>& g, Gradients<T>& gr) {
    const T* p = gr.output().data();
    const T* pg = g.data();
    const GradSlot<T> slot = gr.slot(0);
    rows.each([&](std::size_t b, std::size_t st) {
      T dot = 0;
      for (std::size_t j = 0; j < rows.n; ++j) dot += p[b + j * st] * pg[b + j * st];
      for (std::size_t j = 0; j < rows.n; ++j) {
        const std::size_t k = b + j * st;
        const T v = p[k] * (pg[k] - dot);
        slot.put(k, v);
      }
    });
  };
  return make_op<T>("softmax", {x}, std::move(y), std::move(raw), std::move(graph));
}

template <class T>
Var<T> log_softmax(const Var<T>& x, long axis) {
  const Rows rows("log_softmax", x.shape(), axis);
  const T* px = x.value().data();
  Tensor<T> y(x.shape());
  T* py = y.data();
  rows.each([&](std::size_t b, std::size_t st) {
    T m, s;
    detail::row_exp<T>(px + b, rows.n, st, nullptr, m, s);
    const T shift = m + std::log(s);
    for (std::size_t j = 0; j < rows.n; ++j) py[b + j * st] = px[b + j * st] - shift;
  });
  const long a = static_cast<long>(normalize_axis("log_softmax", axis, x.shape()));
  auto graph = [a](const Var<T>& gy, GraphGradients<T>& g) {  // gy − e^y Σ_axis gy
    g.add(0, gy - exp(g.output()) * sum(gy, {a}, true));
  };
  auto raw = [rows](const Tensor<T>& g, Gradients<T>& gr) {
    const T* ly = gr.output().data();
    const T* pg = g.data();
    const GradSlot<T> slot = gr.slot(0);
    rows.each([&](std::size_t b, std::size_t st) {
      T total = 0;
      for (std::size_t j = 0; j < rows.n; ++j) total += pg[b + j * st];
      for (std::size_t j = 0; j < rows.n; ++j) {
        const std::size_t k = b + j * st;
        const T v = pg[k] - detail::exp_vec(ly[k]) * total;
        slot.put(k, v);
      }
    });
  };
  return make_op<T>("log_softmax", {x}, std::move(y), std::move(raw), std::move(graph));
}

template <class T>
Var<T> logsumexp(const Var<T>& x, long axis, bool keep_dims) {
  const Shape& s = x.shape();
  const Rows rows("logsumexp", s, axis);
  const std::size_t a = normalize_axis("logsumexp", axis, s);
  Shape out;
  for (std::size_t d = 0; d < s.rank(); ++d)
    if (d != a || keep_dims) out.push_back(d == a ? 1 : s[d]);
  const T* px = x.value().data();
  Tensor<T> y(out);
  if (rows.n == 0) y.fill(-std::numeric_limits<T>::infinity());  // ln of an empty sum, as PyTorch
  rows.each([&](std::size_t b, std::size_t st) {
    T m, sum;
    detail::row_exp<T>(px + b, rows.n, st, nullptr, m, sum);
    // Output index of this row: (o, i) → o·inner + i.
    const std::size_t o = b / (rows.n * rows.inner), i = b % rows.inner;
    y[o * rows.inner + i] = m + std::log(sum);
  });
  Shape kept = s;
  kept[a] = 1;
  auto graph = [kept](const Var<T>& gy, GraphGradients<T>& g) {  // gy ⊙ e^(x − y)
    g.add(0, reshape(gy, kept) * exp(g.input(0) - reshape(g.output(), kept)));
  };
  auto raw = [rows](const Tensor<T>& g, Gradients<T>& gr) {
    const T* px = gr.input(0).data();
    const T* py = gr.output().data();
    const GradSlot<T> slot = gr.slot(0);
    rows.each([&](std::size_t b, std::size_t st) {
      const std::size_t r = (b / (rows.n * rows.inner)) * rows.inner + b % rows.inner;
      for (std::size_t j = 0; j < rows.n; ++j) {
        const std::size_t k = b + j * st;
        const T v = g[r] * detail::exp_vec(px[k] - py[r]);  // g · softmax
        slot.put(k, v);
      }
    });
  };
  return make_op<T>("logsumexp", {x}, std::move(y), std::move(raw), std::move(graph));
}

#define TAPEGRAD_INSTANTIATE(T)                     \
  template Var<T> softmax(const Var<T>&, long);     \
  template Var<T> log_softmax(const Var<T>&, long); \
  template Var<T> logsumexp(const Var<T>&, long, bool);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
