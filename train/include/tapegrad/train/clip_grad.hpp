// Gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_ (PyTorch 1.13).
// Parameters without a gradient are left out.
#pragma once

#include <limits>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// The global norm N = ‖(‖g₁‖_q, …, ‖g_n‖_q)‖_q over every parameter's gradient (q = 2 by
// default; q = inf gives max |g|), then every gradient is multiplied by min(1, max_norm /
// (N + 1e-6)). Returns N, before clipping (0 when no parameter has a gradient). Throws when
// max_norm is negative or q is not positive; with error_if_nonfinite, also when N is NaN or
// infinite (the gradients are then left as they are).
template <class T>
double clip_grad_norm(const std::vector<Var<T>>& parameters, double max_norm,
                      double norm_type = 2.0, bool error_if_nonfinite = false);

// Clamps every gradient element into [−clip_value, clip_value] (NaN stays NaN).
template <class T>
void clip_grad_value(const std::vector<Var<T>>& parameters, double clip_value);

}  // namespace tapegrad
