#include "tapegrad/autodiff/conv.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "conv_direct.hpp"
#include "conv_geometry.hpp"
#include "conv_grad.hpp"
#include "conv_im2col.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/reduce.hpp"

namespace tapegrad {

Padding::Padding(const char* name) {
  const std::string n = name ? name : "";
  if (n == "valid")
    mode = Mode::valid;
  else if (n == "same")
    mode = Mode::same;
  else if (n == "full")
    mode = Mode::full;
  else
    throw std::invalid_argument("conv1d: unknown padding \"" + n +
                                "\" (a number of zeros, \"valid\", \"same\" or \"full\")");
}

std::pair<std::size_t, std::size_t> Padding::resolve(std::size_t kernel_eff,
                                                     std::size_t stride) const {
  switch (mode) {
    case Mode::zeros:
      return {amount, amount};
    case Mode::valid:
      return {0, 0};
    case Mode::full:
      return {kernel_eff - 1, kernel_eff - 1};
    case Mode::same:
      if (stride != 1)
        throw std::invalid_argument("conv1d: padding \"same\" needs stride 1, got stride " +
                                    std::to_string(stride));
      return {(kernel_eff - 1) / 2, kernel_eff - 1 - (kernel_eff - 1) / 2};
  }
  return {0, 0};
}

std::string Padding::to_string() const {
  switch (mode) {
    case Mode::zeros:
      return std::to_string(amount);
    case Mode::valid:
      return "\"valid\"";
    case Mode::same:
      return "\"same\"";
    case Mode::full:
      return "\"full\"";
  }
  return "";
}

std::size_t conv1d_output_length(std::size_t length, std::size_t kernel, std::size_t stride,
                                 const Padding& padding, std::size_t dilation) {
  // The message is built only on failure: this runs on every forward pass.
  auto params = [&] {
    return " (length " + std::to_string(length) + ", kernel " + std::to_string(kernel) +
           ", stride " + std::to_string(stride) + ", padding " + padding.to_string() +
           ", dilation " + std::to_string(dilation) + ")";
  };
  if (kernel == 0 || stride == 0 || dilation == 0)
    throw std::invalid_argument("conv1d: kernel, stride and dilation must be positive" + params());
  const std::size_t k_eff = dilation * (kernel - 1) + 1;
  const auto [left, right] = padding.resolve(k_eff, stride);
  const std::size_t padded = length + left + right;
  if (padded < k_eff)
    throw ShapeError("conv1d: the input, padded to length " + std::to_string(padded) +
                     ", is shorter than the effective kernel d(K - 1) + 1 = " +
                     std::to_string(k_eff) + params());
  return (padded - k_eff) / stride + 1;
}

namespace {

// gb[o] = Σ_s Σ_t gy[s, o, t], into its slot.
template <class T>
void bias_gradient(const detail::ConvGeometry& g, const T* gy, const GradSlot<T>& slot) {
  T* gb = slot.zeroed();
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t o = 0; o < g.c_out; ++o)
      gb[o] += detail::sum_contiguous(gy + (s * g.c_out + o) * g.l_out, g.l_out);
}

// conv1d's graph rule: gx = Dx(gy, w), gw = Dw(gy, x) (conv_grad.hpp: differentiable ops
// whose gradients are conv1d's correlation and each other), gb = Σ_n Σ_t gy.
template <class T>
void graph_gradients(const detail::ConvGeometry& g, bool has_bias, const Var<T>& gy,
                     GraphGradients<T>& gr) {
  if (gr.needed(0)) gr.add(0, detail::conv1d_input_grad(gy, gr.input(1), g));
  if (gr.needed(1)) gr.add(1, detail::conv1d_weight_grad(gy, gr.input(0), g));
  if (has_bias && gr.needed(2)) gr.add(2, sum(gy, {0, 2}));
}

// No samples or no input channels: no products of x and w at all (the kernels' blocking would
// divide by zero). y = b broadcast (0 without a bias); gx and gw are zero (gx is empty, gw too
// when C_in = 0; with N = 0 gw is a sum over no samples); gb[o] = Σ_s Σ_t gy[s, o, t].
template <class T>
Var<T> conv1d_without_products(const detail::ConvGeometry& g, const Var<T>& x, const Var<T>& w,
                               const Var<T>& b, Tensor<T> y) {
  const bool has_bias = b.defined();
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t o = 0; o < g.c_out; ++o)
      std::fill_n(y.data() + (s * g.c_out + o) * g.l_out, g.l_out, has_bias ? b.value()[o] : T(0));
  struct Rule {
    detail::ConvGeometry g;
    bool has_bias;
    void operator()(const Tensor<T>& gy, Gradients<T>& gr) {
      for (std::size_t i = 0; i < 2; ++i)
        if (gr.needed(i)) gr.accumulate(i, [](std::size_t) { return T(0); });
      if (has_bias && gr.needed(2)) bias_gradient(g, gy.data(), gr.slot(2));
    }
    void operator()(const Var<T>& gy, GraphGradients<T>& gr) {
      graph_gradients(g, has_bias, gy, gr);
    }
  };
  if (has_bias) return make_op<T>("conv1d", {x, w, b}, std::move(y), Rule{g, has_bias});
  return make_op<T>("conv1d", {x, w}, std::move(y), Rule{g, has_bias});
}

}  // namespace

