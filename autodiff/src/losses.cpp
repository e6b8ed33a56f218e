#include "tapegrad/autodiff/losses.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "softmax_rows.hpp"
#include "tapegrad/autodiff/op.hpp"
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

// An elementwise loss ℓ(x, y) with ∂ℓ/∂x and ∂ℓ/∂y, reduced over all elements (mean divides by
// the element count).
template <class T, class Loss, class DX, class DY>
Var<T> elementwise_loss(const char* name, const Var<T>& x, const Var<T>& y, Reduction r, Loss loss,
                        DX dx, DY dy) {
  require_same_shape(name, x.shape(), y.shape());
  const Tensor<T>& xv = x.value();
  const Tensor<T>& yv = y.value();
  Tensor<T> per(xv.shape());
  for (std::size_t k = 0; k < per.numel(); ++k) per[k] = loss(xv[k], yv[k]);
  const T count = static_cast<T>(per.numel());  // 0 for empty inputs: the mean is NaN, as PyTorch
  return make_op<T>(name, {x, y}, reduce_losses(per, r, count),
                    [r, count, dx, dy](const Tensor<T>& g, Gradients<T>& gr) {
                      const T* xs = gr.input(0).data();
                      const T* ys = gr.input(1).data();
                      if (gr.needed(0))
                        gr.accumulate(0, [&](std::size_t k) {
                          return sample_scale(g, r, count, k) * dx(xs[k], ys[k]);
                        });
                      if (gr.needed(1))
                        gr.accumulate(1, [&](std::size_t k) {
                          return sample_scale(g, r, count, k) * dy(xs[k], ys[k]);
                        });
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
  return make_op<T>(op,
                    {logits, Var<T>(std::move(y)), Var<T>(std::move(probs)), Var<T>(std::move(w))},
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
  Tensor<T> w = weight_tensor(op, options.class_weights, k);
  const T* a = logits.value().data();
  const T* t = soft_targets.data();
  Tensor<T> probs(Shape{n, k});
  Tensor<T> per(Shape{n});  // logsumexp of each row, then each sample's loss
  detail::softmax_rows(a, n, k, probs.data(), per.data());
  for (std::size_t i = 0; i < n; ++i) {
    T loss = 0;
    for (std::size_t j = 0; j < k; ++j)
      loss += weight_of(w, j) * t[i * k + j] * (per[i] - a[i * k + j]);
    per[i] = loss;
  }
  const Reduction r = options.reduction;
  // The mean divides by N, or by 0 (NaN, as PyTorch's numel / K) for no samples or no classes.
  const T count = static_cast<T>(k ? n : 0);
  return make_op<T>(
      op, {logits, Var<T>(soft_targets), Var<T>(std::move(probs)), Var<T>(std::move(w))},
      reduce_losses(per, r, count), [r, n, k, count](const Tensor<T>& g, Gradients<T>& gr) {
        const T* t = gr.input(1).data();
        const T* p = gr.input(2).data();
        const Tensor<T>& w = gr.input(3);
        const GradSlot<T> slot = gr.slot(0);
        for (std::size_t i = 0; i < n; ++i) {
          const T scale = sample_scale(g, r, count, i);
          T mass = 0;  // Σ_j w_j t_ij
          for (std::size_t j = 0; j < k; ++j) mass += weight_of(w, j) * t[i * k + j];
          for (std::size_t j = 0; j < k; ++j) {
            const std::size_t e = i * k + j;
            const T v = scale * (p[e] * mass - weight_of(w, j) * t[e]);
            slot.put(e, v);
          }
        }
      });
}

template <class T>
Var<T> nll_loss(const Var<T>& log_probs, const std::vector<std::int64_t>& labels,
                const CrossEntropyOptions<T>& options) {
  const char* op = "nll_loss";
  require_matrix(op, "log-probabilities", log_probs.shape(), "[N, K]");
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
  return make_op<T>(op, {log_probs, Var<T>(std::move(y)), Var<T>(std::move(w))},
                    reduce_losses(per, r, total_weight),
                    [r, n, k, total_weight](const Tensor<T>& g, Gradients<T>& gr) {
                      const Tensor<T>& y = gr.input(1);
                      const Tensor<T>& w = gr.input(2);
                      T* gx = gr.slot(0).zeroed();
                      for (std::size_t i = 0; i < n; ++i) {
                        const std::size_t c = static_cast<std::size_t>(y[i]);
                        gx[i * k + c] -= sample_scale(g, r, total_weight, i) * weight_of(w, c);
                      }
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
      [](T a, T y) { return detail::sigmoid_vec(a) - y; }, [](T a, T) { return -a; });
}

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
      [clamped_log](T p, T) { return clamped_log(1 - p) - clamped_log(p); });
}

template <class T>
Var<T> mse_loss(const Var<T>& prediction, const Var<T>& target, Reduction reduction) {
  return elementwise_loss(
      "mse_loss", prediction, target, reduction, [](T f, T y) { return (f - y) * (f - y); },
      [](T f, T y) { return 2 * (f - y); }, [](T f, T y) { return 2 * (y - f); });
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
  template Var<T> mse_loss(const Var<T>&, const Var<T>&, Reduction);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
