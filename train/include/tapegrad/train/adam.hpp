// Adam and AdamW with PyTorch 1.13's update rules (torch.optim.Adam / AdamW, the single-tensor
// path), so the same settings give the same trajectory. Per parameter, at step t (from 1):
//   Adam:   g ← ∇p + λ p                          (weight decay λ, added to the gradient)
//   AdamW:  p ← p (1 − η λ)                       (decoupled weight decay), g ← ∇p
//   m ← β₁ m + (1 − β₁) g                         ("exp_avg", starts at 0)
//   v ← β₂ v + (1 − β₂) g²                        ("exp_avg_sq", starts at 0)
//   v̂ ← max(v̂, v) if amsgrad, else v̂ = v          ("max_exp_avg_sq")
//   p ← p − (η / (1 − β₁ᵗ)) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
// so ε is added after the bias correction of v, as in PyTorch (not to √v̂ before it).
#pragma once

#include <string>
#include <vector>

#include "tapegrad/train/optimizer.hpp"

namespace tapegrad {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // AdamW's default is 1e-2: AdamW() sets it when not given
  bool amsgrad = false;
};

template <class T>
class Adam : public Optimizer<T> {
 public:
  // Throws on invalid options (negative rates, betas outside [0, 1), eps < 0), as PyTorch does.
  Adam(std::vector<Var<T>> parameters, const AdamOptions& options = {});
  explicit Adam(std::vector<ParamGroup<T, AdamOptions>> groups);

  void step() override;
  std::string name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  const AdamOptions& options(std::size_t group = 0) const { return options_.at(group); }

 protected:
  Adam(std::vector<ParamGroup<T, AdamOptions>> groups, bool decoupled);
  std::vector<std::string> state_names(std::size_t group) const override;

 private:
  std::vector<AdamOptions> options_;
  bool decoupled_;
};

// AdamW: Adam with decoupled weight decay (default λ = 1e-2, PyTorch's).
template <class T>
class AdamW : public Adam<T> {
 public:
  static AdamOptions defaults() {
    AdamOptions o;
    o.weight_decay = 1e-2;
    return o;
  }
  AdamW(std::vector<Var<T>> parameters, const AdamOptions& options = defaults());
  explicit AdamW(std::vector<ParamGroup<T, AdamOptions>> groups);
};

extern template class Adam<float>;
extern template class Adam<double>;
extern template class AdamW<float>;
extern template class AdamW<double>;

}  // namespace tapegrad
