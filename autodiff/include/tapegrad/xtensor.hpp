// Interop with xtensor: view a Tensor as an xtensor expression without copying, and build a
// Tensor from any xtensor expression. Kept out of every other header (xtensor is slow to
// compile); include it only where you need it and link xtensor yourself.
#pragma once

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>

#include "tapegrad/autodiff/tensor.hpp"

namespace tapegrad {

// A row-major xtensor view of t's elements (no copy; valid while t lives and keeps its shape).
template <class T>
auto as_xtensor(Tensor<T>& t) {
  std::vector<std::size_t> shape(t.shape().begin(), t.shape().end());
  return xt::adapt(t.data(), t.numel(), xt::no_ownership(), shape);
}
template <class T>
auto as_xtensor(const Tensor<T>& t) {
  std::vector<std::size_t> shape(t.shape().begin(), t.shape().end());
  return xt::adapt(t.data(), t.numel(), xt::no_ownership(), shape);
}

// A Tensor holding the evaluated elements of an xtensor expression, in row-major order.
template <class E>
Tensor<typename E::value_type> from_xtensor(const xt::xexpression<E>& expression) {
  using T = typename E::value_type;
  const xt::xarray<T, xt::layout_type::row_major> a = expression.derived_cast();
  Tensor<T> t(Shape(a.shape().begin(), a.shape().end()));
  std::copy(a.begin(), a.end(), t.begin());
  return t;
}

}  // namespace tapegrad
