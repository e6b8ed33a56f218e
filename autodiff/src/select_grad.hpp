// scale_by_factors: the product of a gradient with constant factors, as a differentiable op;
// shared by the graph rules of piecewise ops (elementwise.cpp, losses.cpp).
#pragma once

#include <cstddef>
#include <utility>

#include "tapegrad/autodiff/op.hpp"

namespace tapegrad::detail {

// A tensor of x's shape with factor(x[k], y[k]) at each element: the constant factors of
// piecewise-linear derivatives (relu's 0 and 1, leaky_relu's slope, abs's sign).
template <class T, class F>
Tensor<T> factors(const Var<T>& x, const Var<T>& y, F factor) {
  Tensor<T> out(x.shape());
  const T *xs = x.value().data(), *ys = y.value().data();
  for (std::size_t k = 0; k < out.numel(); ++k) out[k] = factor(xs[k], ys[k]);
  return out;
}

// y = gy ⊙ factor, with y = 0 where factor = 0 even if gy is NaN or infinite (a derivative that
// selects rather than multiplies, as PyTorch's threshold_backward). Linear in gy, with a
// constant factor: its own adjoint, so every order of derivative is this same op.
template <class T>
Var<T> scale_by_factors(const Var<T>& gy, Tensor<T> factor) {
  Tensor<T> y(gy.shape());
  for (std::size_t k = 0; k < y.numel(); ++k)
    y[k] = factor[k] == T(0) ? T(0) : gy.value()[k] * factor[k];
  struct Rule {
    Tensor<T> factor;
    void operator()(const Tensor<T>& g_out, Gradients<T>& g) {
      const T *f = factor.data(), *gs = g_out.data();
      g.accumulate(0, [&](std::size_t k) { return f[k] == T(0) ? T(0) : gs[k] * f[k]; });
    }
    void operator()(const Var<T>& g_out, GraphGradients<T>& g) {
      g.add(0, scale_by_factors(g_out, factor));
    }
  };
  return make_op<T>("scale_by_factors", {gy}, std::move(y), Rule{std::move(factor)});
}

}  // namespace tapegrad::detail
