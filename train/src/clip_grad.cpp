#include "tapegrad/train/clip_grad.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace tapegrad {

template <class T>
double clip_grad_norm(const std::vector<Var<T>>& parameters, double max_norm, double norm_type,
                      bool error_if_nonfinite) {
  if (!(max_norm >= 0))
    throw std::invalid_argument("clip_grad_norm: max_norm must be >= 0, got " +
                                std::to_string(max_norm));
  if (!(norm_type > 0))
    throw std::invalid_argument("clip_grad_norm: norm_type must be positive, got " +
                                std::to_string(norm_type));
  const bool max_norm_type = std::isinf(norm_type);
  // Each gradient's norm in T (as PyTorch computes it in the gradient's type), then the norm of
  // those norms.
  T total = 0;
  bool any = false;
  for (const Var<T>& p : parameters) {
    if (!p.has_grad()) continue;
    any = true;
    const Tensor<T>& g = p.grad();
    if (max_norm_type) {
      T m = 0;
      for (T v : g) m = (std::abs(v) > m || v != v) ? std::abs(v) : m;
      total = (m > total || m != m) ? m : total;
    } else {
      T s = 0;
      if (norm_type == 2)
        for (T v : g) s += v * v;
      else
        for (T v : g) s += std::pow(std::abs(v), static_cast<T>(norm_type));
      const T norm = norm_type == 2 ? std::sqrt(s) : std::pow(s, static_cast<T>(1 / norm_type));
      total += norm_type == 2 ? norm * norm : std::pow(norm, static_cast<T>(norm_type));
    }
  }
  if (!any) return 0.0;
  if (!max_norm_type)
    total = norm_type == 2 ? std::sqrt(total) : std::pow(total, static_cast<T>(1 / norm_type));
  if (error_if_nonfinite && !std::isfinite(total))
    throw std::runtime_error("clip_grad_norm: the total norm of order " +
                             std::to_string(norm_type) +
                             " of the gradients is non-finite, so it cannot be clipped");
  const T coef = std::min(static_cast<T>(max_norm) / (total + static_cast<T>(1e-6)), T(1));
  for (Var<T> p : parameters)  // a handle: its gradient is the parameter's
    if (p.has_grad())
      for (T& v : p.grad()) v *= coef;
  return static_cast<double>(total);
}

template <class T>
void clip_grad_value(const std::vector<Var<T>>& parameters, double clip_value) {
  const T hi = static_cast<T>(clip_value), lo = -hi;
  for (Var<T> p : parameters)  // a handle: its gradient is the parameter's
    if (p.has_grad())
      for (T& v : p.grad()) v = v < lo ? lo : (v > hi ? hi : v);
}

#define TAPEGRAD_INSTANTIATE(T)                                                     \
  template double clip_grad_norm(const std::vector<Var<T>>&, double, double, bool); \
  template void clip_grad_value(const std::vector<Var<T>>&, double);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
