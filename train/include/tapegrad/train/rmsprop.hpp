// RMSprop with PyTorch 1.13's update rule (torch.optim.RMSprop), per parameter:
//   g ← ∇p + λ p                                        (weight decay λ)
//   s ← α s + (1 − α) g²                                ("square_avg", starts at 0)
//   centered:  a ← α a + (1 − α) g ("grad_avg"),  d ← √(s − a²) + ε
//   otherwise: d ← √s + ε
//   momentum μ > 0:  b ← μ b + g / d ("momentum_buffer", starts at 0),  p ← p − η b
//   otherwise:       p ← p − η g / d
#pragma once

#include <string>
#include <vector>

#include "tapegrad/train/optimizer.hpp"

namespace tapegrad {

struct RmspropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

template <class T>
class RMSprop : public Optimizer<T> {
 public:
  // Throws on invalid options (negative lr, eps, weight decay, momentum or alpha), as PyTorch.
  RMSprop(std::vector<Var<T>> parameters, const RmspropOptions& options = {});
  explicit RMSprop(std::vector<ParamGroup<T, RmspropOptions>> groups);

  void step() override;
  std::string name() const override { return "RMSprop"; }
  const RmspropOptions& options(std::size_t group = 0) const { return options_.at(group); }

 protected:
  std::vector<std::string> state_names(std::size_t group) const override;

 private:
  std::vector<RmspropOptions> options_;
};

extern template class RMSprop<float>;
extern template class RMSprop<double>;

}  // namespace tapegrad
