// conv1d by direct loops over its definition: slow, obviously right, and the oracle that the
// engine's fast paths (direct kernels, im2col + gemm) are tested against.
#pragma once

#include <cstddef>

#include "tapegrad/tapegrad.hpp"

namespace test {

using tapegrad::Padding;
using tapegrad::Shape;
using tapegrad::Tensor;

namespace reference {

// The sizes of a conv1d from the public formulas (conv1d_output_length, Padding::resolve).
struct Geometry {
  std::size_t n, c_in, length, c_out, kernel, left, l_out;
  Geometry(const Shape& xs, const Shape& ws, std::size_t stride, const Padding& padding,
           std::size_t dilation)
      : n(xs[0]),
        c_in(xs[1]),
        length(xs[2]),
        c_out(ws[0]),
        kernel(ws[2]),
        left(padding.resolve(dilation * (ws[2] - 1) + 1, stride).first),
        l_out(conv1d_output_length(xs[2], ws[2], stride, padding, dilation)) {}
};

// y[s, o, t] = b[o] + Σ_c Σ_k w[o, c, k] · x[s, c, t·stride + k·dilation − left], term by term.
template <class T>
Tensor<T> conv1d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, std::size_t stride,
                 const Padding& padding, std::size_t dilation) {
  const Geometry g(x.shape(), w.shape(), stride, padding, dilation);
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

// gx, gw, gb of conv1d for the upstream gradient gy, by the chain rule applied to each term.
template <class T>
void conv1d_backward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& gy,
                     std::size_t stride, const Padding& padding, std::size_t dilation,
                     Tensor<T>& gx, Tensor<T>& gw, Tensor<T>& gb) {
  const Geometry g(x.shape(), w.shape(), stride, padding, dilation);
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

}  // namespace test
