#include "tapegrad/train/sgd.hpp"

#include <stdexcept>
#include <string>

#include "tapegrad/autodiff/threads.hpp"

namespace tapegrad {
namespace {
// One parameter's update, torch.optim.SGD element by element: d = g + wd·w; without momentum
// w −= lr·d; with it b = d at the first step, else μ·b + (1 − dampening)·d, and w −= lr·b (or
// lr·(d + μ·b), Nesterov). Each case its own branch-free loop over arrays that do not alias, so
// that the compiler vectorises it.
template <class T>
void sgd_update(std::size_t n, T* __restrict w, const T* __restrict grad, T lr, T wd) {
  for (std::size_t k = 0; k < n; ++k) w[k] -= lr * (grad[k] + wd * w[k]);
}

template <class T, bool first, bool nesterov>
void momentum_update(std::size_t n, T* __restrict w, const T* __restrict grad, T* __restrict b,
                     T lr, T wd, T mu, T keep) {
  for (std::size_t k = 0; k < n; ++k) {
    const T d = grad[k] + wd * w[k];
    if constexpr (first)
      b[k] = d;
    else
      b[k] = mu * b[k] + keep * d;
    w[k] -= lr * (nesterov ? d + mu * b[k] : b[k]);
  }
}
}  // namespace

template <class T>
SGD<T>::SGD(std::vector<Var<T>> parameters, const SgdOptions& options)
    : SGD(std::vector<ParamGroup<T, SgdOptions>>{{std::move(parameters), options}}) {}

template <class T>
SGD<T>::SGD(std::vector<ParamGroup<T, SgdOptions>> groups) {
  for (auto& g : groups) {
    const SgdOptions& o = g.options;
    if (!(o.momentum >= 0)) throw std::invalid_argument("SGD: momentum must be >= 0");
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
      throw std::invalid_argument("SGD: Nesterov momentum requires momentum > 0 and dampening 0");
    this->add_group(std::move(g.parameters), o.lr, o.weight_decay);
    options_.push_back(o);
  }
}

template <class T>
std::vector<std::string> SGD<T>::state_names(std::size_t group) const {
  if (options_[group].momentum != 0) return {"momentum_buffer"};
  return {};
}

template <class T>
void SGD<T>::step() {
  this->for_each_with_grad([&](std::size_t i, Var<T>& p, std::size_t g) {
    const SgdOptions& o = options_[g];
    const T lr = static_cast<T>(this->lr(g)), mu = static_cast<T>(o.momentum);
    const T wd = static_cast<T>(this->weight_decay(g));
    const T keep = static_cast<T>(1 - o.dampening);
    ++this->parameter_state(i).steps;
    T* w = p.value().data();
    const T* grad = p.grad().data();
    const std::size_t n = p.numel();
    // Element by element: ranges of the tensor may run on tapegrad's threads.
    if (mu == T(0))
      return parallel_ranges(n, 3, [&](std::size_t k0, std::size_t k1) {
        sgd_update(k1 - k0, w + k0, grad + k0, lr, wd);
      });
    bool first = false;
    T* b = this->state_tensor(i, "momentum_buffer", T(0), &first).data();
    using Update = void (*)(std::size_t, T*, const T*, T*, T, T, T, T);
    const Update update =
        first ? (o.nesterov ? momentum_update<T, true, true> : momentum_update<T, true, false>)
              : (o.nesterov ? momentum_update<T, false, true> : momentum_update<T, false, false>);
    parallel_ranges(n, 5, [&](std::size_t k0, std::size_t k1) {
      update(k1 - k0, w + k0, grad + k0, b + k0, lr, wd, mu, keep);
    });
  });
}

template class SGD<float>;
template class SGD<double>;

}  // namespace tapegrad
