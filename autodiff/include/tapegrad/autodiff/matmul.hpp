// Matrix products on BLAS gemm. Transposes are gemm flags, never copies. Empty dimensions are
// allowed, as in PyTorch: an empty inner dimension gives zeros (linear: the bias), and the
// gradients are sums of no products, i.e. zeros (empty for empty operands); linear's gb is Σ_n gy.
// Derivations: docs/derivations.md#matmul and #linear.
#pragma once

#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

using blas::Transpose;

// C = op(A) · op(B) with op(X) = X, or Xᵀ when its flag is Transpose::yes.
// op(A): [M, K], op(B): [K, N] → C: [M, N].
// Gradients (no flags): gA = gC · Bᵀ, gB = Aᵀ · gC; with flags, the same products with the
// flags moved onto the gemm calls (see derivations.md#matmul).
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b, Transpose ta = Transpose::no,
              Transpose tb = Transpose::no);

// y = x · Wᵀ + b, the affine map of a Linear layer, fused into one op.
// x: [N, in], W: [out, in], b: [out] (or undefined: no bias) → y: [N, out].
// gx = gy · W,  gW = gyᵀ · x (= Σ_n δ_n x_nᵀ, the per-sample δxᵀ summed over the batch),
// gb = Σ_n gy_n.
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b = Var<T>());

}  // namespace tapegrad
