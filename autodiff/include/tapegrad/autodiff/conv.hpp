// 1-D convolution (cross-correlation, as PyTorch's conv1d: weights move between the two
// unchanged). Fast paths: at stride 1, direct register-blocked kernels (AVX-512 where the CPU
// has it) over the whole batch, threads splitting the output; at other strides, im2col + one
// BLAS gemm for the batch.
// Derivations: docs/derivations.md#conv1d and #conv1d-length.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// Zeros added to a conv1d's input: an explicit number on each side, or a named mode with
// K_eff = d(K − 1) + 1 the effective (dilated) kernel length:
//   "valid"  none;
//   "same"   K_eff − 1 in all, ⌊/2⌋ on the left and the rest (the extra zero) on the right, as
//            PyTorch does; output length = input length; stride 1 only;
//   "full"   K_eff − 1 on each side.
struct Padding {
  enum class Mode { zeros, valid, same, full };
  Padding() = default;
  // Any integer: conv1d(x, w, b, 1, 2). (A template, so that a literal 0 is not taken for a
  // null const char*.)
  template <class I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
  Padding(I both) : amount(static_cast<std::size_t>(both)) {  // NOLINT: implicit
    if (both < 0) throw std::invalid_argument("conv1d: negative padding " + std::to_string(both));
  }
  Padding(const char* name);                                   // NOLINT
  Padding(const std::string& name) : Padding(name.c_str()) {}  // NOLINT
  static Padding valid() { return Padding("valid"); }
  static Padding same() { return Padding("same"); }
  static Padding full() { return Padding("full"); }

  // (left, right) zeros for an effective kernel length and stride; throws for "same" with a
  // stride above 1.
  std::pair<std::size_t, std::size_t> resolve(std::size_t kernel_eff, std::size_t stride) const;
  std::string to_string() const;

  Mode mode = Mode::zeros;
  std::size_t amount = 0;
};

// L_out = ⌊(L + left + right − d(K − 1) − 1)/s⌋ + 1. Throws, naming every parameter, for a zero
// kernel, stride or dilation, "same" with stride > 1, or an input shorter than the kernel.
std::size_t conv1d_output_length(std::size_t length, std::size_t kernel, std::size_t stride,
                                 const Padding& padding, std::size_t dilation);

// y[n, o, t] = b[o] + Σ_c Σ_k w[o, c, k] · x[n, c, t·s + k·d − left]   (out of range: 0)
// x: [N, C_in, L], w: [C_out, C_in, K], b: [C_out] or undefined → y: [N, C_out, L_out].
// gw[o, c, k] = Σ_n Σ_t gy[n, o, t] x[n, c, t·s + k·d − left]  (the input correlated with gy),
// gb[o] = Σ_n Σ_t gy[n, o, t], and gx = the full convolution of gy (dilated by s) with the
// flipped kernel (dilated by d) — at stride 1 the forward kernel on gy with the transposed,
// flipped kernel; otherwise col2im of wᵀ · gy.
// Graph rule (create_graph): gx and gw are themselves differentiable ops, linear in gy, whose
// gradients are conv1d (without bias) and each other, so conv1d is differentiable to any order
// (derivations.md#conv1d-double-backward); gb = Σ_n Σ_t gy.
// Empty shapes, as PyTorch: N = 0 gives y [0, C_out, L_out], gw = 0, gb = 0; C_out = 0, or
// L = 0 with N, C_in > 0, throws. Deliberate difference: C_in = 0 gives y [N, C_out, L_out] = b
// (0 without a bias) and gb = Σ gy, where PyTorch 1.13 returns shape [N, 0, L_out] (an output
// whose channel count contradicts the weight's).
template <class T>
Var<T> conv1d(const Var<T>& x, const Var<T>& w, const Var<T>& b = Var<T>(), std::size_t stride = 1,
              const Padding& padding = Padding(0), std::size_t dilation = 1);

}  // namespace tapegrad
