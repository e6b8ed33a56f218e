// Loss functions, with PyTorch's semantics (torch.nn.functional of the same names), numerically
// stable, and with fused gradients. Every loss checks that its shapes agree and names them.
// Empty inputs, as PyTorch: mean is NaN (0/0), sum 0, none an empty tensor, and the gradients are
// empty; soft-target cross-entropy over no classes is 0 per sample, NaN as a mean; class labels
// with no classes throw (no label is in range).
// Derivations: docs/derivations.md#cross-entropy, #nll, #bce, #mse, #l1, #smooth-l1-huber, #kl-div.
// Every loss is differentiable to any order (create_graph): its graph rule writes the gradient
// above with tapegrad's ops (softmax, sigmoid, log, …; constant-factor selects for the pieces of
// piecewise losses), targets given as Vars included. Cross-entropy's Hessian in the logits is
// diag(p_n) − p_n p_nᵀ per sample, times the sample's factor (derivations.md#second-order-losses).
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
  // Label smoothing ε in [0, 1] (softmax_cross_entropy only; nll_loss throws unless it is 0), as
  // PyTorch's label_smoothing: the target of sample n becomes (1 − ε)·onehot(y_n) + ε/K (soft
  // targets: (1 − ε)·t_n + ε/K), so with labels
  //   L_n = (1 − ε) w_{y_n} (−log p_{n,y_n}) + ε/K Σ_k w_k (−log p_nk),
  // and the mean still divides by Σ_n w_{y_n} (soft targets: by N). A value outside [0, 1]
  // throws.
  double label_smoothing = 0.0;
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

// The losses below take the same shapes (no broadcasting, unlike PyTorch, which broadcasts with a
// warning) and, as in PyTorch, a NaN or ±∞ upstream gradient multiplies. d = input − target.

// Absolute error ℓ = |d|.  ∂ℓ/∂input = sgn(d) = −∂ℓ/∂target, 0 at d = 0 and at NaN d (PyTorch's
// abs backward).  (#l1)
template <class T>
Var<T> l1_loss(const Var<T>& input, const Var<T>& target, Reduction reduction = Reduction::mean);

// ℓ = 0.5d²/β if |d| < β, else |d| − 0.5β (PyTorch's smooth_l1_loss).
// ∂ℓ/∂input = s(d) = d/β if |d| < β, else ±1 (the sign of d, −1 at d = 0); NaN at NaN d.
// ∂ℓ/∂target = s(−d) (PyTorch: its backward, arguments swapped), −s(d) except at d = 0, β = 0.
// β = 0 gives |d| with both gradients −1 at d = 0, as PyTorch's kernel (l1_loss has 0 there).
// β < 0 (or NaN) throws std::invalid_argument, as PyTorch refuses it.  (#smooth-l1-huber)
template <class T>
Var<T> smooth_l1_loss(const Var<T>& input, const Var<T>& target,
                      Reduction reduction = Reduction::mean, double beta = 1.0);

// ℓ = 0.5d² if |d| < δ, else δ(|d| − 0.5δ) (PyTorch's huber_loss; β·smooth_l1 with β = δ).
// ∂ℓ/∂input = d if |d| < δ, else ±δ (the sign of d) = −∂ℓ/∂target; NaN at NaN d.
// δ ≤ 0 (or NaN) throws std::invalid_argument, as PyTorch ("non-positive values").
// (#smooth-l1-huber)
template <class T>
Var<T> huber_loss(const Var<T>& input, const Var<T>& target, Reduction reduction = Reduction::mean,
                  double delta = 1.0);

// kl_div's reductions: Reduction's three and batchmean, the sum divided by the size of the first
// dimension (the sum itself for a 0-dimensional input), the one that is the KL divergence of
// each sample averaged over the batch. mean divides by every element, as PyTorch (which warns).
enum class KlDivReduction { mean, sum, none, batchmean };

// Kullback–Leibler divergence as PyTorch's F.kl_div: `input` holds log-probabilities x, target t
// probabilities (log_target: log-probabilities). Pointwise, same shapes:
//   ℓ = t(ln t − x), with t ln t = 0 at t = 0 (xlogy: so ℓ = 0 there, unless x is ±∞ or NaN);
//       ∂ℓ/∂x = −t,  ∂ℓ/∂t = ln t + 1 − x (NaN at t = 0, as PyTorch's xlogy backward, 0/0).
//   log_target: ℓ = eᵗ(t − x);  ∂ℓ/∂x = −eᵗ,  ∂ℓ/∂t = eᵗ(t − x) + eᵗ.
// Empty inputs as PyTorch: none empty, sum 0, mean NaN, batchmean NaN for a first dimension of 0
// (else 0).  (#kl-div)
template <class T>
Var<T> kl_div(const Var<T>& input, const Var<T>& target,
              KlDivReduction reduction = KlDivReduction::mean, bool log_target = false);
// The same with one of Reduction's three.
template <class T>
Var<T> kl_div(const Var<T>& input, const Var<T>& target, Reduction reduction,
              bool log_target = false) {
  return kl_div(input, target,
                reduction == Reduction::mean  ? KlDivReduction::mean
                : reduction == Reduction::sum ? KlDivReduction::sum
                                              : KlDivReduction::none,
                log_target);
}

}  // namespace tapegrad
