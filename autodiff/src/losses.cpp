#include "tapegrad/autodiff/losses.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "select_grad.hpp"
#include "softmax_rows.hpp"
#include "tapegrad/autodiff/binary.hpp"
#include "tapegrad/autodiff/elementwise.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/reshape.hpp"
#include "tapegrad/autodiff/softmax.hpp"
#include "vector_math.hpp"

namespace tapegrad {
namespace {

// The labels as a tensor (an untracked input of the op, so the backward closure holds nothing
// that allocates), after checking each is a class index in [0, K).
template <class T>
Tensor<T> label_tensor(const char* op, const std::vector<std::int64_t>& labels, std::size_t n,
                       std::size_t k) {
  if (labels.size() != n)
    throw ShapeError(std::string(op) + ": " + std::to_string(labels.size()) + " labels for " +
                     std::to_string(n) + " samples");
  Tensor<T> t(Shape{n});
  for (std::size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= k)
      throw std::invalid_argument(std::string(op) + ": label " + std::to_string(labels[i]) +
                                  " of sample " + std::to_string(i) + " is outside [0, " +
                                  std::to_string(k) + ")");
    t[i] = static_cast<T>(labels[i]);
  }
  return t;
}

// The class weights (an empty tensor stands for "all 1"), checked to be [K].
template <class T>
Tensor<T> weight_tensor(const char* op, const Tensor<T>& w, std::size_t k) {
  if (!w.defined()) return Tensor<T>(Shape{0});
  if (w.shape() != Shape{k})
    throw ShapeError(std::string(op) + ": class weights of shape " + w.shape().to_string() +
                     " for " + std::to_string(k) + " classes (expected [" + std::to_string(k) +
                     "])");
  return w;
}

template <class T>
T weight_of(const Tensor<T>& w, std::size_t c) {
  return w.numel() ? w[c] : T(1);
}

// The reduced result of per-sample losses `per`: a scalar (mean over `denominator`, or sum) or
// the losses themselves.
template <class T>
Tensor<T> reduce_losses(const Tensor<T>& per, Reduction r, T denominator) {
  if (r == Reduction::none) return per;
  T total = 0;
  for (T v : per) total += v;
  return Tensor<T>::scalar(r == Reduction::mean ? total / denominator : total);
}

// ∂result/∂(loss of sample n), given the upstream gradient g of the result.
template <class T>
T sample_scale(const Tensor<T>& g, Reduction r, T denominator, std::size_t n) {
  if (r == Reduction::none) return g[n];
  return r == Reduction::mean ? g[0] / denominator : g[0];
}

void require_same_shape(const char* op, const Shape& a, const Shape& b) {
  if (a != b)
    throw ShapeError(std::string(op) + ": input of shape " + a.to_string() +
                     " and target of shape " + b.to_string() + " differ");
}

// The graph rules' upstream factors, as Vars: ∂result/∂ℓ_n · c_n for the per-sample losses of
// a [N, K] loss, as a column [N, 1] (c: constant per-sample factors, e.g. class weights, or
// empty for all 1).
template <class T>
Var<T> sample_scales(const Var<T>& g, Reduction r, T denominator, std::size_t n,
                     Tensor<T> c = Tensor<T>()) {
  if (!c.defined()) c = Tensor<T>::full(Shape{n, 1}, T(1));
  if (r == Reduction::mean)
    for (std::size_t i = 0; i < n; ++i) c[i] /= denominator;
  const Var<T> base = r == Reduction::none ? reshape(g, Shape{n, 1}) : g;
  return base * Var<T>(std::move(c));
}

// The same for an elementwise loss: ∂result/∂ℓ_k for every element, of the input's shape.
template <class T>
Var<T> element_scales(const Var<T>& g, Reduction r, T count, const Shape& shape) {
  if (r == Reduction::none) return g;
  const Var<T> all = expand(g, shape);
  return r == Reduction::mean ? mul_scalar(all, Scalar<T>(T(1) / count)) : all;
}

// An elementwise loss ℓ(x, y) with ∂ℓ/∂x and ∂ℓ/∂y, reduced over all elements; mean divides by
// `count`, the element count unless given (0 for empty inputs: the mean is NaN, as PyTorch).
//
// `graph(s, x, y, gr)` is the graph rule given the upstream factor of every element, s (x's
// shape): it adds s ⊙ ∂ℓ/∂x and s ⊙ ∂ℓ/∂y written with tapegrad's ops, for the inputs needed.
template <class T, class Loss, class DX, class DY, class G>
Var<T> elementwise_loss(const char* name, const Var<T>& x, const Var<T>& y, Reduction r, Loss loss,
                        DX dx, DY dy, G graph, T count = T(-1)) {
  require_same_shape(name, x.shape(), y.shape());
  const Tensor<T>& xv = x.value();
  const Tensor<T>& yv = y.value();
  Tensor<T> per(xv.shape());
  for (std::size_t k = 0; k < per.numel(); ++k) per[k] = loss(xv[k], yv[k]);
  if (count < 0) count = static_cast<T>(per.numel());
  return make_op<T>(
      name, {x, y}, reduce_losses(per, r, count),
      [r, count, dx, dy](const Tensor<T>& g, Gradients<T>& gr) {
        const T* xs = gr.input(0).data();
        const T* ys = gr.input(1).data();
        if (gr.needed(0))
          gr.accumulate(
              0, [&](std::size_t k) { return sample_scale(g, r, count, k) * dx(xs[k], ys[k]); });
        if (gr.needed(1))
          gr.accumulate(
              1, [&](std::size_t k) { return sample_scale(g, r, count, k) * dy(xs[k], ys[k]); });
      },
      [r, count, graph](const Var<T>& g, GraphGradients<T>& gr) {
        const Var<T> x = gr.input(0), y = gr.input(1);
        graph(element_scales(g, r, count, x.shape()), x, y, gr);
      });
}

// Checks label_smoothing ε ∈ [0, 1] (NaN fails), as PyTorch, and returns it as T.
template <class T>
T smoothing_of(const char* op, const CrossEntropyOptions<T>& options) {
  const double eps = options.label_smoothing;
  if (!(eps >= 0.0 && eps <= 1.0))
    throw std::invalid_argument(std::string(op) +
                                ": label_smoothing must be between 0.0 and 1.0 (got " +
                                std::to_string(eps) + ")");
  return static_cast<T>(eps);
}

// Softmax cross-entropy of logits [N, K] against soft targets t [N, K] (already smoothed) with
// class weights w ([K] or empty): L_n = Σ_k w_k t_nk (logsumexp(a_n) − a_nk); the mean divides by
// `denominator`.
template <class T>
Var<T> soft_cross_entropy(const char* op, const Var<T>& logits, Tensor<T> targets, Tensor<T> w,
                          Reduction r, T denominator) {
  const std::size_t n = logits.shape()[0];
  const std::size_t k = logits.shape()[1];
  const T* a = logits.value().data();
  const T* t = targets.data();
  Tensor<T> probs(Shape{n, k});
  Tensor<T> per(Shape{n});  // logsumexp of each row, then each sample's loss
  detail::softmax_rows(a, n, k, probs.data(), per.data());
  for (std::size_t i = 0; i < n; ++i) {
    T loss = 0;
    for (std::size_t j = 0; j < k; ++j)
      loss += weight_of(w, j) * t[i * k + j] * (per[i] - a[i * k + j]);
    per[i] = loss;
  }
  return make_op<T>(
      op, {logits, Var<T>(std::move(targets)), Var<T>(std::move(probs)), Var<T>(std::move(w))},
      reduce_losses(per, r, denominator),
      [r, n, k, denominator](const Tensor<T>& g, Gradients<T>& gr) {
        const T* t = gr.input(1).data();
        const T* p = gr.input(2).data();
        const Tensor<T>& w = gr.input(3);
        const GradSlot<T> slot = gr.slot(0);
        for (std::size_t i = 0; i < n; ++i) {
          const T scale = sample_scale(g, r, denominator, i);
          T mass = 0;  // Σ_j w_j t_ij
          for (std::size_t j = 0; j < k; ++j) mass += weight_of(w, j) * t[i * k + j];
          for (std::size_t j = 0; j < k; ++j) {
            const std::size_t e = i * k + j;
            const T v = scale * (p[e] * mass - weight_of(w, j) * t[e]);
            slot.put(e, v);
          }
        }
      },
      // ga = s ⊙ (softmax(a) · m − w ⊙ t), m_n = Σ_j w_j t_nj, with softmax as an op.
      [r, n, k, denominator](const Var<T>& g, GraphGradients<T>& gr) {
        const Tensor<T>& t = gr.input(1).value();
        const Tensor<T>& w = gr.input(3).value();
        Tensor<T> mass = Tensor<T>::zeros(Shape{n, 1}), wt(Shape{n, k});
        for (std::size_t e = 0; e < n * k; ++e) {
          wt[e] = weight_of(w, e % k) * t[e];
          mass[e / k] += wt[e];
        }
        gr.add(0, sample_scales(g, r, denominator, n) *
                      (softmax(gr.input(0), 1) * Var<T>(std::move(mass)) - Var<T>(std::move(wt))));
      });
}

}  // namespace

