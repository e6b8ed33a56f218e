// conv1d's gradients as differentiable ops, so that conv1d is differentiable any number of
// times. For a geometry g (conv1d's sizes, stride, padding and dilation) let C(x, w) be the
// correlation without bias; it is bilinear, and its two adjoints are
//   Dx(gy, w) = ∂⟨gy, C(x, w)⟩/∂x   (conv1d_input_grad, [N, C_in, L]),
//   Dw(gy, x) = ∂⟨gy, C(x, w)⟩/∂w   (conv1d_weight_grad, [C_out, C_in, K]).
// From ⟨Dx(gy, w), u⟩ = ⟨gy, C(u, w)⟩ = ⟨Dw(gy, u), w⟩ and ⟨Dw(gy, x), v⟩ = ⟨gy, C(x, v)⟩ =
// ⟨Dx(gy, v), x⟩ each op's gradients are the other two:
//   C(x, w)    with gradient gy:  gx = Dx(gy, w),  gw = Dw(gy, x);
//   Dx(gy, w)  with gradient u:   g_gy = C(u, w),  gw = Dw(gy, u);
//   Dw(gy, x)  with gradient v:   g_gy = C(x, v),  gx = Dx(gy, v).
// Each op computes its value and its raw gradients with conv1d's kernels (conv_direct.hpp,
// conv_im2col.hpp) and its graph gradients with the three ops.
// Derivations: docs/derivations.md#conv1d-double-backward.
#pragma once

#include "conv_geometry.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::detail {

// C(x, w): conv1d of x [N, C_in, L] with w [C_out, C_in, K] and no bias, in geometry g.
template <class T>
Var<T> conv1d_correlate(const Var<T>& x, const Var<T>& w, const ConvGeometry& g);

// Dx(gy, w): the gradient of conv1d's input, for gy [N, C_out, L_out].
template <class T>
Var<T> conv1d_input_grad(const Var<T>& gy, const Var<T>& w, const ConvGeometry& g);

// Dw(gy, x): the gradient of conv1d's weight, for gy [N, C_out, L_out].
template <class T>
Var<T> conv1d_weight_grad(const Var<T>& gy, const Var<T>& x, const ConvGeometry& g);

}  // namespace tapegrad::detail
