#include "tapegrad/autodiff/conv.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/op.hpp"

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
  const std::string params = " (length " + std::to_string(length) + ", kernel " +
                             std::to_string(kernel) + ", stride " + std::to_string(stride) +
                             ", padding " + padding.to_string() + ", dilation " +
                             std::to_string(dilation) + ")";
  if (kernel == 0 || stride == 0 || dilation == 0)
    throw std::invalid_argument("conv1d: kernel, stride and dilation must be positive" + params);
  const std::size_t k_eff = dilation * (kernel - 1) + 1;
  const auto [left, right] = padding.resolve(k_eff, stride);
  const std::size_t padded = length + left + right;
  if (padded < k_eff)
    throw ShapeError(
        "conv1d: the input, padded to length " + std::to_string(padded) +
        ", is shorter than the effective kernel d(K - 1) + 1 = " + std::to_string(k_eff) + params);
  return (padded - k_eff) / stride + 1;
}

namespace {

struct ConvGeometry {
  std::size_t n, c_in, length, c_out, kernel, stride, dilation, left, l_out;
  std::size_t rows() const { return c_in * kernel; }  // of the im2col matrix
};

template <class T>
ConvGeometry geometry(const Shape& xs, const Shape& ws, const Var<T>* b, std::size_t stride,
                      const Padding& padding, std::size_t dilation) {
  if (xs.rank() != 3)
    throw ShapeError("conv1d: input must be [N, C_in, L], got shape " + xs.to_string());
  if (ws.rank() != 3)
    throw ShapeError("conv1d: weight must be [C_out, C_in, K], got shape " + ws.to_string());
  if (xs[1] != ws[1])
    throw ShapeError("conv1d: input " + xs.to_string() + " has " + std::to_string(xs[1]) +
                     " channels but weight " + ws.to_string() + " expects " +
                     std::to_string(ws[1]));
  if (b && b->defined() && b->shape() != Shape{ws[0]})
    throw ShapeError("conv1d: bias of shape " + b->shape().to_string() + " for weight " +
                     ws.to_string() + " (expected [" + std::to_string(ws[0]) + "])");
  ConvGeometry g{xs[0], xs[1], xs[2], ws[0], ws[2], stride, dilation, 0, 0};
  g.l_out = conv1d_output_length(xs[2], ws[2], stride, padding, dilation);
  g.left = padding.resolve(dilation * (ws[2] - 1) + 1, stride).first;
  return g;
}

// col[(c·K + k), t] = x[c, t·s + k·d − left] (0 outside), for one sample x: [C_in, L].
template <class T>
void im2col(const ConvGeometry& g, const T* x, T* col) {
  for (std::size_t c = 0; c < g.c_in; ++c)
    for (std::size_t k = 0; k < g.kernel; ++k) {
      T* row = col + (c * g.kernel + k) * g.l_out;
      const T* xc = x + c * g.length;
      const long offset = static_cast<long>(k * g.dilation) - static_cast<long>(g.left);
      for (std::size_t t = 0; t < g.l_out; ++t) {
        const long i = static_cast<long>(t * g.stride) + offset;
        row[t] = (i >= 0 && i < static_cast<long>(g.length)) ? xc[i] : T(0);
      }
    }
}

// The adjoint of im2col: gx[c, t·s + k·d − left] += gcol[(c·K + k), t].
template <class T>
void col2im(const ConvGeometry& g, const T* gcol, T* gx) {
  for (std::size_t c = 0; c < g.c_in; ++c)
    for (std::size_t k = 0; k < g.kernel; ++k) {
      const T* row = gcol + (c * g.kernel + k) * g.l_out;
      T* gxc = gx + c * g.length;
      const long offset = static_cast<long>(k * g.dilation) - static_cast<long>(g.left);
      for (std::size_t t = 0; t < g.l_out; ++t) {
        const long i = static_cast<long>(t * g.stride) + offset;
        if (i >= 0 && i < static_cast<long>(g.length)) gxc[i] += row[t];
      }
    }
}

}  // namespace

