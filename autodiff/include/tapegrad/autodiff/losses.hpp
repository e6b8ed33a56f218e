// Loss functions, with PyTorch's semantics (torch.nn.functional of the same names), numerically
// stable, and with fused gradients. Every loss checks that its shapes agree and names them.
// Empty inputs, as PyTorch: mean is NaN (0/0), sum 0, none an empty tensor, and the gradients are
// empty; soft-target cross-entropy over no classes is 0 per sample, NaN as a mean; class labels
// with no classes throw (no label is in range).
// Derivations: docs/derivations.md#cross-entropy, #nll, #bce, #mse.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// How per-sample (or per-element) losses become the result: their mean, their sum, or the
// unreduced losses themselves.
enum class Reduction { mean, sum, none };

template <class T>
struct CrossEntropyOptions {
  Reduction reduction = Reduction::mean;
  // Optional per-class weights w [K] (undefined: all 1). With class labels, sample n counts with
  // weight w_{y_n} and the mean divides by Σ_n w_{y_n}, as PyTorch does; with soft targets the
  // loss of sample n is Σ_k w_k t_nk (−log p_nk) and the mean divides by N.
  Tensor<T> class_weights;
};

// Softmax cross-entropy, fused: logits a [N, K], labels N class indices in [0, K).
//   L_n = logsumexp(a_n) − a_{n,y_n}   (times w_{y_n});   mean → scalar, sum → scalar, none → [N].
//   ∂L/∂a_n = (p_n − onehot(y_n)) · w_{y_n} · scale, p_n = softmax(a_n); scale = 1/Σw (mean), 1
//   (sum) or the upstream gradient of sample n (none). A label outside [0, K) throws, naming the
//   sample and the label.
template <class T>
Var<T> softmax_cross_entropy(const Var<T>& logits, const std::vector<std::int64_t>& labels,
                             const CrossEntropyOptions<T>& options = {});

// Softmax cross-entropy against soft targets t [N, K] (a probability row per sample):
//   L_n = Σ_k w_k t_nk (logsumexp(a_n) − a_nk).   ∂L/∂a_nk = (p_nk Σ_j w_j t_nj − w_k t_nk) ·
//   scale.
template <class T>
Var<T> softmax_cross_entropy(const Var<T>& logits, const Tensor<T>& soft_targets,
                             const CrossEntropyOptions<T>& options = {});

// Negative log-likelihood on log-probabilities lp [N, K] (e.g. log_softmax's output):
//   L_n = −w_{y_n} lp_{n,y_n};  mean divides by Σ_n w_{y_n}.  ∂L/∂lp_{n,y_n} = −w_{y_n} · scale.
// nll_loss(log_softmax(a), y) equals softmax_cross_entropy(a, y).
template <class T>
Var<T> nll_loss(const Var<T>& log_probs, const std::vector<std::int64_t>& labels,
                const CrossEntropyOptions<T>& options = {});

// Binary cross-entropy on logits a and targets y (same shape), stable for any a:
//   ℓ = max(a, 0) − a·y + ln(1 + e^{−|a|}).   ∂ℓ/∂a = σ(a) − y,  ∂ℓ/∂y = −a.
template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets,
                                        Reduction reduction = Reduction::mean);

// Binary cross-entropy on probabilities p ∈ [0, 1] and targets y (same shape):
//   ℓ = −(y·ln p + (1 − y)·ln(1 − p)), each log clamped at −100 as PyTorch does, so p = 0 or 1
//   gives a large finite loss, never inf or NaN.
//   ∂ℓ/∂p = (p − y) / max(p(1 − p), 1e-12),  ∂ℓ/∂y = ln(1 − p) − ln p (clamped logs).
template <class T>
Var<T> binary_cross_entropy(const Var<T>& probs, const Var<T>& targets,
                            Reduction reduction = Reduction::mean);

// Squared error ℓ = (f − y)² elementwise (same shapes), reduced.  ∂ℓ/∂f = 2(f − y) = −∂ℓ/∂y.
template <class T>
Var<T> mse_loss(const Var<T>& prediction, const Var<T>& target,
                Reduction reduction = Reduction::mean);

}  // namespace tapegrad
