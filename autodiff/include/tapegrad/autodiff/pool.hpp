// 1-D pooling over the last axis of x: [N, C, L] → [N, C, L_out],
// L_out = ⌊(L + 2p − k)/s⌋ + 1 (stride 0 means stride = kernel; p ≤ k/2, as PyTorch requires).
// Derivations: docs/derivations.md#pooling.
#pragma once

#include <cstddef>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// Output length of a pooling window; throws naming every parameter when they do not fit.
std::size_t pool1d_output_length(std::size_t length, std::size_t kernel, std::size_t stride,
                                 std::size_t padding);

// y[n, c, t] = max of the window x[n, c, t·s − p … t·s − p + k − 1] (padding counts as −∞).
// The gradient goes to the window's maximum; on ties, to the first (leftmost) maximum. A NaN is
// the maximum, and of several NaNs the last takes the gradient (as PyTorch).
// Graph rule: gx = a scatter of gy to the forward pass's maxima, a linear op whose adjoint is the
// gather at the same positions; the routing stays fixed, so the second derivative in x is 0
// (derivations.md#pooling-second-order).
// Empty shapes, as PyTorch: N = 0 gives an empty output; C = 0 or L = 0 throws (both poolings).
template <class T>
Var<T> max_pool1d(const Var<T>& x, std::size_t kernel, std::size_t stride = 0,
                  std::size_t padding = 0);

// y[n, c, t] = (1/k) Σ of the window (padding counts as 0 and is counted in k, as PyTorch's
// default count_include_pad).  Each input in a window receives gy/k: gx = Aᵀgy for the linear
// map y = A x; under create_graph Aᵀ is an op whose gradient is avg_pool1d (A) again.
template <class T>
Var<T> avg_pool1d(const Var<T>& x, std::size_t kernel, std::size_t stride = 0,
                  std::size_t padding = 0);

}  // namespace tapegrad
