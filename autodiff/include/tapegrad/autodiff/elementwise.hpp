// Elementwise unary ops and arithmetic with a scalar. Each output has its input's shape; each
// backward is gx = gy ⊙ f'(x), except relu and sign, which select (as PyTorch; see below). Empty
// inputs give empty outputs and gradients. Derivations: docs/derivations.md (anchors below).
#pragma once

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

namespace detail {
template <class T>
struct type_identity {
  using type = T;
};
}  // namespace detail
// A scalar argument that takes its type from the Var (so `x * 2.0` works for Var<float>).
template <class T>
using Scalar = typename detail::type_identity<T>::type;

// y = -x.  dy/dx = -1.  (derivations.md#arithmetic)
template <class T>
Var<T> neg(const Var<T>& x);
// y = e^x.  dy/dx = y.  (#exp-log-sqrt)
template <class T>
Var<T> exp(const Var<T>& x);
// y = ln x.  dy/dx = 1/x.  (#exp-log-sqrt)
template <class T>
Var<T> log(const Var<T>& x);
// y = √x.  dy/dx = 1/(2y).  (#exp-log-sqrt)
template <class T>
Var<T> sqrt(const Var<T>& x);
// y = |x|.  dy/dx = sign(x), taken as 0 at x = 0 and at NaN (PyTorch's sgn).  (#abs-sign)
template <class T>
Var<T> abs(const Var<T>& x);
// y = sign(x) ∈ {-1, 0, 1} (0 at NaN, as PyTorch).  gx = 0 (everywhere it exists), even where
// gy is NaN or infinite (PyTorch's zeros_like).  (#abs-sign)
template <class T>
Var<T> sign(const Var<T>& x);
// y = max(x, 0) = x·H(x), NaN at NaN.  dy/dx = H(x), with H(0) = 0. As PyTorch's
// threshold_backward on y: gx = gy where y > 0 or y is NaN (a NaN input passes gy through),
// else exactly 0, even where gy is NaN or infinite.  (#relu)
template <class T>
Var<T> relu(const Var<T>& x);
// y = σ(x) = 1/(1 + e^-x), evaluated without overflow for any x.  dy/dx = y(1 - y).  (#sigmoid)
template <class T>
Var<T> sigmoid(const Var<T>& x);
// y = tanh x.  dy/dx = 1 - y².  (#tanh)
template <class T>
Var<T> tanh(const Var<T>& x);
// y = softplus(x) = ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|).  dy/dx = σ(x).  (#softplus)
// Differs from PyTorch above x = 20, where PyTorch returns y = x and gradient 1 (its threshold):
// here the exact values, off from those by under e^-20 ≈ 2e-9 relative.
template <class T>
Var<T> softplus(const Var<T>& x);
// y = ln σ(x) = -softplus(-x) = min(x, 0) - ln(1 + e^-|x|).  dy/dx = σ(-x).  (#softplus)
template <class T>
Var<T> log_sigmoid(const Var<T>& x);

// y = x + s.  dy/dx = 1.  (#arithmetic)
template <class T>
Var<T> add_scalar(const Var<T>& x, Scalar<T> s);
// y = s·x.  dy/dx = s.  (#arithmetic)
template <class T>
Var<T> mul_scalar(const Var<T>& x, Scalar<T> s);
// y = s - x.  dy/dx = -1.  (#arithmetic)
template <class T>
Var<T> rsub_scalar(Scalar<T> s, const Var<T>& x);
// y = s / x.  dy/dx = -s/x² = -y/x.  (#arithmetic)
template <class T>
Var<T> rdiv_scalar(Scalar<T> s, const Var<T>& x);

template <class T>
Var<T> operator-(const Var<T>& x) {
  return neg(x);
}
template <class T>
Var<T> operator+(const Var<T>& x, Scalar<T> s) {
  return add_scalar(x, s);
}
template <class T>
Var<T> operator+(Scalar<T> s, const Var<T>& x) {
  return add_scalar(x, s);
}
template <class T>
Var<T> operator-(const Var<T>& x, Scalar<T> s) {
  return add_scalar(x, -s);
}
template <class T>
Var<T> operator-(Scalar<T> s, const Var<T>& x) {
  return rsub_scalar(s, x);
}
template <class T>
Var<T> operator*(const Var<T>& x, Scalar<T> s) {
  return mul_scalar(x, s);
}
template <class T>
Var<T> operator*(Scalar<T> s, const Var<T>& x) {
  return mul_scalar(x, s);
}
template <class T>
Var<T> operator/(const Var<T>& x, Scalar<T> s) {
  return mul_scalar(x, Scalar<T>(1) / s);
}
template <class T>
Var<T> operator/(Scalar<T> s, const Var<T>& x) {
  return rdiv_scalar(s, x);
}

}  // namespace tapegrad