template <class T>
Var<T> softmax_cross_entropy(const Var<T>& logits, const std::vector<std::int64_t>& labels,
                             const CrossEntropyOptions<T>& options) {
  const char* op = "softmax_cross_entropy";
  require_matrix(op, "logits", logits.shape(), "[N, K]");
  const std::size_t k = logits.shape()[1];
  const std::size_t n = logits.shape()[0];
  Tensor<T> y = label_tensor<T>(op, labels, n, k);
  Tensor<T> w = weight_tensor(op, options.class_weights, k);
  const T eps = smoothing_of(op, options);
  if (eps != 0) {
    // The target (1 − ε)·onehot(y_n) + ε/K; the mean still divides by Σ_n w_{y_n}, as PyTorch.
    Tensor<T> t = Tensor<T>::full(Shape{n, k}, eps / static_cast<T>(k));
    T total_weight = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t c = static_cast<std::size_t>(y[i]);
      t[i * k + c] += 1 - eps;
      total_weight += weight_of(w, c);
    }
    return soft_cross_entropy(op, logits, std::move(t), std::move(w), options.reduction,
                              total_weight);
  }
  const T* a = logits.value().data();
  Tensor<T> probs(Shape{n, k});
  Tensor<T> per(Shape{n});  // logsumexp of each row, then each sample's loss
  detail::softmax_rows(a, n, k, probs.data(), per.data());
  T total_weight = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = static_cast<std::size_t>(y[i]);
    const T wc = weight_of(w, c);
    per[i] = wc * (per[i] - a[i * k + c]);
    total_weight += wc;
  }
  const Reduction r = options.reduction;
  return make_op<T>(
      op, {logits, Var<T>(std::move(y)), Var<T>(std::move(probs)), Var<T>(std::move(w))},
      reduce_losses(per, r, total_weight),
      [r, n, k, total_weight](const Tensor<T>& g, Gradients<T>& gr) {
        const Tensor<T>& y = gr.input(1);
        const T* p = gr.input(2).data();
        const Tensor<T>& w = gr.input(3);
        const GradSlot<T> slot = gr.slot(0);
        for (std::size_t i = 0; i < n; ++i) {
          const std::size_t c = static_cast<std::size_t>(y[i]);
          const T scale = sample_scale(g, r, total_weight, i) * weight_of(w, c);
          const T* pi = p + i * k;
          for (std::size_t j = 0; j < k; ++j)
            slot.put(i * k + j, scale * (pi[j] - (j == c ? T(1) : T(0))));
        }
      },
      // ga = s ⊙ (softmax(a) − onehot(y)), s_n = w_{y_n} · scale; softmax
      // recomputed as an op, so that the Hessian diag(p) − ppᵀ follows.
      [r, n, k, total_weight](const Var<T>& g, GraphGradients<T>& gr) {
        const Tensor<T>& y = gr.input(1).value();
        const Tensor<T>& w = gr.input(3).value();
        Tensor<T> c(Shape{n, 1}), onehot = Tensor<T>::zeros(Shape{n, k});
        for (std::size_t i = 0; i < n; ++i) {
          const std::size_t label = static_cast<std::size_t>(y[i]);
          c[i] = weight_of(w, label);
          onehot[i * k + label] = T(1);
        }
        gr.add(0, sample_scales(g, r, total_weight, n, std::move(c)) *
                      (softmax(gr.input(0), 1) - Var<T>(std::move(onehot))));
      });
}

