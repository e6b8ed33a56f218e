#include "tapegrad/train/adam.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tapegrad/autodiff/threads.hpp"

namespace tapegrad {
namespace {

void check(const std::string& name, const AdamOptions& o) {
  auto fail = [&](const std::string& what) { throw std::invalid_argument(name + ": " + what); };
  if (!(o.eps >= 0)) fail("eps must be >= 0, got " + std::to_string(o.eps));
  if (!(o.beta1 >= 0 && o.beta1 < 1))
    fail("beta1 must be in [0, 1), got " + std::to_string(o.beta1));
  if (!(o.beta2 >= 0 && o.beta2 < 1))
    fail("beta2 must be in [0, 1), got " + std::to_string(o.beta2));
}

template <class T>
std::vector<ParamGroup<T, AdamOptions>> one_group(std::vector<Var<T>> parameters,
                                                  const AdamOptions& options) {
  std::vector<ParamGroup<T, AdamOptions>> groups(1);
  groups[0] = {std::move(parameters), options};
  return groups;
}

// The update's scalars, in the parameters' type.
template <class T>
struct AdamCoefficients {
  T beta1, beta2, one_minus_beta1, one_minus_beta2, decay, shrink, minus_step_size, bias2_sqrt, eps;
};

enum class Decay { none, l2, decoupled };

// One parameter's update, PyTorch's single-tensor Adam element by element. The cases are
// separate loops, each free of branches and of aliasing between its arrays, so that the compiler
// vectorises them (one loop with the cases as branches ran scalar: AdamW's update took 70× SGD's
// time on the CNN).
template <class T, Decay decay_kind, bool amsgrad>
void adam_update(std::size_t n, T* __restrict w, const T* __restrict grad, T* __restrict m,
                 T* __restrict v, T* __restrict v_max, const AdamCoefficients<T>& c) {
  // AdamW shrinks the weights first, in a pass of its own as PyTorch's param.mul_(1 − lr·wd):
  // the shrunk weight is rounded before the step is added (in one loop the compiler may fuse the
  // two into one multiply-add).
  if constexpr (decay_kind == Decay::decoupled)
    for (std::size_t k = 0; k < n; ++k) w[k] *= c.shrink;
  for (std::size_t k = 0; k < n; ++k) {
    T gk = grad[k];
    if constexpr (decay_kind == Decay::l2) gk = gk + c.decay * w[k];
    m[k] = m[k] * c.beta1 + c.one_minus_beta1 * gk;
    v[k] = v[k] * c.beta2 + c.one_minus_beta2 * (gk * gk);
    T second = v[k];
    if constexpr (amsgrad) second = v_max[k] = std::max(v_max[k], v[k]);
    const T denom = std::sqrt(second) / c.bias2_sqrt + c.eps;
    w[k] = w[k] + c.minus_step_size * (m[k] / denom);
  }
}

}  // namespace

template <class T>
Adam<T>::Adam(std::vector<Var<T>> parameters, const AdamOptions& options)
    : Adam(one_group(std::move(parameters), options), false) {}

template <class T>
Adam<T>::Adam(std::vector<ParamGroup<T, AdamOptions>> groups) : Adam(std::move(groups), false) {}

template <class T>
Adam<T>::Adam(std::vector<ParamGroup<T, AdamOptions>> groups, bool decoupled)
    : decoupled_(decoupled) {
  for (auto& g : groups) {
    check(name(), g.options);
    this->add_group(std::move(g.parameters), g.options.lr, g.options.weight_decay);
    options_.push_back(g.options);
  }
}

template <class T>
std::vector<std::string> Adam<T>::state_names(std::size_t group) const {
  if (options_[group].amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

template <class T>
void Adam<T>::step() {
  this->for_each_with_grad([&](std::size_t i, Var<T>& p, std::size_t g) {
    const AdamOptions& o = options_[g];
    const double lr = this->lr(g), wd = this->weight_decay(g);
    const std::uint64_t t = ++this->parameter_state(i).steps;
    T* m = this->state_tensor(i, "exp_avg", T(0)).data();
    T* v = this->state_tensor(i, "exp_avg_sq", T(0)).data();
    T* v_max = o.amsgrad ? this->state_tensor(i, "max_exp_avg_sq", T(0)).data() : nullptr;
    T* w = p.value().data();
    const T* grad = p.grad().data();
    const std::size_t n = p.numel();
    // Scalars as PyTorch forms them: in double, then used in the tensor's type.
    const T beta1 = static_cast<T>(o.beta1), beta2 = static_cast<T>(o.beta2);
    const T one_minus_beta1 = static_cast<T>(1 - o.beta1);
    const T one_minus_beta2 = static_cast<T>(1 - o.beta2);
    const T decay = static_cast<T>(wd), shrink = static_cast<T>(1 - lr * wd);
    const double bias1 = 1 - std::pow(o.beta1, static_cast<double>(t));
    const double bias2 = 1 - std::pow(o.beta2, static_cast<double>(t));
    const T step_size = static_cast<T>(lr / bias1);
    const T bias2_sqrt = static_cast<T>(std::sqrt(bias2));
    const T eps = static_cast<T>(o.eps);
    const AdamCoefficients<T> c{
        beta1, beta2, one_minus_beta1, one_minus_beta2, decay, shrink, -step_size, bias2_sqrt, eps};
    using Update = void (*)(std::size_t, T*, const T*, T*, T*, T*, const AdamCoefficients<T>&);
    const Update update =
        decoupled_ ? (o.amsgrad ? adam_update<T, Decay::decoupled, true>
                                : adam_update<T, Decay::decoupled, false>)
        : wd != 0
            ? (o.amsgrad ? adam_update<T, Decay::l2, true> : adam_update<T, Decay::l2, false>)
            : (o.amsgrad ? adam_update<T, Decay::none, true> : adam_update<T, Decay::none, false>);
    // Element by element: ranges of the tensor may run on tapegrad's threads.
    parallel_ranges(n, o.amsgrad ? 9 : 7, [&](std::size_t k0, std::size_t k1) {
      update(k1 - k0, w + k0, grad + k0, m + k0, v + k0, v_max ? v_max + k0 : nullptr, c);
    });
  });
}

template <class T>
AdamW<T>::AdamW(std::vector<Var<T>> parameters, const AdamOptions& options)
    : AdamW(one_group(std::move(parameters), options)) {}

template <class T>
AdamW<T>::AdamW(std::vector<ParamGroup<T, AdamOptions>> groups)
    : Adam<T>(std::move(groups), true) {}

template class Adam<float>;
template class Adam<double>;
template class AdamW<float>;
template class AdamW<double>;

}  // namespace tapegrad
