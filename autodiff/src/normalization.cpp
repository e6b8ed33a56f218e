#include "tapegrad/autodiff/normalization.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "parallel.hpp"
#include "tapegrad/autodiff/binary.hpp"
#include "tapegrad/autodiff/elementwise.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/reduce.hpp"
#include "tapegrad/autodiff/reshape.hpp"

namespace tapegrad {
namespace {

// Where each op's optional weight or bias is missing, an untracked empty tensor takes its place,
// so the inputs keep their positions; value_or_one reads it as γ = 1.
template <class T>
Var<T> or_placeholder(const Var<T>& v) {
  return v.defined() ? v : Var<T>(Tensor<T>(Shape{0}));
}

template <class T>
T value_or_one(const Tensor<T>& w, std::size_t i) {
  return w.numel() ? w[i] : T(1);
}

template <class T>
T value_or_zero(const Tensor<T>& b, std::size_t i) {
  return b.numel() ? b[i] : T(0);
}

// The gradient slot of input i when it wants a gradient (an empty one otherwise). A rule takes
// each slot once: a second g.slot(i) would add to the values the first one put.
template <class T>
GradSlot<T> slot_if(Gradients<T>& g, std::size_t i, bool needed) {
  return needed ? g.slot(i) : GradSlot<T>(nullptr, 0, false);
}

void require_shape(const char* op, const char* what, const Shape& got, const Shape& expected,
                   const Shape& input, const char* why) {
  if (got != expected)
    throw ShapeError(std::string(op) + ": " + what + " of shape " + got.to_string() +
                     " for input of shape " + input.to_string() + " (expected " +
                     expected.to_string() + ", " + why + ")");
}

// x [N, C, *] as channels: element (n, c, i) sits at (n·C + c)·inner + i.
struct Channels {
  std::size_t batch, channels, inner;
  std::size_t at(std::size_t n, std::size_t c, std::size_t i) const {
    return (n * channels + c) * inner + i;
  }
  std::size_t per_channel() const { return batch * inner; }

  // For each f given, Σ f(k) over channel c's elements k, all in one pass, in double, in an
  // order fixed by the shape: the channel is a [batch, inner] array (row n the run at (n, c));
  // each position i gets a partial sum over the rows in turn (positions in blocks of up to 64),
  // and the partial sums are then added in order of i. The loop over a row's positions runs in
  // vector lanes with no carried chain, several times faster than one chain of additions, and
  // needs no per-run tail.
  static constexpr std::size_t block = 64;
  template <class... F>
  std::array<double, sizeof...(F)> sums_of(std::size_t c, const F&... f) const {
    std::array<double, sizeof...(F)> total{};
    for (std::size_t i0 = 0; i0 < inner; i0 += block) {
      const std::size_t width = std::min(block, inner - i0);
      double part[sizeof...(F)][block];
      for (double* p : part) std::fill_n(p, width, 0.0);
      for (std::size_t n = 0; n < batch; ++n)
        add_row(part, at(n, c, i0), width, std::index_sequence_for<F...>(), f...);
      for (std::size_t j = 0; j < sizeof...(F); ++j)
        for (std::size_t i = 0; i < width; ++i) total[j] += part[j][i];
    }
    return total;
  }
  template <class F>
  double sum(std::size_t c, const F& f) const {
    return sums_of(c, f)[0];
  }
  // part[j][i] += f_j(base + i) for i in [0, width), every f_j in one loop.
  template <std::size_t... J, class... F>
  static void add_row(double (*part)[block], std::size_t base, std::size_t width,
                      std::index_sequence<J...>, const F&... f) {
    TAPEGRAD_VECTORIZE
    for (std::size_t i = 0; i < width; ++i) ((part[J][i] += f(base + i)), ...);
  }