template <class T>
Var<T> softmax_cross_entropy(const Var<T>& logits, const Tensor<T>& soft_targets,
                             const CrossEntropyOptions<T>& options) {
  const char* op = "softmax_cross_entropy";
  require_matrix(op, "logits", logits.shape(), "[N, K]");
  const std::size_t k = logits.shape()[1];
  const std::size_t n = logits.shape()[0];
  if (soft_targets.shape() != logits.shape())
    throw ShapeError(std::string(op) + ": soft targets of shape " +
                     soft_targets.shape().to_string() + " for logits of shape " +
                     logits.shape().to_string());
  const T eps = smoothing_of(op, options);
  Tensor<T> w = weight_tensor(op, options.class_weights, k);
  Tensor<T> t = soft_targets;
  if (eps != 0) {  // (1 − ε)·t + ε/K, as PyTorch
    t = Tensor<T>(soft_targets.shape());
    const T share = eps / static_cast<T>(k);
    for (std::size_t e = 0; e < t.numel(); ++e) t[e] = soft_targets[e] * (1 - eps) + share;
  }
  // The mean divides by N, or by 0 (NaN, as PyTorch's numel / K) for no samples or no classes.
  const T count = static_cast<T>(k ? n : 0);
  return soft_cross_entropy(op, logits, std::move(t), std::move(w), options.reduction, count);
}

