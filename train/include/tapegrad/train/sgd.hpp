// Stochastic gradient descent with PyTorch 1.13's update rules (torch.optim.SGD), so the same
// settings give the same trajectory:
//   g ← ∇p + λ p                                   (weight decay λ)
//   b ← g on the first step, else μ b + (1 − τ) g  (momentum μ, dampening τ; "momentum_buffer")
//   g ← g + μ b  if Nesterov, else g ← b            (only when μ ≠ 0)
//   p ← p − η g                                    (learning rate η)
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/train/optimizer.hpp"

namespace tapegrad {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};

template <class T>
class SGD : public Optimizer<T> {
 public:
  // Optimises `parameters` (handles sharing the model's nodes). Throws on invalid options
  // (negative rates; Nesterov without momentum or with dampening, as PyTorch does).
  SGD(std::vector<Var<T>> parameters, const SgdOptions& options);
  explicit SGD(std::vector<ParamGroup<T, SgdOptions>> groups);

  void step() override;
  std::string name() const override { return "SGD"; }
  const SgdOptions& options(std::size_t group = 0) const { return options_.at(group); }

 protected:
  std::vector<std::string> state_names(std::size_t group) const override;

 private:
  std::vector<SgdOptions> options_;
};

extern template class SGD<float>;
extern template class SGD<double>;

}  // namespace tapegrad
