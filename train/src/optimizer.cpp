#include "tapegrad/train/optimizer.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "tapegrad/layers/safetensors.hpp"

namespace tapegrad {

template <class T>
void Optimizer<T>::zero_grad() {
  for (Group& g : groups_)
    for (Var<T>& p : g.parameters) p.zero_grad();
}

template <class T>
const std::vector<Var<T>>& Optimizer<T>::parameters(std::size_t group) const {
  return groups_.at(group).parameters;
}

template <class T>
std::vector<Var<T>> Optimizer<T>::all_parameters() const {
  std::vector<Var<T>> all;
  for (const Group& g : groups_) all.insert(all.end(), g.parameters.begin(), g.parameters.end());
  return all;
}

template <class T>
double Optimizer<T>::lr(std::size_t group) const {
  return groups_.at(group).lr;
}

template <class T>
double Optimizer<T>::initial_lr(std::size_t group) const {
  return groups_.at(group).initial_lr;
}

template <class T>
void Optimizer<T>::set_lr(std::size_t group, double lr) {
  if (!(lr >= 0))
    throw std::invalid_argument(name() + ": learning rate must be >= 0, got " + std::to_string(lr));
  groups_.at(group).lr = lr;
}

template <class T>
void Optimizer<T>::set_lr(double lr) {
  for (std::size_t g = 0; g < groups_.size(); ++g) set_lr(g, lr);
}

template <class T>
void Optimizer<T>::scale_lr(double factor) {
  for (std::size_t g = 0; g < groups_.size(); ++g) set_lr(g, factor * groups_[g].initial_lr);
}

template <class T>
double Optimizer<T>::weight_decay(std::size_t group) const {
  return groups_.at(group).weight_decay;
}

template <class T>
void Optimizer<T>::add_group(std::vector<Var<T>> parameters, double lr, double weight_decay) {
  const std::string where = name() + ": parameter group " + std::to_string(groups_.size());
  if (!(lr >= 0))
    throw std::invalid_argument(where + ": learning rate must be >= 0, got " + std::to_string(lr));
  if (!(weight_decay >= 0))
    throw std::invalid_argument(where + ": weight decay must be >= 0, got " +
                                std::to_string(weight_decay));
  for (std::size_t j = 0; j < parameters.size(); ++j)
    if (!parameters[j].defined() || !parameters[j].is_leaf())
      throw std::invalid_argument(where + ": parameter " + std::to_string(j) + " is not a leaf");
  for (const Group& g : groups_)
    for (const Var<T>& p : g.parameters)
      for (const Var<T>& q : parameters)
        if (p.node() == q.node())
          throw std::invalid_argument(where + ": a parameter appears in more than one group");
  const std::size_t first = states_.size();
  states_.resize(first + parameters.size());
  groups_.push_back({std::move(parameters), lr, lr, weight_decay, first});
}

template <class T>
Tensor<T>& Optimizer<T>::state_tensor(std::size_t i, const std::string& key, T initial,
                                      bool* made) {
  ParameterState& s = states_[i];
  for (auto& [name, tensor] : s.tensors)
    if (name == key) {
      if (made) *made = false;
      return tensor;
    }
  const Var<T> p = [&] {
    for (const Group& g : groups_)
      if (i < g.first + g.parameters.size()) return g.parameters[i - g.first];
    throw std::logic_error(name() + ": no parameter " + std::to_string(i));
  }();
  s.tensors.emplace_back(key, Tensor<T>::full(p.shape(), initial));
  if (made) *made = true;
  return s.tensors.back().second;
}

template <class T>
OptimizerState<T> Optimizer<T>::state() const {
  OptimizerState<T> out;
  for (std::size_t i = 0; i < states_.size(); ++i) {
    const ParameterState& s = states_[i];
    for (const auto& [key, tensor] : s.tensors)
      out.tensors.emplace_back(std::to_string(i) + "." + key, tensor);
    if (s.steps > 0) out.counts.emplace_back(std::to_string(i) + ".step", s.steps);
  }
  return out;
}

template <class T>
void Optimizer<T>::load_state(const OptimizerState<T>& state) {
  // Every name the optimiser may hold: "<i>.<state name>" for each parameter of each group.
  std::map<std::string, std::pair<std::size_t, std::string>> known;  // name → (i, key)
  std::vector<Shape> shapes(states_.size());
  for (std::size_t g = 0; g < groups_.size(); ++g)
    for (std::size_t j = 0; j < groups_[g].parameters.size(); ++j) {
      const std::size_t i = groups_[g].first + j;
      shapes[i] = groups_[g].parameters[j].shape();
      for (const std::string& key : state_names(g)) known[std::to_string(i) + "." + key] = {i, key};
    }
  std::vector<ParameterState> loaded(states_.size());
  for (const auto& [name, tensor] : state.tensors) {
    const auto it = known.find(name);
    if (it == known.end())
      throw std::invalid_argument(this->name() + ": the state holds " + quote(name) +
                                  ", which this optimiser's parameters do not have");
    const auto& [i, key] = it->second;
    if (tensor.shape() != shapes[i])
      throw ShapeError(this->name() + ": state " + quote(name) + " has shape " +
                       tensor.shape().to_string() + " but parameter " + std::to_string(i) +
                       " has shape " + shapes[i].to_string());
    for (const auto& [other, unused] : loaded[i].tensors)
      if (other == key)
        throw std::invalid_argument(this->name() + ": state " + quote(name) + " appears twice");
    loaded[i].tensors.emplace_back(key, tensor);
  }
  for (const auto& [name, count] : state.counts) {
    const std::size_t dot = name.find('.');
    std::size_t i = states_.size();
    if (dot != std::string::npos && name.substr(dot) == ".step" &&
        name.find_first_not_of("0123456789") == dot && dot > 0 && dot < 20)
      i = std::stoul(name.substr(0, dot));
    if (i >= states_.size())
      throw std::invalid_argument(this->name() + ": the state holds the count " + quote(name) +
                                  ", which this optimiser's parameters do not have");
    loaded[i].steps = count;
  }
  // A parameter that has stepped holds all of its state tensors; one that has not, none.
  for (std::size_t g = 0; g < groups_.size(); ++g)
    for (std::size_t j = 0; j < groups_[g].parameters.size(); ++j) {
      const std::size_t i = groups_[g].first + j;
      const std::size_t expected = state_names(g).size();
      if (!loaded[i].tensors.empty() && loaded[i].tensors.size() != expected)
        throw std::invalid_argument(this->name() + ": the state of parameter " + std::to_string(i) +
                                    " is incomplete (" + std::to_string(loaded[i].tensors.size()) +
                                    " of " + std::to_string(expected) + " tensors)");
    }
  states_ = std::move(loaded);
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace tapegrad
