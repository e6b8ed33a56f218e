// softmax, log-softmax and logsumexp along one axis (negative axes count from the end).
// Each subtracts the maximum along the axis first: softmax is translation invariant, so this
// changes nothing but overflow (derivations.md#softmax). Backward rules are O(n) per row, never
// an n×n Jacobian. As PyTorch, an empty axis is allowed: softmax and log_softmax give an empty
// result, logsumexp −∞ (the log of an empty sum); the gradients are then empty.
#pragma once

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// p_i = e^{x_i − m} / Σ_j e^{x_j − m}, m = max_j x_j, along `axis`; same shape as x.
// gx = p ⊙ (g − ⟨p, g⟩) per row: the product with the Jacobian diag(p) − ppᵀ.
template <class T>
Var<T> softmax(const Var<T>& x, long axis = -1);

// y_i = x_i − m − ln Σ_j e^{x_j − m}; same shape as x.  gx = g − softmax(x) · Σ_j g_j per row.
// (derivations.md#log-softmax)
template <class T>
Var<T> log_softmax(const Var<T>& x, long axis = -1);

// y = m + ln Σ_j e^{x_j − m} along `axis` (kept as a size-1 dim with keep_dims).
// gx = g · softmax(x).  (derivations.md#logsumexp)
template <class T>
Var<T> logsumexp(const Var<T>& x, long axis = -1, bool keep_dims = false);

}  // namespace tapegrad