template <class T>
Var<T> nll_loss(const Var<T>& log_probs, const std::vector<std::int64_t>& labels,
                const CrossEntropyOptions<T>& options) {
  const char* op = "nll_loss";
  require_matrix(op, "log-probabilities", log_probs.shape(), "[N, K]");
  if (options.label_smoothing != 0.0)
    throw std::invalid_argument(
        "nll_loss: label_smoothing applies to softmax_cross_entropy only (got " +
        std::to_string(options.label_smoothing) + ")");
  const std::size_t k = log_probs.shape()[1];
  const std::size_t n = log_probs.shape()[0];
  Tensor<T> y = label_tensor<T>(op, labels, n, k);
  Tensor<T> w = weight_tensor(op, options.class_weights, k);
  const T* lp = log_probs.value().data();
  Tensor<T> per(Shape{n});
  T total_weight = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = static_cast<std::size_t>(y[i]);
    per[i] = -weight_of(w, c) * lp[i * k + c];
    total_weight += weight_of(w, c);
  }
  const Reduction r = options.reduction;
  return make_op<T>(
      op, {log_probs, Var<T>(std::move(y)), Var<T>(std::move(w))},
      reduce_losses(per, r, total_weight),
      [r, n, k, total_weight](const Tensor<T>& g, Gradients<T>& gr) {
        const Tensor<T>& y = gr.input(1);
        const Tensor<T>& w = gr.input(2);
        T* gx = gr.slot(0).zeroed();
        for (std::size_t i = 0; i < n; ++i) {
          const std::size_t c = static_cast<std::size_t>(y[i]);
          gx[i * k + c] -= sample_scale(g, r, total_weight, i) * weight_of(w, c);
        }
      },
      // glp = −s ⊙ onehot(y), s_n = w_{y_n} · scale: linear in g.
      [r, n, k, total_weight](const Var<T>& g, GraphGradients<T>& gr) {
        const Tensor<T>& y = gr.input(1).value();
        const Tensor<T>& w = gr.input(2).value();
        Tensor<T> c(Shape{n, 1}), onehot = Tensor<T>::zeros(Shape{n, k});
        for (std::size_t i = 0; i < n; ++i) {
          const std::size_t label = static_cast<std::size_t>(y[i]);
          c[i] = -weight_of(w, label);
          onehot[i * k + label] = T(1);
        }
        gr.add(0, sample_scales(g, r, total_weight, n, std::move(c)) * Var<T>(std::move(onehot)));
      });
}

