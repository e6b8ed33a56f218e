// conv1d at any stride: im2col + one BLAS gemm for the whole batch, and its adjoints.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>

#include "conv_geometry.hpp"
#include "conv_kernels.hpp"
#include "parallel.hpp"
#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/tape.hpp"

namespace tapegrad::detail {

// The copies here split the batch's samples among threads (each sample's columns are its own):
// the work of copying values_per_sample values for each sample, for parallel_for.
inline double copy_flop(const ConvGeometry& g, std::size_t values_per_sample) {
  return flop_per_value * 2.0 * static_cast<double>(g.n * values_per_sample);
}

// The output positions t whose input position t·stride + offset lies in [0, length): [first,
// last), so that the loops over them need no test per element.
struct InsideRange {
  std::size_t first, last;
};
inline InsideRange inside_range(const ConvGeometry& g, long offset) {
  const long stride = static_cast<long>(g.stride), length = static_cast<long>(g.length);
  const long l_out = static_cast<long>(g.l_out);
  const long first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const long last =
      length - offset <= 0 ? 0 : std::min(l_out, (length - offset + stride - 1) / stride);
  return {static_cast<std::size_t>(std::min(first, l_out)),
          static_cast<std::size_t>(std::max(last, std::min(first, l_out)))};
}

inline conv_kernels::RowShape row_shape(const ConvGeometry& g) {
  return {
      g.c_in, g.length, g.kernel, g.dilation, g.l_out, g.n * g.l_out, static_cast<long>(g.left)};
}

// The im2col matrix of the whole batch, [C_in·K, N·L_out]: sample s fills columns
// s·L_out … (s + 1)·L_out − 1, with col[c·K + k, s·L_out + t] = x[s, c, t·s + k·d − left]
// (0 outside the input). Then y = W · col is one gemm for the batch. At stride 1 (every layer
// of the CNNs) the kernels of conv_kernels.hpp move the rows.
template <class T>
void im2col(const ConvGeometry& g, const T* x, T* col) {
  const std::size_t ld = g.n * g.l_out;
  if (g.stride == 1) {
    const auto& kernels = conv_kernels::conv_kernels<T>();
    parallel_for(g.n, copy_flop(g, g.rows() * g.l_out),
                 [&](std::size_t s0, std::size_t s1, std::size_t) {
                   kernels.im2col(row_shape(g), x, s0, s1, col);
                 });
    return;
  }
  parallel_for(
      g.n, copy_flop(g, g.rows() * g.l_out), [&](std::size_t s0, std::size_t s1, std::size_t) {
        for (std::size_t s = s0; s < s1; ++s)
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
      });
}

// The adjoint of im2col: gx[s, c, t·s + k·d − left] += gcol[c·K + k, s·L_out + t]. A fresh
// slot's rows are zeroed one at a time just before their sums (in cache), not in a pass of
// their own over the whole gradient; at stride 1 the kernels sum each piece of a row in a
// register and store it once.
template <class T>
void col2im(const ConvGeometry& g, const T* gcol, const GradSlot<T>& slot) {
  const std::size_t ld = g.n * g.l_out;
  if (g.stride == 1) {
    const auto& kernels = conv_kernels::conv_kernels<T>();
    parallel_for(g.n, copy_flop(g, g.rows() * g.l_out),
                 [&](std::size_t s0, std::size_t s1, std::size_t) {
                   kernels.col2im(row_shape(g), gcol, s0, s1, slot.beta() != T(0), slot.data());
                 });
    return;
  }
  parallel_for(
      g.n, copy_flop(g, g.rows() * g.l_out), [&](std::size_t s0, std::size_t s1, std::size_t) {
        for (std::size_t s = s0; s < s1; ++s)
          for (std::size_t c = 0; c < g.c_in; ++c) {
            T* gxc = slot.part((s * g.c_in + c) * g.length, g.length).zeroed();
            for (std::size_t k = 0; k < g.kernel; ++k) {
              const T* row = gcol + (c * g.kernel + k) * ld + s * g.l_out;
              const long offset = static_cast<long>(k * g.dilation) - static_cast<long>(g.left);
              const InsideRange in = inside_range(g, offset);
              for (std::size_t t = in.first; t < in.last; ++t)
                gxc[static_cast<std::size_t>(static_cast<long>(t * g.stride) + offset)] += row[t];
            }
          }
      });
}

// gy [N, C_out, L_out] as [C_out, N·L_out], the layout of the im2col gemm's output.
template <class T>
Tensor<T> gemm_layout(const ConvGeometry& g, const T* gy) {
  const std::size_t cols = g.n * g.l_out;
  Tensor<T> gout(Shape{g.c_out, cols});
  const auto& kernels = conv_kernels::conv_kernels<T>();
  parallel_for(g.n, copy_flop(g, g.c_out * g.l_out),
               [&](std::size_t s0, std::size_t s1, std::size_t) {
                 kernels.to_gemm_layout(gy, g.c_out, g.l_out, cols, s0, s1, gout.data());
               });
  return gout;
}

// With keep_col, the im2col matrix ends there (for weight_gradient_im2col, which would
// otherwise build it again).
template <class T>
void forward_im2col(const ConvGeometry& g, const T* x, const T* w, const T* b, T* y,
                    Tensor<T>* keep_col = nullptr) {
  const std::size_t cols = g.n * g.l_out;
  Tensor<T> col(Shape{g.rows(), cols});
  im2col(g, x, col.data());
  // out[C_out, N·L_out] = W[C_out, C_in·K] · col, then each sample's block moves to y[s] (+ b).
  Tensor<T> out(Shape{g.c_out, cols});
  blas::gemm(blas::Transpose::no, blas::Transpose::no, g.c_out, cols, g.rows(), T(1), w, col.data(),
             T(0), out.data());
  const auto& kernels = conv_kernels::conv_kernels<T>();
  parallel_for(g.n, copy_flop(g, g.c_out * g.l_out),
               [&](std::size_t s0, std::size_t s1, std::size_t) {
                 kernels.from_gemm_layout(out.data(), g.c_out, g.l_out, cols, b, s0, s1, y);
               });
  if (keep_col) *keep_col = std::move(col);
}

// gW[C_out, C_in·K] = gout · colᵀ, col being x's im2col matrix: `kept` when forward_im2col
// kept it, built here when null.
template <class T>
void weight_gradient_im2col(const ConvGeometry& g, const T* x, const Tensor<T>& gout,
                            const GradSlot<T>& gw, const T* kept = nullptr) {
  Tensor<T> col;
  if (!kept) {
    col.resize(Shape{g.rows(), g.n * g.l_out});
    im2col(g, x, col.data());
  }
  blas::gemm(blas::Transpose::no, blas::Transpose::yes, g.c_out, g.rows(), g.n * g.l_out, T(1),
             gout.data(), kept ? kept : col.data(), gw.beta(), gw.data());
}

// gcol = Wᵀ · gout, scattered back by col2im.
template <class T>
void input_gradient_im2col(const ConvGeometry& g, const T* w, const Tensor<T>& gout,
                           const GradSlot<T>& gx) {
  Tensor<T> col(Shape{g.rows(), g.n * g.l_out});
  blas::gemm(blas::Transpose::yes, blas::Transpose::no, g.rows(), g.n * g.l_out, g.c_out, T(1), w,
             gout.data(), T(0), col.data());
  col2im(g, col.data(), gx);
}

}  // namespace tapegrad::detail