  // Calls f(begin, end, c_of) for runs [begin, end) of consecutive elements in memory order,
  // c_of(k) giving element k's channel: one run per row of [N, C], one per (sample, channel)
  // otherwise. Runs are long, so f's loop over a run vectorises.
  template <class F>
  void runs(F&& f) const {
    for (std::size_t n = 0; n < batch; ++n) {
      if (inner == 1) {
        const std::size_t base = n * channels;
        f(base, base + channels, [base](std::size_t k) { return k - base; });
        continue;
      }
      for (std::size_t c = 0; c < channels; ++c) {
        const std::size_t base = at(n, c, 0);
        f(base, base + inner, [c](std::size_t) { return c; });
      }
    }
  }
  // With [N, C, *] (inner > 1): calls f(c) for every channel, ranges of channels split among
  // tapegrad's threads for a pass that moves `values` values in all. Each channel's sums keep
  // their order (sum(c)), so the results do not depend on the thread count.
  template <class F>
  void per_channel(std::size_t values, F&& f) const {
    detail::parallel_for(channels, detail::flop_per_value * static_cast<double>(values),
                         [&](std::size_t begin, std::size_t end, std::size_t) {
                           for (std::size_t c = begin; c < end; ++c) f(c);
                         });
  }
  // Calls f(k) for the elements k of channel c, sample by sample in memory order.
  template <class F>
  void channel_each(std::size_t c, F&& f) const {
    for (std::size_t n = 0; n < batch; ++n) {
      const std::size_t base = at(n, c, 0);
      for (std::size_t k = base; k < base + inner; ++k) f(k);
    }
  }

  // Calls f(k, c) for every element k (of channel c) in memory order.
  template <class F>
  void each(F&& f) const {
    runs([&](std::size_t begin, std::size_t end, auto c_of) {
      for (std::size_t k = begin; k < end; ++k) f(k, c_of(k));
    });
  }

