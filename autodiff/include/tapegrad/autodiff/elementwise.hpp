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

// Activations with PyTorch 1.13's semantics (torch.nn.functional of the same names), values
// and gradients alike at 0, ±∞ and NaN; a NaN or ±∞ upstream gradient multiplies, as in PyTorch
// (gy·0 is NaN). The one deliberate difference is elu's gradient at a NaN input (see there).

// y = x for x > 0, else s·x (s = negative_slope, any sign, as PyTorch).
// dy/dx = 1 for x > 0, else s: s at 0 and at NaN, as PyTorch.  (#leaky-relu)
template <class T>
Var<T> leaky_relu(const Var<T>& x, Scalar<T> negative_slope = Scalar<T>(0.01));

// y = x for x > 0, else α(eˣ − 1) (PyTorch's ELU; y(NaN) = NaN, y(−∞) = −α).
// dy/dx = 1 for x > 0, else α·eˣ (α at 0), computed from the input as F.elu's backward does
// (the output form y + α would lose α·eˣ below x ≈ −37 in double). Differs on purpose at a NaN
// input: the gradient here is NaN; PyTorch's is NaN in the blocks its vector loop handles and 1
// in the scalar tail (the last numel mod 16 floats, or mod 8 doubles).  (#elu)
template <class T>
Var<T> elu(const Var<T>& x, Scalar<T> alpha = Scalar<T>(1));

// PyTorch's names for gelu's two forms.
enum class GeluApproximation { none, tanh };

// none: y = x·Φ(x), Φ(x) = ½ erfc(−x/√2) (= ½(1 + erf(x/√2)), without its cancellation for
//   x ≪ 0).  dy/dx = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π).
// tanh: y = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³).
//   dy/dx = ½(1 + tanh u) + ½x(1 − tanh² u)·√(2/π)(1 + 3·0.044715x²).
// Both: y(−∞) = NaN (−∞·0) and dy/dx(±∞) = NaN (∞·0), as PyTorch.  (#gelu)
template <class T>
Var<T> gelu(const Var<T>& x, GeluApproximation approximate = GeluApproximation::none);

// y = x·σ(x) = x/(1 + e^−x) (SiLU, swish).  dy/dx = σ(x)(1 + x(1 − σ(x))).
// y(−∞) = NaN and dy/dx(±∞) = NaN (∞·0), as PyTorch.  (#silu)
template <class T>
Var<T> silu(const Var<T>& x);

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