template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets,
                                        Reduction reduction) {
  return elementwise_loss(
      "binary_cross_entropy_with_logits", logits, targets, reduction,
      [](T a, T y) {
        return std::max(a, T(0)) - a * y + std::log1p(detail::exp_vec(-std::abs(a)));
      },
      [](T a, T y) { return detail::sigmoid_vec(a) - y; }, [](T a, T) { return -a; },
      [](const Var<T>& s, const Var<T>& a, const Var<T>& y, GraphGradients<T>& gr) {
        if (gr.needed(0)) gr.add(0, s * (sigmoid(a) - y));
        if (gr.needed(1)) gr.add(1, neg(s * a));
      });
}

namespace {

// v where keep(v[k]) holds (derivative 1), the constant `other` elsewhere (derivative 0), as
// an op: for clamps in graph rules.
template <class T, class Keep>
Var<T> keep_or(const Var<T>& v, Keep keep, T other) {
  Tensor<T> mask(v.shape()), rest(v.shape());
  for (std::size_t k = 0; k < mask.numel(); ++k) {
    const bool kept = keep(v.value()[k]);
    mask[k] = kept ? T(1) : T(0);
    rest[k] = kept ? T(0) : other;
  }
  return detail::scale_by_factors(v, std::move(mask)) + Var<T>(std::move(rest));
}

// max(ln v, −100) (binary_cross_entropy's clamped log) with ops: ln v where that is at least
// −100; elsewhere ln 1 + (−100), constant (derivative 0, and no infinite 1/v on the way).
template <class T>
Var<T> clamped_log_graph(const Var<T>& v) {
  auto unclamped = [](T a) { return std::log(a) >= T(-100); };
  Tensor<T> floor(v.shape());
  for (std::size_t k = 0; k < floor.numel(); ++k)
    floor[k] = unclamped(v.value()[k]) ? T(0) : T(-100);
  return log(keep_or(v, unclamped, T(1))) + Var<T>(std::move(floor));
}

}  // namespace

template <class T>
Var<T> binary_cross_entropy(const Var<T>& probs, const Var<T>& targets, Reduction reduction) {
  const Tensor<T>& p = probs.value();
  for (std::size_t k = 0; k < p.numel(); ++k)
    if (!(p[k] >= 0 && p[k] <= 1))
      throw std::invalid_argument("binary_cross_entropy: input " + std::to_string(p[k]) +
                                  " at element " + std::to_string(k) +
                                  " is not a probability in [0, 1]");
  auto clamped_log = [](T v) { return std::max(std::log(v), T(-100)); };
  return elementwise_loss(
      "binary_cross_entropy", probs, targets, reduction,
      [clamped_log](T p, T y) { return -(y * clamped_log(p) + (1 - y) * clamped_log(1 - p)); },
      [](T p, T y) { return (p - y) / std::max(p * (1 - p), T(1e-12)); },
      [clamped_log](T p, T) { return clamped_log(1 - p) - clamped_log(p); },
      [](const Var<T>& s, const Var<T>& p, const Var<T>& y, GraphGradients<T>& gr) {
        const Var<T> q = rsub_scalar(Scalar<T>(1), p);
        if (gr.needed(0))
          gr.add(0, s * (p - y) /
                        keep_or(
                            p * q, [](T a) { return a >= T(1e-12); }, T(1e-12)));
        if (gr.needed(1)) gr.add(1, s * (clamped_log_graph(q) - clamped_log_graph(p)));
      });
}

template <class T>
Var<T> mse_loss(const Var<T>& prediction, const Var<T>& target, Reduction reduction) {
  return elementwise_loss(
      "mse_loss", prediction, target, reduction, [](T f, T y) { return (f - y) * (f - y); },
      [](T f, T y) { return 2 * (f - y); }, [](T f, T y) { return 2 * (y - f); },
      [](const Var<T>& s, const Var<T>& f, const Var<T>& y, GraphGradients<T>& gr) {
        const Var<T> twice = mul_scalar(s * (f - y), Scalar<T>(2));
        if (gr.needed(0)) gr.add(0, twice);
        if (gr.needed(1)) gr.add(1, neg(twice));
      });
}

