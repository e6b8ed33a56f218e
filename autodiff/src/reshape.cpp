#include "tapegrad/autodiff/reshape.hpp"

#include <algorithm>
#include <string>

#include "strided.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/reduce.hpp"

namespace tapegrad {

template <class T>
Var<T> reshape(const Var<T>& x, const Shape& shape) {
  if (shape.numel() != x.numel())
    throw ShapeError("reshape: cannot reshape " + x.shape().to_string() + " (" +
                     std::to_string(x.numel()) + " elements) to " + shape.to_string());
  Tensor<T> y = x.value();
  y.reshape_in_place(shape);
  return make_op<T>(
      "reshape", {x}, std::move(y),
      [](const Tensor<T>& gy, Gradients<T>& g) {
        const T* pg = gy.data();
        g.accumulate(0, [pg](std::size_t k) { return pg[k]; });
      },
      [](const Var<T>& gy, GraphGradients<T>& g) { g.add(0, reshape(gy, g.input(0).shape())); });
}

template <class T>
Var<T> reshape(const Var<T>& x, std::initializer_list<long> dims) {
  Shape shape;
  std::size_t known = 1, inferred_at = max_rank;
  for (long d : dims) {
    if (d == -1) {
      if (inferred_at != max_rank)
        throw ShapeError("reshape: more than one -1 in the target shape for " +
                         x.shape().to_string());
      inferred_at = shape.rank();
      shape.push_back(1);
    } else if (d < 0) {
      throw ShapeError("reshape: negative dimension " + std::to_string(d) + " for " +
                       x.shape().to_string());
    } else {
      shape.push_back(static_cast<std::size_t>(d));
      known *= static_cast<std::size_t>(d);
    }
  }
  if (inferred_at != max_rank) {
    if (known == 0 || x.numel() % known != 0)
      throw ShapeError("reshape: cannot infer -1 for " + x.shape().to_string() + " (" +
                       std::to_string(x.numel()) + " elements) with the other dims' product " +
                       std::to_string(known));
    shape[inferred_at] = x.numel() / known;
  }
  return reshape(x, shape);
}

template <class T>
Var<T> flatten(const Var<T>& x, long start_axis, long end_axis) {
  const Shape& s = x.shape();
  if (s.rank() == 0) return reshape(x, Shape{1});
  const std::size_t a = normalize_axis("flatten", start_axis, s);
  const std::size_t b = normalize_axis("flatten", end_axis, s);
  if (a > b)
    throw ShapeError("flatten: start axis " + std::to_string(start_axis) + " after end axis " +
                     std::to_string(end_axis) + " for shape " + s.to_string());
  Shape out;
  for (std::size_t i = 0; i < a; ++i) out.push_back(s[i]);
  std::size_t merged = 1;
  for (std::size_t i = a; i <= b; ++i) merged *= s[i];
  out.push_back(merged);
  for (std::size_t i = b + 1; i < s.rank(); ++i) out.push_back(s[i]);
  return reshape(x, out);
}

namespace {
// dst (contiguous, shape `s` with axes a and b swapped) gets src (shape s) with those axes
// swapped, put through its slot.
template <class T>
void swap_axes(const T* src, const Shape& s, std::size_t a, std::size_t b, const GradSlot<T>& dst) {
  Shape out = s;
  std::swap(out[a], out[b]);
  detail::Strides from = contiguous_strides(s);
  std::swap(from[a], from[b]);  // reading src in the output's index order
  const detail::Strides to = contiguous_strides(out);
  detail::for_each_row(out, to, from,
                       [&](std::size_t, std::size_t d, std::size_t f, std::size_t n, std::size_t,
                           std::size_t f_step) {
                         dst.put_range(d, d + n,
                                       [&](std::size_t k) { return src[f + (k - d) * f_step]; });
                       });
}
}  // namespace

template <class T>
Var<T> transpose(const Var<T>& x, long axis0, long axis1) {
  const Shape& s = x.shape();
  const std::size_t a = normalize_axis("transpose", axis0, s);
  const std::size_t b = normalize_axis("transpose", axis1, s);
  Shape out = s;
  std::swap(out[a], out[b]);
  Tensor<T> y(out);
  swap_axes(x.value().data(), s, a, b, GradSlot<T>(y.data(), y.numel(), false));
  return make_op<T>(
      "transpose", {x}, std::move(y),
      [a, b, out](const Tensor<T>& gy, Gradients<T>& g) {
        swap_axes(gy.data(), out, a, b, g.slot(0));
      },
      [a, b](const Var<T>& gy, GraphGradients<T>& g) {
        g.add(0, transpose(gy, static_cast<long>(a), static_cast<long>(b)));
      });
}

template <class T>
Var<T> transpose(const Var<T>& x) {
  if (x.shape().rank() != 2)
    throw ShapeError("transpose: expected a matrix, got shape " + x.shape().to_string() +
                     " (name the axes to swap for other ranks)");
  return transpose(x, 0, 1);
}

namespace {
// dst gets src reversed along `axis` (x viewed as [outer, n, inner]), put through its slot.
template <class T>
void reverse_axis(const T* src, const Shape& s, std::size_t axis, const GradSlot<T>& dst) {
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= s[d];
  for (std::size_t d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  const std::size_t n = s[axis];
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t j = 0; j < n; ++j) {
      const T* from = src + (o * n + (n - 1 - j)) * inner;
      const std::size_t to = (o * n + j) * inner;
      dst.put_range(to, to + inner, [&](std::size_t k) { return from[k - to]; });
    }
}
}  // namespace

template <class T>
Var<T> flip(const Var<T>& x, long axis) {
  const std::size_t a = normalize_axis("flip", axis, x.shape());
  Tensor<T> y(x.shape());
  reverse_axis(x.value().data(), x.shape(), a, GradSlot<T>(y.data(), y.numel(), false));
  return make_op<T>(
      "flip", {x}, std::move(y),
      [a](const Tensor<T>& gy, Gradients<T>& g) {
        reverse_axis(gy.data(), gy.shape(), a, g.slot(0));
      },
      [a](const Var<T>& gy, GraphGradients<T>& g) { g.add(0, flip(gy, static_cast<long>(a))); });
}

template <class T>
Var<T> expand(const Var<T>& x, const Shape& shape) {
  if (detail::broadcast_shapes("expand", x.shape(), shape) != shape)
    throw ShapeError("expand: shape " + x.shape().to_string() + " does not broadcast to " +
                     shape.to_string());
  Tensor<T> y(shape);
  detail::broadcast_to(x.value().data(), x.shape(), GradSlot<T>(y.data(), y.numel(), false), shape);
  return make_op<T>(
      "expand", {x}, std::move(y),
      [](const Tensor<T>& gy, Gradients<T>& g) {
        detail::sum_into(gy.data(), gy.shape(), g.slot(0).zeroed(), g.input(0).shape());
      },
      [](const Var<T>& gy, GraphGradients<T>& g) { g.add(0, sum_to(gy, g.input(0).shape())); });
}

#define TAPEGRAD_INSTANTIATE(T)                                        \
  template Var<T> reshape(const Var<T>&, const Shape&);                \
  template Var<T> reshape(const Var<T>&, std::initializer_list<long>); \
  template Var<T> flatten(const Var<T>&, long, long);                  \
  template Var<T> transpose(const Var<T>&, long, long);                \
  template Var<T> transpose(const Var<T>&);                            \
  template Var<T> flip(const Var<T>&, long);                           \
  template Var<T> expand(const Var<T>&, const Shape&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
