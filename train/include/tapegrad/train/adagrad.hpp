// Adagrad with PyTorch 1.13's update rule (torch.optim.Adagrad), per parameter at step t
// (from 1):
//   g ← ∇p + λ p                                  (weight decay λ)
//   η_t = η / (1 + (t − 1) · lr_decay)
//   S ← S + g²                                    ("sum", starts at initial_accumulator_value)
//   p ← p − η_t · g / (√S + ε)
#pragma once

#include <string>
#include <vector>

#include "tapegrad/train/optimizer.hpp"

namespace tapegrad {

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;
};

template <class T>
class Adagrad : public Optimizer<T> {
 public:
  // Throws on invalid options (negative lr, lr_decay, weight decay, initial value or eps).
  Adagrad(std::vector<Var<T>> parameters, const AdagradOptions& options = {});
  explicit Adagrad(std::vector<ParamGroup<T, AdagradOptions>> groups);

  void step() override;
  std::string name() const override { return "Adagrad"; }
  const AdagradOptions& options(std::size_t group = 0) const { return options_.at(group); }

 protected:
  std::vector<std::string> state_names(std::size_t) const override { return {"sum"}; }

 private:
  std::vector<AdagradOptions> options_;
};

extern template class Adagrad<float>;
extern template class Adagrad<double>;

}  // namespace tapegrad
