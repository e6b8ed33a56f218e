#include "tapegrad/autodiff/reduce.hpp"

#include <limits>
#include <string>

#include "strided.hpp"
#include "tapegrad/autodiff/binary.hpp"
#include "tapegrad/autodiff/elementwise.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/reshape.hpp"

namespace tapegrad {
namespace {

// The reduced shape with size-1 dims kept (same rank as x), and without them.
struct Reduction {
  Shape kept;
  Shape dropped;
  std::size_t count = 1;  // elements summed into each output element
};

Reduction plan_all(const Shape& x);

Reduction plan(const char* op, const Shape& x, const std::vector<long>& axes) {
  if (axes.empty()) return plan_all(x);  // as PyTorch 1.13: dim=[] reduces every axis
  bool reduce[max_rank] = {};
  for (long a : axes) {
    const std::size_t ax = normalize_axis(op, a, x);
    if (reduce[ax])
      throw ShapeError(std::string(op) + ": axis " + std::to_string(a) + " given twice for shape " +
                       x.to_string());
    reduce[ax] = true;
  }
  Reduction r;
  for (std::size_t i = 0; i < x.rank(); ++i) {
    r.kept.push_back(reduce[i] ? 1 : x[i]);
    if (reduce[i])
      r.count *= x[i];
    else
      r.dropped.push_back(x[i]);
  }
  return r;
}

// y = scale · Σ over the axes reduced in `r`, shaped `out`.
template <class T>
Var<T> reduce_op(const char* name, const Var<T>& x, const Reduction& r, const Shape& out, T scale) {
  Tensor<T> y = Tensor<T>::zeros(out);
  detail::sum_into(x.value().data(), x.shape(), y.data(), r.kept);
  if (scale != T(1))
    for (T& v : y) v *= scale;
  // One object for both forms of the rule, so that `kept` is stored once and the rule fits in
  // the record without a heap allocation.
  struct Rule {
    Shape kept;
    T scale;
    void operator()(const Tensor<T>& gy, Gradients<T>& g) const {
      const GradSlot<T> s = g.slot(0);
      const Shape& xs = g.input(0).shape();
      if (scale == T(1)) {
        detail::broadcast_to(gy.data(), kept, s, xs);
        return;
      }
      Tensor<T> scaled(kept);
      for (std::size_t k = 0; k < gy.numel(); ++k) scaled[k] = gy[k] * scale;
      detail::broadcast_to(scaled.data(), kept, s, xs);
    }
    void operator()(const Var<T>& gy, GraphGradients<T>& g) const {
      Var<T> gk = reshape(gy, kept);
      if (scale != T(1)) gk = mul_scalar(gk, Scalar<T>(scale));
      g.add(0, expand(gk, g.input(0).shape()));
    }
  };
  return make_op<T>(name, {x}, std::move(y), Rule{r.kept, scale});
}

Reduction plan_all(const Shape& x) {
  Reduction r;
  for (std::size_t i = 0; i < x.rank(); ++i) r.kept.push_back(1);
  r.count = x.numel();
  return r;
}

}  // namespace

template <class T>
Var<T> sum(const Var<T>& x) {
  return reduce_op<T>("sum", x, plan_all(x.shape()), Shape{}, T(1));
}

template <class T>
Var<T> sum(const Var<T>& x, const std::vector<long>& axes, bool keep_dims) {
  const Reduction r = plan("sum", x.shape(), axes);
  return reduce_op<T>("sum", x, r, keep_dims ? r.kept : r.dropped, T(1));
}

// 1/n; for n = 0 (a mean of nothing) ∞, so that the mean is 0 · ∞ = NaN, as in PyTorch (the
// gradient then goes to an empty input: it is empty).
template <class T>
T mean_scale(std::size_t n) {
  return n ? T(1) / T(n) : std::numeric_limits<T>::infinity();
}

template <class T>
Var<T> mean(const Var<T>& x) {
  const Reduction r = plan_all(x.shape());
  return reduce_op<T>("mean", x, r, Shape{}, mean_scale<T>(r.count));
}

template <class T>
Var<T> mean(const Var<T>& x, const std::vector<long>& axes, bool keep_dims) {
  const Reduction r = plan("mean", x.shape(), axes);
  return reduce_op<T>("mean", x, r, keep_dims ? r.kept : r.dropped, mean_scale<T>(r.count));
}

template <class T>
Var<T> sum_to(const Var<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  if (broadcast_shape("sum_to", shape, x.shape()) != x.shape())
    throw ShapeError("sum_to: shape " + shape.to_string() + " does not broadcast to " +
                     x.shape().to_string());
  Tensor<T> y = Tensor<T>::zeros(shape);
  detail::sum_into(x.value().data(), x.shape(), y.data(), shape);
  return make_op<T>(
      "sum_to", {x}, std::move(y),
      [shape](const Tensor<T>& gy, Gradients<T>& g) {
        detail::broadcast_to(gy.data(), shape, g.slot(0), g.input(0).shape());
      },
      [](const Var<T>& gy, GraphGradients<T>& g) { g.add(0, expand(gy, g.input(0).shape())); });
}

#define TAPEGRAD_INSTANTIATE(T)                                       \
  template Var<T> sum_to(const Var<T>&, const Shape&);                \
  template Var<T> sum(const Var<T>&);                                 \
  template Var<T> sum(const Var<T>&, const std::vector<long>&, bool); \
  template Var<T> mean(const Var<T>&);                                \
  template Var<T> mean(const Var<T>&, const std::vector<long>&, bool);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
