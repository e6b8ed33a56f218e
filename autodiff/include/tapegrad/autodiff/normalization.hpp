// Batch and layer normalisation, with PyTorch's semantics (torch.nn.functional.batch_norm and
// layer_norm) and fused, closed-form gradients. Variances are biased (divide by the element
// count) inside the normalisation; statistics are summed in double for both scalar types, in a
// fixed order, so results do not depend on the thread count.
// Derivations: docs/derivations.md#batch-norm and #layer-norm.
// Under create_graph the gradients below are written with tapegrad's ops, the statistics
// recomputed from x with ops (training, layer_norm), so every order of derivative follows
// (derivations.md#normalisation-second-order).
#pragma once

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// Batch normalisation with the batch's statistics (training mode).
// x: [N, C, *] (rank ≥ 2: [N, C], [N, C, L], …; channel axis 1); weight γ and bias β: [C], or
// undefined (no affine map: γ = 1, β = 0). y has x's shape. Per channel c, over the m = N·L
// elements of that channel (L the product of the dimensions after C):
//   μ_c = (1/m) Σ x,   σ²_c = (1/m) Σ (x − μ_c)²,   x̂ = (x − μ_c) / √(σ²_c + ε),
//   y = γ_c x̂ + β_c.
// Gradients, per channel, with σ̂_c = √(σ²_c + ε) and means over the channel's m elements:
//   gx = (γ_c / σ̂_c) (gy − mean(gy) − x̂ · mean(gy ⊙ x̂)),   gγ_c = Σ gy ⊙ x̂,   gβ_c = Σ gy.
// If given, *batch_mean receives μ [C] and *batch_var the unbiased variance (1/(m − 1)) Σ (x − μ)²
// [C]: what BatchNorm's running-statistics update uses. Like PyTorch, an empty batch (m = 0)
// gives an empty y and no statistics (both out-parameters become undefined tensors: leave the
// running statistics as they are), and gradients of zero for γ and β; a batch with one value per
// channel (m = 1) throws "Expected more than 1 value per channel when training".
template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& weight = Var<T>(), const Var<T>& bias = Var<T>(),
                  double eps = 1e-5, Tensor<T>* batch_mean = nullptr,
                  Tensor<T>* batch_var = nullptr);

// Batch normalisation with given running statistics (evaluation mode): running_mean and
// running_var [C] are constants.
//   x̂ = (x − running_mean_c) / √(running_var_c + ε),   y = γ_c x̂ + β_c   (shapes as above).
// Gradients: gx = gy · γ_c / √(running_var_c + ε),   gγ_c = Σ gy ⊙ x̂,   gβ_c = Σ gy.
template <class T>
Var<T> batch_norm_eval(const Var<T>& x, const Tensor<T>& running_mean, const Tensor<T>& running_var,
                       const Var<T>& weight = Var<T>(), const Var<T>& bias = Var<T>(),
                       double eps = 1e-5);

// Layer normalisation over the trailing dimensions `normalized_shape` (rank ≥ 1; x's shape must
// end with it, as in PyTorch). x: [*, D₁…D_k] with normalized_shape = [D₁…D_k]; weight γ and
// bias β: normalized_shape, or undefined (γ = 1, β = 0). y has x's shape. Per row r (one index of
// the leading dimensions), over its D = D₁⋯D_k elements:
//   μ_r = (1/D) Σ x,   σ²_r = (1/D) Σ (x − μ_r)²,   x̂ = (x − μ_r) / √(σ²_r + ε),   y = x̂ ⊙ γ + β.
// Gradients, with σ̂_r = √(σ²_r + ε), h = gy ⊙ γ and means over the row's D elements:
//   gx = (1/σ̂_r) (h − mean(h) − x̂ · mean(h ⊙ x̂)),   gγ = Σ_r gy ⊙ x̂,   gβ = Σ_r gy.
// Empty inputs give empty outputs (and zero gradients for γ and β), as in PyTorch.
template <class T>
Var<T> layer_norm(const Var<T>& x, const Shape& normalized_shape, const Var<T>& weight = Var<T>(),
                  const Var<T>& bias = Var<T>(), double eps = 1e-5);

}  // namespace tapegrad
