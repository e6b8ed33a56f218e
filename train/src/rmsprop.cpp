#include "tapegrad/train/rmsprop.hpp"

#include <cmath>
#include <stdexcept>

#include "tapegrad/autodiff/threads.hpp"

namespace tapegrad {

template <class T>
RMSprop<T>::RMSprop(std::vector<Var<T>> parameters, const RmspropOptions& options)
    : RMSprop(std::vector<ParamGroup<T, RmspropOptions>>{{std::move(parameters), options}}) {}

template <class T>
RMSprop<T>::RMSprop(std::vector<ParamGroup<T, RmspropOptions>> groups) {
  for (auto& g : groups) {
    const RmspropOptions& o = g.options;
    if (!(o.eps >= 0)) throw std::invalid_argument("RMSprop: eps must be >= 0");
    if (!(o.momentum >= 0)) throw std::invalid_argument("RMSprop: momentum must be >= 0");
    if (!(o.alpha >= 0)) throw std::invalid_argument("RMSprop: alpha must be >= 0");
    this->add_group(std::move(g.parameters), o.lr, o.weight_decay);
    options_.push_back(o);
  }
}

template <class T>
std::vector<std::string> RMSprop<T>::state_names(std::size_t group) const {
  std::vector<std::string> names = {"square_avg"};
  if (options_[group].momentum > 0) names.push_back("momentum_buffer");
  if (options_[group].centered) names.push_back("grad_avg");
  return names;
}

template <class T>
void RMSprop<T>::step() {
  this->for_each_with_grad([&](std::size_t i, Var<T>& p, std::size_t g) {
    const RmspropOptions& o = options_[g];
    ++this->parameter_state(i).steps;
    T* s = this->state_tensor(i, "square_avg", T(0)).data();
    T* b = o.momentum > 0 ? this->state_tensor(i, "momentum_buffer", T(0)).data() : nullptr;
    T* a = o.centered ? this->state_tensor(i, "grad_avg", T(0)).data() : nullptr;
    T* w = p.value().data();
    const T* grad = p.grad().data();
    const T alpha = static_cast<T>(o.alpha), one_minus_alpha = static_cast<T>(1 - o.alpha);
    const T decay = static_cast<T>(this->weight_decay(g)), eps = static_cast<T>(o.eps);
    const T mu = static_cast<T>(o.momentum), lr = static_cast<T>(this->lr(g));
    // Element by element: ranges of the tensor may run on tapegrad's threads.
    const std::size_t values = 4 + (b ? 2 : 0) + (a ? 2 : 0);
    parallel_ranges(p.numel(), values, [&](std::size_t k0, std::size_t k1) {
      for (std::size_t k = k0; k < k1; ++k) {
        const T gk = decay != T(0) ? grad[k] + decay * w[k] : grad[k];
        s[k] = s[k] * alpha + one_minus_alpha * (gk * gk);
        T avg = s[k];
        if (a) {
          a[k] = a[k] * alpha + one_minus_alpha * gk;
          avg = avg - a[k] * a[k];
        }
        const T d = std::sqrt(avg) + eps;
        if (b) {
          b[k] = b[k] * mu + gk / d;
          w[k] = w[k] + (-lr) * b[k];
        } else {
          w[k] = w[k] + (-lr) * (gk / d);
        }
      }
    });
  });
}

template class RMSprop<float>;
template class RMSprop<double>;

}  // namespace tapegrad