  // out[c] = Σ f(k, c) over channel c's elements, in double, in an order fixed by the shape:
  // with one value per sample and channel ([N, C]) the rows are added in turn, every channel at
  // once (memory order); otherwise sum(c) over each channel's contiguous runs.
  template <class F>
  void sums(F&& f, double* out) const {
    if (inner == 1) {
      std::fill(out, out + channels, 0.0);
      for (std::size_t n = 0; n < batch; ++n)
        for (std::size_t c = 0; c < channels; ++c) out[c] += f(n * channels + c, c);
      return;
    }
    for (std::size_t c = 0; c < channels; ++c)
      out[c] = sum(c, [&](std::size_t k) { return f(k, c); });
  }
};

template <class T>
Channels channels_of(const char* op, const Var<T>& x, const Var<T>& weight, const Var<T>& bias) {
  const Shape& s = x.shape();
  if (s.rank() < 2)
    throw ShapeError(std::string(op) +
                     ": input must have shape [N, C, *] (rank 2 or more), got shape " +
                     s.to_string());
  std::size_t inner = 1;
  for (std::size_t d = 2; d < s.rank(); ++d) inner *= s[d];
  const Shape per_channel{s[1]};
  if (weight.defined())
    require_shape(op, "weight", weight.shape(), per_channel, s, "one per channel");
  if (bias.defined()) require_shape(op, "bias", bias.shape(), per_channel, s, "one per channel");
  return {s[0], s[1], inner};
}

// The op behind batch_norm and batch_norm_eval, given x̂ (x's shape) and inv [C], the inverse
// standard deviation 1/σ̂_c each channel was divided by. y = γ_c x̂ + β_c.
//   gγ_c = Σ gy ⊙ x̂,  gβ_c = Σ gy  (sums over the channel's m elements);
//   gx = γ_c inv_c (gy − mean(gy) − x̂ · mean(gy ⊙ x̂)) in training, where μ and σ² depend on x,
//   gx = γ_c inv_c gy in evaluation, where they are constants (derivations.md#batch-norm).
template <class T>
Var<T> batch_norm_op(const char* op, const Channels ch, const Var<T>& x, const Var<T>& weight,
                     const Var<T>& bias, Tensor<T> xhat, Tensor<T> inv, bool training, double eps) {
  const Var<T> w = or_placeholder(weight), b = or_placeholder(bias);
  Tensor<T> y(x.shape());
  Tensor<T> gamma(Shape{ch.channels}), beta(Shape{ch.channels});
  for (std::size_t c = 0; c < ch.channels; ++c) {
    gamma[c] = value_or_one(w.value(), c);
    beta[c] = value_or_zero(b.value(), c);
  }
  if (ch.inner == 1)
    ch.each([&](std::size_t k, std::size_t c) { y[k] = gamma[c] * xhat[k] + beta[c]; });
  else
    ch.per_channel(2 * y.numel(), [&](std::size_t c) {
      ch.channel_each(c, [&](std::size_t k) { y[k] = gamma[c] * xhat[k] + beta[c]; });
    });
  auto backward = [ch, training](const Tensor<T>& gy, Gradients<T>& g) {
    const Tensor<T>& gamma = g.input(1);
    const T* xh = g.input(3).data();
    const T* inv = g.input(4).data();
    const double m = static_cast<double>(ch.per_channel());
    const bool need_x = g.needed(0), need_w = g.needed(1), need_b = g.needed(2);
    const GradSlot<T> sx = slot_if(g, 0, need_x), sw = slot_if(g, 1, need_w),
                      sb = slot_if(g, 2, need_b);
    // Per channel: Σ gy and Σ gy x̂ in double; then, in T, the scale γ_c/σ̂_c and the two means.
    if (ch.inner > 1) {  // each channel on its own, channels split among threads
      const T* gv = gy.data();
      ch.per_channel(4 * gy.numel(), [&](std::size_t c) {
        const auto [sum_g, sum_gx] = ch.sums_of(
            c, [&](std::size_t k) { return static_cast<double>(gv[k]); },
            [&](std::size_t k) { return static_cast<double>(gv[k]) * xh[k]; });
        if (need_w) sw.put(c, static_cast<T>(sum_gx));
        if (need_b) sb.put(c, static_cast<T>(sum_g));
        if (!need_x) return;
        const T scale = static_cast<T>(static_cast<double>(value_or_one(gamma, c)) * inv[c]);
        const T mean_g = static_cast<T>(training ? sum_g / m : 0);
        const T mean_gx = static_cast<T>(training ? sum_gx / m : 0);
        for (std::size_t n = 0; n < ch.batch; ++n) {
          const std::size_t base = ch.at(n, c, 0);
          sx.put_range(base, base + ch.inner,
                       [&](std::size_t k) { return scale * (gv[k] - mean_g - xh[k] * mean_gx); });
        }
      });
      return;
    }
    Tensor<double> sum_g(Shape{ch.channels}), sum_gx(Shape{ch.channels});
    Tensor<T> scale(Shape{ch.channels}), mean_g(Shape{ch.channels}), mean_gx(Shape{ch.channels});
    ch.sums([&](std::size_t k, std::size_t) { return static_cast<double>(gy[k]); }, sum_g.data());
    ch.sums([&](std::size_t k, std::size_t) { return static_cast<double>(gy[k]) * xh[k]; },
            sum_gx.data());
    for (std::size_t c = 0; c < ch.channels; ++c) {
      if (need_w) sw.put(c, static_cast<T>(sum_gx[c]));
      if (need_b) sb.put(c, static_cast<T>(sum_g[c]));
      scale[c] = static_cast<T>(static_cast<double>(value_or_one(gamma, c)) * inv[c]);
      mean_g[c] = static_cast<T>(training ? sum_g[c] / m : 0);
      mean_gx[c] = static_cast<T>(training ? sum_gx[c] / m : 0);
    }
    if (!need_x) return;
    ch.runs([&](std::size_t begin, std::size_t end, auto c_of) {
      sx.put_range(begin, end, [&](std::size_t k) {
        const std::size_t c = c_of(k);
        return scale[c] * (gy[k] - mean_g[c] - xh[k] * mean_gx[c]);
      });
    });
  };
  // The same with tapegrad's ops, on x as [N, C, inner] with per-channel statistics of shape
  // [1, C, 1]; in training x̂ and 1/σ̂ are recomputed from x with ops, so that their
  // dependence on x is differentiated too.
  auto graph = [ch, training, eps](const Var<T>& gy, GraphGradients<T>& g) {
    const Shape cube{ch.batch, ch.channels, ch.inner}, column{1, ch.channels, 1};
    const std::vector<long> axes{0, 2};
    const Var<T> gy3 = reshape(gy, cube);
    Var<T> xhat, inv;
    if (training) {
      const Var<T> x3 = reshape(g.input(0), cube);
      const Var<T> d = x3 - mean(x3, axes, true);
      inv = rdiv_scalar(Scalar<T>(1),
                        sqrt(add_scalar(mean(d * d, axes, true), static_cast<Scalar<T>>(eps))));
      xhat = d * inv;
    } else {
      // x̂ = (x − running mean)·inv, linear in x: x·inv plus the constant x̂ − x·inv.
      inv = Var<T>(reshape(g.input(4), column).value());
      const Var<T> x3 = reshape(g.input(0), cube);
      const Var<T> offset((reshape(g.input(3), cube) - Var<T>(x3.value()) * inv).value());
      xhat = x3 * inv + offset;
    }
    if (g.needed(0)) {
      const bool affine = g.input(1).value().numel() > 0;
      const Var<T> scale = affine ? reshape(g.input(1), column) * inv : inv;
      Var<T> inner = gy3;
      if (training) inner = gy3 - mean(gy3, axes, true) - xhat * mean(gy3 * xhat, axes, true);
      g.add(0, reshape(scale * inner, g.input(0).shape()));
    }
    if (g.needed(1)) g.add(1, sum(gy3 * xhat, axes));
    if (g.needed(2)) g.add(2, sum(gy3, axes));
  };
  return make_op<T>(op, {x, w, b, Var<T>(std::move(xhat)), Var<T>(std::move(inv))}, std::move(y),
                    std::move(backward), std::move(graph));
}

}  // namespace

template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, double eps,
                  Tensor<T>* batch_mean, Tensor<T>* batch_var) {
  const char* op = "batch_norm";
  const Channels ch = channels_of(op, x, weight, bias);
  const std::size_t m = ch.per_channel();
  if (m == 1)
    throw std::invalid_argument(
        std::string(op) +
        ": Expected more than 1 value per channel when training, got input of shape " +
        x.shape().to_string());
  const Tensor<T>& xv = x.value();
  Tensor<T> xhat(x.shape());
  Tensor<T> inv = Tensor<T>::zeros(Shape{ch.channels});
  Tensor<T> mean(Shape{ch.channels}), var(Shape{ch.channels});
  if (m > 0 && ch.inner > 1) {
    // Each channel on its own, channels split among threads: μ, then Σ (x − μ)², then 1/σ̂, all
    // in double, then x̂.
    const T* xs = xv.data();
    ch.per_channel(4 * xv.numel(), [&](std::size_t c) {
      const double mu = ch.sum(c, [&](std::size_t k) { return static_cast<double>(xs[k]); }) /
                        static_cast<double>(m);
      const double r = ch.sum(c, [&](std::size_t k) {
        const double d = xs[k] - mu;
        return d * d;
      });
      mean[c] = static_cast<T>(mu);
      var[c] = static_cast<T>(r / static_cast<double>(m - 1));
      const double rc = 1 / std::sqrt(r / static_cast<double>(m) + eps);
      inv[c] = static_cast<T>(rc);
      ch.channel_each(c, [&](std::size_t k) { xhat[k] = static_cast<T>((xs[k] - mu) * rc); });
    });
  } else if (m > 0) {
    // Per channel: μ, then Σ (x − μ)², then 1/σ̂, all in double.
    Tensor<double> mu(Shape{ch.channels}), r(Shape{ch.channels});
    ch.sums([&](std::size_t k, std::size_t) { return static_cast<double>(xv[k]); }, mu.data());
    for (double& v : mu) v /= static_cast<double>(m);
    ch.sums(
        [&](std::size_t k, std::size_t c) {
          const double d = xv[k] - mu[c];
          return d * d;
        },
        r.data());
    for (std::size_t c = 0; c < ch.channels; ++c) {
      mean[c] = static_cast<T>(mu[c]);
      var[c] = static_cast<T>(r[c] / static_cast<double>(m - 1));
      r[c] = 1 / std::sqrt(r[c] / static_cast<double>(m) + eps);
      inv[c] = static_cast<T>(r[c]);
    }
    // x̂ from the double statistics, run by run.
    ch.runs([&](std::size_t begin, std::size_t end, auto c_of) {
      for (std::size_t k = begin; k < end; ++k) {
        const std::size_t c = c_of(k);
        xhat[k] = static_cast<T>((xv[k] - mu[c]) * r[c]);
      }
    });
  }
  if (batch_mean) *batch_mean = m > 0 ? std::move(mean) : Tensor<T>();
  if (batch_var) *batch_var = m > 0 ? std::move(var) : Tensor<T>();
  return batch_norm_op(op, ch, x, weight, bias, std::move(xhat), std::move(inv), true, eps);
}

