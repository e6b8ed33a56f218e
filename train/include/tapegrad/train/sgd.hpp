// Stochastic gradient descent with PyTorch's update rules (torch.optim.SGD), so the same
// settings give the same trajectory:
//   g ← ∇p + λ p                                   (weight decay λ)
//   b ← g on the first step, else μ b + (1 − τ) g  (momentum μ, dampening τ)
//   g ← g + μ b  if Nesterov, else g ← b            (only when μ ≠ 0)
//   p ← p − η g                                    (learning rate η)
#pragma once

#include <cstddef>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};

template <class T>
class SGD {
 public:
  // Optimises `parameters` (handles sharing the model's nodes). Throws on invalid options
  // (negative rates; Nesterov without momentum or with dampening, as PyTorch does).
  SGD(std::vector<Var<T>> parameters, const SgdOptions& options);

  // One update of every parameter that has a gradient; parameters without one are skipped.
  void step();
  // Zeroes every parameter's gradient (keeping the buffers).
  void zero_grad();

  double lr() const { return options_.lr; }
  void set_lr(double lr) { options_.lr = lr; }
  const SgdOptions& options() const { return options_; }
  const std::vector<Var<T>>& parameters() const { return parameters_; }

  // Momentum buffers (undefined before a parameter's first step) and the step count, for
  // checkpoints; restore with set_state.
  const std::vector<Tensor<T>>& momentum_buffers() const { return buffers_; }
  std::size_t steps() const { return steps_; }
  void set_state(std::vector<Tensor<T>> buffers, std::size_t steps);

 private:
  std::vector<Var<T>> parameters_;
  SgdOptions options_;
  std::vector<Tensor<T>> buffers_;
  std::size_t steps_ = 0;
};

extern template class SGD<float>;
extern template class SGD<double>;

}  // namespace tapegrad
