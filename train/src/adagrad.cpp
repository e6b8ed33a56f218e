#include "tapegrad/train/adagrad.hpp"

#include <cmath>
#include <stdexcept>

#include "tapegrad/autodiff/threads.hpp"

namespace tapegrad {

template <class T>
Adagrad<T>::Adagrad(std::vector<Var<T>> parameters, const AdagradOptions& options)
    : Adagrad(std::vector<ParamGroup<T, AdagradOptions>>{{std::move(parameters), options}}) {}

template <class T>
Adagrad<T>::Adagrad(std::vector<ParamGroup<T, AdagradOptions>> groups) {
  for (auto& g : groups) {
    const AdagradOptions& o = g.options;
    if (!(o.lr_decay >= 0)) throw std::invalid_argument("Adagrad: lr_decay must be >= 0");
    if (!(o.initial_accumulator_value >= 0))
      throw std::invalid_argument("Adagrad: initial_accumulator_value must be >= 0");
    if (!(o.eps >= 0)) throw std::invalid_argument("Adagrad: eps must be >= 0");
    this->add_group(std::move(g.parameters), o.lr, o.weight_decay);
    options_.push_back(o);
  }
}

template <class T>
void Adagrad<T>::step() {
  this->for_each_with_grad([&](std::size_t i, Var<T>& p, std::size_t g) {
    const AdagradOptions& o = options_[g];
    const std::uint64_t t = ++this->parameter_state(i).steps;
    T* sum = this->state_tensor(i, "sum", static_cast<T>(o.initial_accumulator_value)).data();
    T* w = p.value().data();
    const T* grad = p.grad().data();
    const T decay = static_cast<T>(this->weight_decay(g)), eps = static_cast<T>(o.eps);
    const T clr = static_cast<T>(this->lr(g) / (1 + static_cast<double>(t - 1) * o.lr_decay));
    // Element by element: ranges of the tensor may run on tapegrad's threads.
    parallel_ranges(p.numel(), 5, [&](std::size_t k0, std::size_t k1) {
      for (std::size_t k = k0; k < k1; ++k) {
        const T gk = decay != T(0) ? grad[k] + decay * w[k] : grad[k];
        sum[k] = sum[k] + gk * gk;
        w[k] = w[k] + (-clr) * (gk / (std::sqrt(sum[k]) + eps));
      }
    });
  });
}

template class Adagrad<float>;
template class Adagrad<double>;

}  // namespace tapegrad