// Stride 1 runs on the direct kernels (conv_direct.hpp), other strides on im2col + gemm
// (conv_im2col.hpp); each pass picks its path from the shape alone.
template <class T>
Var<T> conv1d(const Var<T>& x, const Var<T>& w, const Var<T>& b, std::size_t stride,
              const Padding& padding, std::size_t dilation) {
  const detail::ConvGeometry g =
      detail::geometry(x.shape(), w.shape(), &b, stride, padding, dilation);
  const std::size_t span = g.dilation * (g.kernel - 1);
  const bool has_bias = b.defined();
  Tensor<T> y(Shape{g.n, g.c_out, g.l_out});
  const T* bias = has_bias ? b.value().data() : nullptr;
  if (g.n == 0 || g.c_in == 0) return conv1d_without_products(g, x, w, b, std::move(y));
  // On the im2col path, x's im2col matrix is kept for the weight gradient when w will want
  // one (the rule's last input, untracked): building it again took about as long as the
  // forward's copy.
  const bool direct = detail::direct_pays<T>(stride, g.l_out, span);
  Tensor<T> col;
  const bool keep_col = !direct && grad_enabled() && w.requires_grad();
  if (direct)
    detail::forward_direct(g, x.value().data(), w.value().data(), bias, y.data());
  else
    detail::forward_im2col(g, x.value().data(), w.value().data(), bias, y.data(),
                           keep_col ? &col : nullptr);
  if (direct) detail::profile_flops(2.0 * g.n * g.c_out * g.l_out * g.c_in * g.kernel);
  // Both forms of the rule in one object (a raw lambda beside a graph lambda would not fit
  // in the record's inline storage).
  struct Rule {
    detail::ConvGeometry g;
    std::size_t span;
    bool has_bias;
    std::size_t col_input;  // the input holding x's im2col matrix (0: none was kept)
    void operator()(const Tensor<T>& gy, Gradients<T>& gr) {
      const bool direct_w = detail::direct_pays<T>(g.stride, g.l_out, span);
      const bool direct_x = detail::direct_pays<T>(g.stride, g.length, span);
      detail::profile_flops(2.0 * g.n * g.c_out * g.l_out * g.c_in * g.kernel *
                            ((gr.needed(1) && direct_w) + (gr.needed(0) && direct_x)));
      Tensor<T> gout;  // gy in the im2col layout, made only if the im2col path needs it
      const bool have_gout = (gr.needed(1) && !direct_w) || (gr.needed(0) && !direct_x);
      if (have_gout) gout = detail::gemm_layout(g, gy.data());
      if (gr.needed(1)) {
        const GradSlot<T> slot = gr.slot(1);
        if (direct_w) {
          const bool bias_too = has_bias && gr.needed(2);
          const GradSlot<T> bias_slot = bias_too ? gr.slot(2) : GradSlot<T>(nullptr, 0, false);
          detail::weight_gradient_direct(g, gr.input(0).data(), gy.data(), slot,
                                         bias_too ? &bias_slot : nullptr);
        } else {
          detail::weight_gradient_im2col(g, gr.input(0).data(), gout, slot,
                                         col_input ? gr.input(col_input).data() : nullptr);
        }
      }
      const bool bias_done = direct_w && gr.needed(1);  // by weight_gradient_direct
      if (has_bias && gr.needed(2) && !bias_done) {
        if (have_gout)  // gb[o] = the sum of gout's row o, all samples' outputs in one row
          gr.slot(2).put_range(0, g.c_out, [&](std::size_t o) {
            return detail::sum_contiguous<T, 32>(gout.data() + o * g.n * g.l_out, g.n * g.l_out);
          });
        else
          bias_gradient(g, gy.data(), gr.slot(2));
      }
      if (gr.needed(0)) {
        if (direct_x)
          detail::input_gradient_direct(g, gy.data(), gr.input(1).data(), gr.slot(0));
        else
          detail::input_gradient_im2col(g, gr.input(1).data(), gout, gr.slot(0));
      }
    }
    void operator()(const Var<T>& gy, GraphGradients<T>& gr) {
      graph_gradients(g, has_bias, gy, gr);
    }
  };
  const std::size_t col_input = keep_col ? (has_bias ? 3 : 2) : 0;
  const Rule rule{g, span, has_bias, col_input};
  if (has_bias && keep_col)
    return make_op<T>("conv1d", {x, w, b, Var<T>(std::move(col))}, std::move(y), rule);
  if (has_bias) return make_op<T>("conv1d", {x, w, b}, std::move(y), rule);
  if (keep_col) return make_op<T>("conv1d", {x, w, Var<T>(std::move(col))}, std::move(y), rule);
  return make_op<T>("conv1d", {x, w}, std::move(y), rule);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                    \
  template Var<T> conv1d(const Var<T>&, const Var<T>&, const Var<T>&, std::size_t, const Padding&, \
                         std::size_t);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
