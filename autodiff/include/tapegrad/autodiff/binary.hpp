// Elementwise binary ops with NumPy broadcasting: shapes are aligned on the right, and each
// pair of dims must be equal or contain a 1. The output has the broadcast shape; each input's
// gradient is summed back over the axes it was broadcast along, so it has the input's shape.
// Derivations: docs/derivations.md#broadcasting and #arithmetic.
#pragma once

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// The broadcast shape of a and b; throws a ShapeError naming `op` and both shapes.
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

// y = a + b.  ga = sum_to(gy, a.shape), gb = sum_to(gy, b.shape).
template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b);
// y = a - b.  ga = sum_to(gy), gb = -sum_to(gy).
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b);
// y = a ⊙ b.  ga = sum_to(gy ⊙ b), gb = sum_to(gy ⊙ a).
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b);
// y = a / b.  ga = sum_to(gy / b), gb = -sum_to(gy ⊙ a / b²) = -sum_to(gy ⊙ y / b).
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b);

template <class T>
Var<T> operator+(const Var<T>& a, const Var<T>& b) {
  return add(a, b);
}
template <class T>
Var<T> operator-(const Var<T>& a, const Var<T>& b) {
  return sub(a, b);
}
template <class T>
Var<T> operator*(const Var<T>& a, const Var<T>& b) {
  return mul(a, b);
}
template <class T>
Var<T> operator/(const Var<T>& a, const Var<T>& b) {
  return div(a, b);
}

}  // namespace tapegrad