template <class T>
Var<T> l1_loss(const Var<T>& input, const Var<T>& target, Reduction reduction) {
  auto sgn = [](T d) { return d > 0 ? T(1) : (d < 0 ? T(-1) : T(0)); };  // 0 at 0 and NaN
  return elementwise_loss(
      "l1_loss", input, target, reduction, [](T x, T y) { return std::abs(x - y); },
      [sgn](T x, T y) { return sgn(x - y); }, [sgn](T x, T y) { return -sgn(x - y); },
      [sgn](const Var<T>& s, const Var<T>& x, const Var<T>& y, GraphGradients<T>& gr) {
        // Constant slopes: linear in s, zero second derivative in x and y.
        if (gr.needed(0))
          gr.add(0, detail::scale_by_factors(
                        s, detail::factors(x, y, [sgn](T a, T b) { return sgn(a - b); })));
        if (gr.needed(1))
          gr.add(1, detail::scale_by_factors(
                        s, detail::factors(x, y, [sgn](T a, T b) { return -sgn(a - b); })));
      });
}

// PyTorch's smooth-L1 slope: d/β inside (−β, β), else ±1 by the sign of d (−1 at d = 0 when
// β = 0); NaN at NaN d. Huber's is δ times smooth-L1's with β = δ. As PyTorch, the target's
// gradient is the slope at t − x (its backward with the arguments swapped), which is −(slope at
// x − t) except at d = 0 with β = 0: −1 for both.
template <class T>
T smooth_l1_slope(T d, T beta) {
  return std::abs(d) >= beta ? (d > 0 ? T(1) : T(-1)) : d / beta;
}

// s ⊙ slope(d) with ops, for d = x − y (or y − x: `swapped`): inside |d| < β the slope is
// (height/β)·d, outside ±height by the sign of d (−height at d = 0), as smooth_l1_slope; a NaN
// d gives NaN (inside, or a NaN factor when β = 0 leaves no inside).
template <class T>
Var<T> piecewise_slope(const Var<T>& s, const Var<T>& d, const Var<T>& x, const Var<T>& y, T beta,
                       T height, bool swapped) {
  auto diff = [swapped](T a, T b) { return swapped ? b - a : a - b; };
  Tensor<T> outside = detail::factors(x, y, [&](T a, T b) {
    const T v = diff(a, b);
    if (std::abs(v) >= beta) return v > 0 ? height : -height;
    return beta > 0 ? T(0) : v;  // β = 0: only a NaN v is not outside
  });
  Var<T> result = detail::scale_by_factors(s, std::move(outside));
  if (beta > 0) {
    Tensor<T> inside =
        detail::factors(x, y, [&](T a, T b) { return std::abs(diff(a, b)) >= beta ? T(0) : T(1); });
    result = result + detail::scale_by_factors(mul_scalar(s * d, Scalar<T>(height / beta)),
                                               std::move(inside));
  }
  return result;
}

template <class T>
Var<T> smooth_l1_loss(const Var<T>& input, const Var<T>& target, Reduction reduction, double beta) {
  if (!(beta >= 0))
    throw std::invalid_argument("smooth_l1_loss does not support negative values for beta (got " +
                                std::to_string(beta) + ")");
  const T b = static_cast<T>(beta);
  return elementwise_loss(
      "smooth_l1_loss", input, target, reduction,
      [b](T x, T y) {
        const T z = std::abs(x - y);
        return z < b ? T(0.5) * z * z / b : z - T(0.5) * b;
      },
      [b](T x, T y) { return smooth_l1_slope(x - y, b); },
      [b](T x, T y) { return smooth_l1_slope(y - x, b); },
      [b](const Var<T>& s, const Var<T>& x, const Var<T>& y, GraphGradients<T>& gr) {
        if (gr.needed(0)) gr.add(0, piecewise_slope(s, x - y, x, y, b, T(1), false));
        if (gr.needed(1)) gr.add(1, piecewise_slope(s, y - x, x, y, b, T(1), true));
      });
}

