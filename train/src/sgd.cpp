#include "tapegrad/train/sgd.hpp"

#include <stdexcept>
#include <string>

namespace tapegrad {

template <class T>
SGD<T>::SGD(std::vector<Var<T>> parameters, const SgdOptions& options)
    : parameters_(std::move(parameters)), options_(options), buffers_(parameters_.size()) {
  if (!(options.lr >= 0)) throw std::invalid_argument("SGD: learning rate must be >= 0");
  if (!(options.momentum >= 0)) throw std::invalid_argument("SGD: momentum must be >= 0");
  if (!(options.weight_decay >= 0)) throw std::invalid_argument("SGD: weight decay must be >= 0");
  if (options.nesterov && (options.momentum <= 0 || options.dampening != 0))
    throw std::invalid_argument("SGD: Nesterov momentum requires momentum > 0 and dampening 0");
  for (std::size_t i = 0; i < parameters_.size(); ++i)
    if (!parameters_[i].defined() || !parameters_[i].is_leaf())
      throw std::invalid_argument("SGD: parameter " + std::to_string(i) + " is not a leaf");
}

template <class T>
void SGD<T>::step() {
  const T lr = static_cast<T>(options_.lr), mu = static_cast<T>(options_.momentum);
  const T wd = static_cast<T>(options_.weight_decay);
  const T keep = static_cast<T>(1 - options_.dampening);
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    Var<T>& p = parameters_[i];
    if (!p.has_grad()) continue;
    T* w = p.value().data();
    const T* g = p.grad().data();
    const std::size_t n = p.numel();
    if (mu == T(0)) {
      for (std::size_t k = 0; k < n; ++k) w[k] -= lr * (g[k] + wd * w[k]);
      continue;
    }
    Tensor<T>& buf = buffers_[i];
    const bool first = !buf.defined();
    if (first) buf.resize(p.shape());
    T* b = buf.data();
    for (std::size_t k = 0; k < n; ++k) {
      const T d = g[k] + wd * w[k];
      b[k] = first ? d : mu * b[k] + keep * d;
      w[k] -= lr * (options_.nesterov ? d + mu * b[k] : b[k]);
    }
  }
  ++steps_;
}

template <class T>
void SGD<T>::zero_grad() {
  for (Var<T>& p : parameters_) p.zero_grad();
}

template <class T>
void SGD<T>::set_state(std::vector<Tensor<T>> buffers, std::size_t steps) {
  if (buffers.size() != parameters_.size())
    throw std::invalid_argument("SGD::set_state: " + std::to_string(buffers.size()) +
                                " momentum buffers for " + std::to_string(parameters_.size()) +
                                " parameters");
  for (std::size_t i = 0; i < buffers.size(); ++i)
    if (buffers[i].defined() && buffers[i].shape() != parameters_[i].shape())
      throw ShapeError("SGD::set_state: momentum buffer " + std::to_string(i) + " has shape " +
                       buffers[i].shape().to_string() + " but its parameter has shape " +
                       parameters_[i].shape().to_string());
  buffers_ = std::move(buffers);
  steps_ = steps;
}

template class SGD<float>;
template class SGD<double>;

}  // namespace tapegrad
