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

  // With [N, C, *] (inner other than 1) the passes run over groups of whole channels, as many as
  // fit in `span` positions (a position: an index into one sample's values of those channels), or
  // over one channel in blocks of `span` positions when it has more. A group's values in one sample
  // are contiguous, so every loop runs over long rows whatever the length of a channel, and
  // per-channel constants come from arrays of one value per position (fill_channel).
  static constexpr std::size_t span = 2048;
  std::size_t group_channels() const {
    return inner == 0 ? channels : std::max<std::size_t>(1, span / inner);
  }
  std::size_t group_span(std::size_t cs, std::size_t ce) const {
    return std::min(span, (ce - cs) * inner);
  }
  // Calls f(offset, len) for each block of the group [cs, ce): its positions [offset, offset +
  // len), sample n's values at at(n, cs, 0) + offset on.
  template <class F>
  void blocks(std::size_t cs, std::size_t ce, F&& f) const {
    const std::size_t size = (ce - cs) * inner;
    for (std::size_t offset = 0; offset < size; offset += span)
      f(offset, std::min(span, size - offset));
  }
  // out[p] = value at the positions p of channel c in a block of the group [cs, ce) (every
  // block's: a group of several channels has one block, a group of one channel one value).
  template <class U>
  void fill_channel(std::size_t cs, std::size_t ce, std::size_t c, U value, U* out) const {
    const std::size_t p0 = (c - cs) * inner;
    std::fill(out + p0, out + std::min(p0 + inner, group_span(cs, ce)), value);
  }
  // For each f given, Σ f(k, p) over each channel c of the group [cs, ce) (k its elements, p
  // their positions in the block), all in one pass, in double, passed as done(c, sums). The
  // order is fixed by the shape: each position gets a partial sum over the samples in turn
  // (a loop over the block's positions in vector lanes, no carried chain), and a channel's
  // partial sums are then added in order of position.
  template <class Done, class... F>
  void group_sums(std::size_t cs, std::size_t ce, Done&& done, const F&... f) const {
    constexpr std::size_t count = sizeof...(F);
    std::array<double, count> total{};
    if (inner == 0)  // channels of no elements: sums of nothing
      for (std::size_t c = cs; c < ce; ++c) done(c, total);
    std::size_t c = cs, i = 0;  // the channel and index of the next position
    blocks(cs, ce, [&](std::size_t offset, std::size_t len) {
      double part[count][span];
      for (auto& row : part) std::fill_n(row, len, 0.0);
      for (std::size_t n = 0; n < batch; ++n)
        add_row(part, at(n, cs, 0) + offset, len, std::index_sequence_for<F...>(), f...);
      for (std::size_t p = 0; p < len; ++p) {
        for (std::size_t j = 0; j < count; ++j) total[j] += part[j][p];
        if (++i == inner) {
          done(c++, total);
          total = {};
          i = 0;
        }
      }
    });
  }
  // part[j][p] += f_j(base + p, p) for p in [0, len), every f_j in one loop.
  template <std::size_t... J, class... F>
  static void add_row(double (*part)[span], std::size_t base, std::size_t len,
                      std::index_sequence<J...>, const F&... f) {
    TAPEGRAD_VECTORIZE
    for (std::size_t p = 0; p < len; ++p) ((part[J][p] += f(base + p, p)), ...);
  }
  // Calls f(k, p) for the elements k of the group [cs, ce) (p: k's position in its block),
  // sample by sample in memory order.
  template <class F>
  void group_each(std::size_t cs, std::size_t ce, F&& f) const {
    for (std::size_t n = 0; n < batch; ++n)
      blocks(cs, ce, [&](std::size_t offset, std::size_t len) {
        const std::size_t base = at(n, cs, 0) + offset;
        TAPEGRAD_VECTORIZE
        for (std::size_t p = 0; p < len; ++p) f(base + p, p);
      });
  }
  // Calls f(cs, ce) for every group: the channels split among tapegrad's threads for a pass
  // that moves `values` values in all, then each thread's channels in groups. Which channels
  // share a group does not change the order of any channel's sums (group_sums), so the results
  // do not depend on the thread count.
  template <class F>
  void per_group(std::size_t values, F&& f) const {
    const std::size_t per = group_channels();
    detail::parallel_for(channels, detail::flop_per_value * static_cast<double>(values),
                         [&](std::size_t begin, std::size_t end, std::size_t) {
                           for (std::size_t cs = begin; cs < end; cs += per)
                             f(cs, std::min(end, cs + per));
                         });
  }

  // Calls f(begin, end, c_of) for runs [begin, end) of consecutive elements in memory order,
  // c_of(k) giving element k's channel: one run per row of [N, C], one per (sample, channel)
  // otherwise (as long as a channel: the training passes on [N, C, *] use groups instead).
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
  // Calls f(k, c) for every element k (of channel c) in memory order.
  template <class F>
  void each(F&& f) const {
    runs([&](std::size_t begin, std::size_t end, auto c_of) {
      for (std::size_t k = begin; k < end; ++k) f(k, c_of(k));
    });
  }

  // With [N, C] (inner 1): out[c] = Σ f(k, c) over channel c's elements, in double, the rows
  // added in turn, every channel at once (memory order).
  template <class F>
  void sums(F&& f, double* out) const {
    std::fill(out, out + channels, 0.0);
    for (std::size_t n = 0; n < batch; ++n)
      for (std::size_t c = 0; c < channels; ++c) out[c] += f(n * channels + c, c);
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
    ch.per_group(2 * y.numel(), [&](std::size_t cs, std::size_t ce) {
      T gamma_at[Channels::span], beta_at[Channels::span];
      for (std::size_t c = cs; c < ce; ++c) {
        ch.fill_channel(cs, ce, c, gamma[c], gamma_at);
        ch.fill_channel(cs, ce, c, beta[c], beta_at);
      }
      T* yv = y.data();
      const T* xh = xhat.data();
      ch.group_each(
          cs, ce, [&](std::size_t k, std::size_t p) { yv[k] = gamma_at[p] * xh[k] + beta_at[p]; });
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
    if (ch.inner != 1) {  // [N, C, *]: by groups of channels, split among threads
      const T* gv = gy.data();
      ch.per_group(4 * gy.numel(), [&](std::size_t cs, std::size_t ce) {
        T scale[Channels::span], mean_g[Channels::span], mean_gx[Channels::span];
        ch.group_sums(
            cs, ce,
            [&](std::size_t c, const std::array<double, 2>& sums) {
              const auto [sum_g, sum_gx] = sums;
              if (need_w) sw.put(c, static_cast<T>(sum_gx));
              if (need_b) sb.put(c, static_cast<T>(sum_g));
              ch.fill_channel(cs, ce, c,
                              static_cast<T>(static_cast<double>(value_or_one(gamma, c)) * inv[c]),
                              scale);
              ch.fill_channel(cs, ce, c, static_cast<T>(training ? sum_g / m : 0), mean_g);
              ch.fill_channel(cs, ce, c, static_cast<T>(training ? sum_gx / m : 0), mean_gx);
            },
            [&](std::size_t k, std::size_t) { return static_cast<double>(gv[k]); },
            [&](std::size_t k, std::size_t) { return static_cast<double>(gv[k]) * xh[k]; });
        if (!need_x) return;
        for (std::size_t n = 0; n < ch.batch; ++n)
          ch.blocks(cs, ce, [&](std::size_t offset, std::size_t len) {
            const std::size_t base = ch.at(n, cs, 0) + offset;
            sx.put_range(base, base + len, [&](std::size_t k) {
              const std::size_t p = k - base;
              return scale[p] * (gv[k] - mean_g[p] - xh[k] * mean_gx[p]);
            });
          });
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
    // By groups of channels, split among threads: μ, then Σ (x − μ)², then 1/σ̂, all in
    // double, then x̂.
    const T* xs = xv.data();
    ch.per_group(4 * xv.numel(), [&](std::size_t cs, std::size_t ce) {
      double mu_at[Channels::span], rc_at[Channels::span];
      ch.group_sums(
          cs, ce,
          [&](std::size_t c, const std::array<double, 1>& sum) {
            const double mu = sum[0] / static_cast<double>(m);
            mean[c] = static_cast<T>(mu);
            ch.fill_channel(cs, ce, c, mu, mu_at);
          },
          [&](std::size_t k, std::size_t) { return static_cast<double>(xs[k]); });
      ch.group_sums(
          cs, ce,
          [&](std::size_t c, const std::array<double, 1>& sum) {
            const double r = sum[0];
            var[c] = static_cast<T>(r / static_cast<double>(m - 1));
            const double rc = 1 / std::sqrt(r / static_cast<double>(m) + eps);
            inv[c] = static_cast<T>(rc);
            ch.fill_channel(cs, ce, c, rc, rc_at);
          },
          [&](std::size_t k, std::size_t p) {
            const double d = xs[k] - mu_at[p];
            return d * d;
          });
      T* xh = xhat.data();
      ch.group_each(cs, ce, [&](std::size_t k, std::size_t p) {
        xh[k] = static_cast<T>((xs[k] - mu_at[p]) * rc_at[p]);
      });
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