template <class T>
Var<T> huber_loss(const Var<T>& input, const Var<T>& target, Reduction reduction, double delta) {
  if (!(delta > 0))
    throw std::invalid_argument("huber_loss does not support non-positive values for delta (got " +
                                std::to_string(delta) + ")");
  const T dl = static_cast<T>(delta);
  auto slope = [dl](T d) { return std::abs(d) >= dl ? (d > 0 ? dl : -dl) : d; };
  return elementwise_loss(
      "huber_loss", input, target, reduction,
      [dl](T x, T y) {
        const T z = std::abs(x - y);
        return z < dl ? T(0.5) * z * z : dl * (z - T(0.5) * dl);
      },
      [slope](T x, T y) { return slope(x - y); }, [slope](T x, T y) { return slope(y - x); },
      [dl](const Var<T>& s, const Var<T>& x, const Var<T>& y, GraphGradients<T>& gr) {
        if (gr.needed(0)) gr.add(0, piecewise_slope(s, x - y, x, y, dl, dl, false));
        if (gr.needed(1)) gr.add(1, piecewise_slope(s, y - x, x, y, dl, dl, true));
      });
}

template <class T>
Var<T> kl_div(const Var<T>& input, const Var<T>& target, KlDivReduction reduction,
              bool log_target) {
  // batchmean is the mean over the first dimension's size (the sum for a 0-dimensional input).
  const Shape& shape = input.shape();
  Reduction r = reduction == KlDivReduction::none  ? Reduction::none
                : reduction == KlDivReduction::sum ? Reduction::sum
                                                   : Reduction::mean;
  T count = T(-1);  // every element
  if (reduction == KlDivReduction::batchmean) {
    if (shape.rank() == 0)
      r = Reduction::sum;
    else
      count = static_cast<T>(shape[0]);
  }
  if (log_target)
    return elementwise_loss(
        "kl_div", input, target, r, [](T x, T t) { return std::exp(t) * (t - x); },
        [](T, T t) { return -std::exp(t); },
        [](T x, T t) {
          const T e = std::exp(t);
          return e * (t - x) + e;
        },
        [](const Var<T>& s, const Var<T>& x, const Var<T>& t, GraphGradients<T>& gr) {
          const Var<T> e = exp(t);
          if (gr.needed(0)) gr.add(0, neg(s * e));
          if (gr.needed(1)) gr.add(1, s * e * add_scalar(t - x, Scalar<T>(1)));
        },
        count);
  // t ln t as PyTorch's xlogy(t, t): NaN for NaN t, else 0 at t = 0. In ∂ℓ/∂t, t/t is 1 except
  // at t = 0, where it is NaN as in PyTorch (whose xlogy backward divides t by t).
  return elementwise_loss(
      "kl_div", input, target, r,
      [](T x, T t) { return (t == 0 ? T(0) : t * std::log(t)) - t * x; }, [](T, T t) { return -t; },
      [](T x, T t) { return std::log(t) + t / t - x; },
      [](const Var<T>& s, const Var<T>& x, const Var<T>& t, GraphGradients<T>& gr) {
        if (gr.needed(0)) gr.add(0, neg(s * t));
        if (gr.needed(1)) gr.add(1, s * (log(t) + t / t - x));
      },
      count);
}

#define TAPEGRAD_INSTANTIATE(T)                                                              \
  template Var<T> softmax_cross_entropy(const Var<T>&, const std::vector<std::int64_t>&,     \
                                        const CrossEntropyOptions<T>&);                      \
  template Var<T> softmax_cross_entropy(const Var<T>&, const Tensor<T>&,                     \
                                        const CrossEntropyOptions<T>&);                      \
  template Var<T> nll_loss(const Var<T>&, const std::vector<std::int64_t>&,                  \
                           const CrossEntropyOptions<T>&);                                   \
  template Var<T> binary_cross_entropy_with_logits(const Var<T>&, const Var<T>&, Reduction); \
  template Var<T> binary_cross_entropy(const Var<T>&, const Var<T>&, Reduction);             \
  template Var<T> mse_loss(const Var<T>&, const Var<T>&, Reduction);                         \
  template Var<T> l1_loss(const Var<T>&, const Var<T>&, Reduction);                          \
  template Var<T> smooth_l1_loss(const Var<T>&, const Var<T>&, Reduction, double);           \
  template Var<T> huber_loss(const Var<T>&, const Var<T>&, Reduction, double);               \
  template Var<T> kl_div(const Var<T>&, const Var<T>&, KlDivReduction, bool);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