template <class T>
Var<T> conv1d(const Var<T>& x, const Var<T>& w, const Var<T>& b, std::size_t stride,
              const Padding& padding, std::size_t dilation) {
  const ConvGeometry g = geometry(x.shape(), w.shape(), &b, stride, padding, dilation);
  Tensor<T> y(Shape{g.n, g.c_out, g.l_out});
  Tensor<T> col(Shape{g.rows(), g.l_out});
  const T* px = x.value().data();
  const T* pw = w.value().data();
  const bool has_bias = b.defined();
  for (std::size_t s = 0; s < g.n; ++s) {
    im2col(g, px + s * g.c_in * g.length, col.data());
    T* ys = y.data() + s * g.c_out * g.l_out;
    if (has_bias)
      for (std::size_t o = 0; o < g.c_out; ++o)
        std::fill(ys + o * g.l_out, ys + (o + 1) * g.l_out, b.value()[o]);
    // y_s[C_out, L_out] = W[C_out, C_in·K] · col[C_in·K, L_out] (+ bias)
    blas::gemm(blas::Transpose::no, blas::Transpose::no, g.c_out, g.l_out, g.rows(), T(1), pw,
               col.data(), has_bias ? T(1) : T(0), ys);
  }
  auto backward = [g, has_bias](const Tensor<T>& gy, Gradients<T>& gr) {
    const T* px = gr.input(0).data();
    const T* pw = gr.input(1).data();
    const std::size_t out_size = g.c_out * g.l_out;
    Tensor<T> col(Shape{g.rows(), g.l_out});
    if (gr.needed(1)) {  // gW[C_out, C_in·K] = Σ_s gy_s · col_sᵀ
      GradSlot<T> slot = gr.slot(1);
      for (std::size_t s = 0; s < g.n; ++s) {
        im2col(g, px + s * g.c_in * g.length, col.data());
        blas::gemm(blas::Transpose::no, blas::Transpose::yes, g.c_out, g.rows(), g.l_out, T(1),
                   gy.data() + s * out_size, col.data(), (slot.overwrite && s == 0) ? T(0) : T(1),
                   slot.data);
      }
      if (g.n == 0 && slot.overwrite) std::fill(slot.data, slot.data + slot.size, T(0));
    }
    if (has_bias && gr.needed(2)) {  // gb[o] = Σ_s Σ_t gy[s, o, t]
      GradSlot<T> slot = gr.slot(2);
      if (slot.overwrite) std::fill(slot.data, slot.data + g.c_out, T(0));
      for (std::size_t s = 0; s < g.n; ++s)
        for (std::size_t o = 0; o < g.c_out; ++o) {
          const T* row = gy.data() + s * out_size + o * g.l_out;
          T acc = 0;
          for (std::size_t t = 0; t < g.l_out; ++t) acc += row[t];
          slot.data[o] += acc;
        }
    }
    if (gr.needed(0)) {  // gcol = Wᵀ · gy_s, then col2im into gx_s
      GradSlot<T> slot = gr.slot(0);
      if (slot.overwrite) std::fill(slot.data, slot.data + slot.size, T(0));
      for (std::size_t s = 0; s < g.n; ++s) {
        blas::gemm(blas::Transpose::yes, blas::Transpose::no, g.rows(), g.l_out, g.c_out, T(1), pw,
                   gy.data() + s * out_size, T(0), col.data());
        col2im(g, col.data(), slot.data + s * g.c_in * g.length);
      }
    }
  };
  if (has_bias) return make_op<T>("conv1d", {x, w, b}, std::move(y), std::move(backward));
  return make_op<T>("conv1d", {x, w}, std::move(y), std::move(backward));
}

namespace reference {

template <class T>
Tensor<T> conv1d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, std::size_t stride,
                 const Padding& padding, std::size_t dilation) {
  const Var<T> bias = b.defined() ? Var<T>(b) : Var<T>();
  const ConvGeometry g = geometry(x.shape(), w.shape(), &bias, stride, padding, dilation);
  Tensor<T> y = Tensor<T>::zeros({g.n, g.c_out, g.l_out});
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t o = 0; o < g.c_out; ++o)
      for (std::size_t t = 0; t < g.l_out; ++t) {
        T acc = b.defined() ? b[o] : T(0);
        for (std::size_t c = 0; c < g.c_in; ++c)
          for (std::size_t k = 0; k < g.kernel; ++k) {
            const long i = static_cast<long>(t * stride + k * dilation) - static_cast<long>(g.left);
            if (i >= 0 && i < static_cast<long>(g.length))
              acc += w.at({o, c, k}) * x.at({s, c, static_cast<std::size_t>(i)});
          }
        y.at({s, o, t}) = acc;
      }
  return y;
}

template <class T>
void conv1d_backward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& gy,
                     std::size_t stride, const Padding& padding, std::size_t dilation,
                     Tensor<T>& gx, Tensor<T>& gw, Tensor<T>& gb) {
  const ConvGeometry g = geometry<T>(x.shape(), w.shape(), nullptr, stride, padding, dilation);
  gx = Tensor<T>::zeros(x.shape());
  gw = Tensor<T>::zeros(w.shape());
  gb = Tensor<T>::zeros({g.c_out});
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t o = 0; o < g.c_out; ++o)
      for (std::size_t t = 0; t < g.l_out; ++t) {
        const T grad = gy.at({s, o, t});
        gb[o] += grad;
        for (std::size_t c = 0; c < g.c_in; ++c)
          for (std::size_t k = 0; k < g.kernel; ++k) {
            const long i = static_cast<long>(t * stride + k * dilation) - static_cast<long>(g.left);
            if (i < 0 || i >= static_cast<long>(g.length)) continue;
            const std::size_t iu = static_cast<std::size_t>(i);
            gw.at({o, c, k}) += grad * x.at({s, c, iu});
            gx.at({s, c, iu}) += grad * w.at({o, c, k});
          }
      }
}

}  // namespace reference

#define TAPEGRAD_INSTANTIATE(T)                                                                    \
  template Var<T> conv1d(const Var<T>&, const Var<T>&, const Var<T>&, std::size_t, const Padding&, \
                         std::size_t);                                                             \
  template Tensor<T> reference::conv1d(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,       \
                                       std::size_t, const Padding&, std::size_t);                  \
  template void reference::conv1d_backward(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,   \
                                           std::size_t, const Padding&, std::size_t, Tensor<T>&,   \
                                           Tensor<T>&, Tensor<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