template <class T>
Var<T> batch_norm_eval(const Var<T>& x, const Tensor<T>& running_mean, const Tensor<T>& running_var,
                       const Var<T>& weight, const Var<T>& bias, double eps) {
  const char* op = "batch_norm_eval";
  const Channels ch = channels_of(op, x, weight, bias);
  const Shape per_channel{ch.channels};
  require_shape(op, "running mean", running_mean.shape(), per_channel, x.shape(),
                "one per channel");
  require_shape(op, "running variance", running_var.shape(), per_channel, x.shape(),
                "one per channel");
  const Tensor<T>& xv = x.value();
  Tensor<T> xhat(x.shape());
  Tensor<T> inv(per_channel);
  Tensor<double> r(per_channel);
  for (std::size_t c = 0; c < ch.channels; ++c) {
    r[c] = 1 / std::sqrt(static_cast<double>(running_var[c]) + eps);
    inv[c] = static_cast<T>(r[c]);
  }
  ch.each([&](std::size_t k, std::size_t c) {
    xhat[k] = static_cast<T>((static_cast<double>(xv[k]) - running_mean[c]) * r[c]);
  });
  return batch_norm_op(op, ch, x, weight, bias, std::move(xhat), std::move(inv), false, eps);
}

// x [rows, D] (the leading dimensions flattened, D = normalized_shape's element count), x̂ and
// inv [rows] = 1/σ̂_r saved as untracked inputs. y = x̂ ⊙ γ + β. With h = gy ⊙ γ:
//   gx = inv_r (h − mean(h) − x̂ · mean(h ⊙ x̂)) over each row,
//   gγ = Σ_r gy ⊙ x̂,  gβ = Σ_r gy  (derivations.md#layer-norm).
template <class T>
Var<T> layer_norm(const Var<T>& x, const Shape& normalized_shape, const Var<T>& weight,
                  const Var<T>& bias, double eps) {
  const char* op = "layer_norm";
  const Shape& s = x.shape();
  const std::size_t k = normalized_shape.rank();
  if (k == 0) throw ShapeError(std::string(op) + ": normalized_shape [] must have rank 1 or more");
  bool trailing = s.rank() >= k;
  for (std::size_t d = 0; trailing && d < k; ++d)
    trailing = s[s.rank() - k + d] == normalized_shape[d];
  if (!trailing)
    throw ShapeError(std::string(op) + ": normalized_shape " + normalized_shape.to_string() +
                     " is not the trailing dimensions of input of shape " + s.to_string());
  if (weight.defined())
    require_shape(op, "weight", weight.shape(), normalized_shape, s, "normalized_shape");
  if (bias.defined())
    require_shape(op, "bias", bias.shape(), normalized_shape, s, "normalized_shape");
  const std::size_t width = normalized_shape.numel();
  std::size_t rows = 1;
  for (std::size_t d = 0; d + k < s.rank(); ++d) rows *= s[d];

  const Tensor<T>& xv = x.value();
  Tensor<T> xhat(s);
  Tensor<T> inv = Tensor<T>::zeros(Shape{rows});
  for (std::size_t r = 0; r < rows && width > 0; ++r) {
    const T* row = xv.data() + r * width;
    double sum = 0;
    for (std::size_t j = 0; j < width; ++j) sum += row[j];
    const double mu = sum / static_cast<double>(width);
    double squares = 0;
    for (std::size_t j = 0; j < width; ++j) squares += (row[j] - mu) * (row[j] - mu);
    const double rs = 1 / std::sqrt(squares / static_cast<double>(width) + eps);
    for (std::size_t j = 0; j < width; ++j)
      xhat[r * width + j] = static_cast<T>((row[j] - mu) * rs);
    inv[r] = static_cast<T>(rs);
  }
  const Var<T> w = or_placeholder(weight), b = or_placeholder(bias);
  Tensor<T> y(s);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < width; ++j) {
      const std::size_t e = r * width + j;
      y[e] = value_or_one(w.value(), j) * xhat[e] + value_or_zero(b.value(), j);
    }
  auto backward = [rows, width](const Tensor<T>& gy, Gradients<T>& g) {
    const Tensor<T>& gamma = g.input(1);
    const T* xh = g.input(3).data();
    const T* inv = g.input(4).data();
    const bool need_x = g.needed(0), need_w = g.needed(1), need_b = g.needed(2);
    const GradSlot<T> sx = slot_if(g, 0, need_x), sw = slot_if(g, 1, need_w),
                      sb = slot_if(g, 2, need_b);
    for (std::size_t r = 0; need_x && r < rows; ++r) {
      const std::size_t row = r * width;
      double sum_h = 0, sum_hx = 0;
      for (std::size_t j = 0; j < width; ++j) {
        const double h = static_cast<double>(gy[row + j]) * value_or_one(gamma, j);
        sum_h += h;
        sum_hx += h * xh[row + j];
      }
      const double mean_h = sum_h / width, mean_hx = sum_hx / width;
      for (std::size_t j = 0; j < width; ++j) {
        const double h = static_cast<double>(gy[row + j]) * value_or_one(gamma, j);
        sx.put(row + j, static_cast<T>(inv[r] * (h - mean_h - xh[row + j] * mean_hx)));
      }
    }
    for (std::size_t j = 0; (need_w || need_b) && j < width; ++j) {
      double sum_g = 0, sum_gx = 0;
      for (std::size_t r = 0; r < rows; ++r) {
        sum_g += gy[r * width + j];
        sum_gx += static_cast<double>(gy[r * width + j]) * xh[r * width + j];
      }
      if (need_w) sw.put(j, static_cast<T>(sum_gx));
      if (need_b) sb.put(j, static_cast<T>(sum_g));
    }
  };
  // The same with tapegrad's ops on x as [rows, D], x̂ and 1/σ̂ recomputed from x with ops.
  auto graph = [rows, width, k, eps](const Var<T>& gy, GraphGradients<T>& g) {
    const Shape& xs = g.input(0).shape();
    const Shape matrix{rows, width}, normalized(xs.begin() + (xs.rank() - k), xs.end());
    const Var<T> x2 = reshape(g.input(0), matrix), gy2 = reshape(gy, matrix);
    const Var<T> d = x2 - mean(x2, {1}, true);
    const Var<T> inv = rdiv_scalar(
        Scalar<T>(1), sqrt(add_scalar(mean(d * d, {1}, true), static_cast<Scalar<T>>(eps))));
    const Var<T> xhat = d * inv;
    if (g.needed(0)) {
      const bool affine = g.input(1).value().numel() > 0;
      const Var<T> h = affine ? gy2 * reshape(g.input(1), Shape{1, width}) : gy2;
      g.add(0, reshape(inv * (h - mean(h, {1}, true) - xhat * mean(h * xhat, {1}, true)), xs));
    }
    if (g.needed(1)) g.add(1, reshape(sum(gy2 * xhat, {0}), normalized));
    if (g.needed(2)) g.add(2, reshape(sum(gy2, {0}), normalized));
  };
  return make_op<T>(op, {x, w, b, Var<T>(std::move(xhat)), Var<T>(std::move(inv))}, std::move(y),
                    std::move(backward), std::move(graph));
}

#define TAPEGRAD_INSTANTIATE(T)                                                               \
  template Var<T> batch_norm(const Var<T>&, const Var<T>&, const Var<T>&, double, Tensor<T>*, \
                             Tensor<T>*);                                                     \
  template Var<T> batch_norm_eval(const Var<T>&, const Tensor<T>&, const Tensor<T>&,          \
                                  const Var<T>&, const Var<T>&, double);                      \
  template Var<T> layer_norm(const Var<T>&, const Shape&, const Var<T>&, const Var<T>&, double);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
