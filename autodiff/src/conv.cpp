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

// The im2col matrix of the whole batch, [C_in·K, N·L_out]: sample s fills columns
// s·L_out … (s + 1)·L_out − 1, with col[c·K + k, s·L_out + t] = x[s, c, t·s + k·d − left]
// (0 outside the input). Then y = W · col is one gemm for the batch.
template <class T>
void im2col(const ConvGeometry& g, const T* x, T* col) {
  const std::size_t ld = g.n * g.l_out;
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t c = 0; c < g.c_in; ++c)
      for (std::size_t k = 0; k < g.kernel; ++k) {
        T* row = col + (c * g.kernel + k) * ld + s * g.l_out;
        const T* xc = x + (s * g.c_in + c) * g.length;
        const long offset = static_cast<long>(k * g.dilation) - static_cast<long>(g.left);
        for (std::size_t t = 0; t < g.l_out; ++t) {
          const long i = static_cast<long>(t * g.stride) + offset;
          row[t] = (i >= 0 && i < static_cast<long>(g.length)) ? xc[i] : T(0);
        }
      }
}

// The adjoint of im2col: gx[s, c, t·s + k·d − left] += gcol[c·K + k, s·L_out + t].
template <class T>
void col2im(const ConvGeometry& g, const T* gcol, T* gx) {
  const std::size_t ld = g.n * g.l_out;
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t c = 0; c < g.c_in; ++c)
      for (std::size_t k = 0; k < g.kernel; ++k) {
        const T* row = gcol + (c * g.kernel + k) * ld + s * g.l_out;
        T* gxc = gx + (s * g.c_in + c) * g.length;
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
  const std::size_t cols = g.n * g.l_out;
  Tensor<T> col(Shape{g.rows(), cols});
  im2col(g, x.value().data(), col.data());
  // out[C_out, N·L_out] = W[C_out, C_in·K] · col, then each sample's block moves to y[s] (+ b).
  Tensor<T> out(Shape{g.c_out, cols});
  blas::gemm(blas::Transpose::no, blas::Transpose::no, g.c_out, cols, g.rows(), T(1),
             w.value().data(), col.data(), T(0), out.data());
  Tensor<T> y(Shape{g.n, g.c_out, g.l_out});
  const bool has_bias = b.defined();
  for (std::size_t s = 0; s < g.n; ++s)
    for (std::size_t o = 0; o < g.c_out; ++o) {
      const T* from = out.data() + o * cols + s * g.l_out;
      T* to = y.data() + (s * g.c_out + o) * g.l_out;
      const T bias = has_bias ? b.value()[o] : T(0);
      for (std::size_t t = 0; t < g.l_out; ++t) to[t] = from[t] + bias;
    }
  auto backward = [g, has_bias](const Tensor<T>& gy, Gradients<T>& gr) {
    const std::size_t cols = g.n * g.l_out;
    // gy as [C_out, N·L_out], the layout of the forward gemm's output.
    Tensor<T> gout(Shape{g.c_out, cols});
    for (std::size_t s = 0; s < g.n; ++s)
      for (std::size_t o = 0; o < g.c_out; ++o)
        std::copy_n(gy.data() + (s * g.c_out + o) * g.l_out, g.l_out,
                    gout.data() + o * cols + s * g.l_out);
    Tensor<T> col(Shape{g.rows(), cols});
    if (gr.needed(1)) {  // gW[C_out, C_in·K] = gout · colᵀ
      im2col(g, gr.input(0).data(), col.data());
      GradSlot<T> slot = gr.slot(1);
      blas::gemm(blas::Transpose::no, blas::Transpose::yes, g.c_out, g.rows(), cols, T(1),
                 gout.data(), col.data(), slot.overwrite ? T(0) : T(1), slot.data);
    }
    if (has_bias && gr.needed(2)) {  // gb[o] = Σ over row o of gout
      GradSlot<T> slot = gr.slot(2);
      for (std::size_t o = 0; o < g.c_out; ++o) {
        T acc = 0;
        for (std::size_t j = 0; j < cols; ++j) acc += gout[o * cols + j];
        slot.data[o] = slot.overwrite ? acc : slot.data[o] + acc;
      }
    }
    if (gr.needed(0)) {  // gcol = Wᵀ · gout, scattered back by col2im
      blas::gemm(blas::Transpose::yes, blas::Transpose::no, g.rows(), cols, g.c_out, T(1),
                 gr.input(1).data(), gout.data(), T(0), col.data());
      GradSlot<T> slot = gr.slot(0);
      if (slot.overwrite) std::fill(slot.data, slot.data + slot.size, T(0));
      col2im(g, col.data(), slot.data);
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
