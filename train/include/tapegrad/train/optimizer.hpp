// Optimizer<T>: what every optimiser shares, as torch.optim.Optimizer has it.
//   - Parameter groups: each a list of parameters with its own options (its own learning rate
//     and weight decay, say no decay on biases); an optimiser built from a plain list has one.
//   - The learning rate of each group, which schedules set between steps.
//   - Per-parameter state as named tensors ("exp_avg", "momentum_buffer", ...) and a step
//     count, keyed by the parameter's index over all groups in order (as PyTorch's state_dict
//     keys them), so a checkpoint saves and restores any optimiser without knowing which.
// step() updates every parameter that has a gradient (others are skipped, and their state and
// step count stay as they are); zero_grad() zeroes the gradients, keeping their buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// A group of parameters and the options they are optimised with (an optimiser's Options
// struct, which has at least `lr` and `weight_decay`).
template <class T, class Options>
struct ParamGroup {
  std::vector<Var<T>> parameters;
  Options options;
};

// An optimiser's state, for checkpoints: tensors named "<parameter index>.<name>" and counts
// named "<parameter index>.step".
template <class T>
struct OptimizerState {
  std::vector<std::pair<std::string, Tensor<T>>> tensors;
  std::vector<std::pair<std::string, std::uint64_t>> counts;
};

template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // One update of every parameter that has a gradient. The rules are elementwise: a large
  // parameter's update is cut into ranges run on tapegrad's threads (parallel_ranges), with the
  // same result on any thread count.
  virtual void step() = 0;
  // The optimiser's name as PyTorch spells it ("SGD", "Adam", ...).
  virtual std::string name() const = 0;

  // Zeroes every parameter's gradient (keeping the buffers, as PyTorch 1.13's
  // zero_grad(set_to_none=False)).
  void zero_grad();

  std::size_t group_count() const { return groups_.size(); }
  const std::vector<Var<T>>& parameters(std::size_t group) const;
  // Every parameter of every group, in order (the indices the state is keyed by).
  std::vector<Var<T>> all_parameters() const;

  // The learning rate of a group now, and the one it was built with (which schedules scale).
  double lr(std::size_t group = 0) const;
  double initial_lr(std::size_t group = 0) const;
  void set_lr(std::size_t group, double lr);
  // Sets every group's learning rate to `lr`.
  void set_lr(double lr);
  // Sets every group's learning rate to factor × its initial one: what a schedule does (its
  // factor at a step is the schedule's rate for a base rate of 1).
  void scale_lr(double factor);
  double weight_decay(std::size_t group) const;

  OptimizerState<T> state() const;
  // Restores a state taken from an optimiser of the same kind over parameters of the same
  // shapes. Strict: an unknown or missing name, or a wrong shape, throws naming it, and then
  // nothing is changed.
  void load_state(const OptimizerState<T>& state);

 protected:
  struct Group {
    std::vector<Var<T>> parameters;
    double lr, initial_lr, weight_decay;
    std::size_t first;  // index of its first parameter over all groups
  };
  // The state of one parameter: named tensors (made on its first step) and its step count.
  struct ParameterState {
    std::vector<std::pair<std::string, Tensor<T>>> tensors;
    std::uint64_t steps = 0;
  };

  // Adds a group (checked: every parameter a defined leaf, lr and weight decay >= 0).
  void add_group(std::vector<Var<T>> parameters, double lr, double weight_decay);
  const Group& group(std::size_t g) const { return groups_[g]; }

  // Parameter i's state tensor `key`, made on first use holding `initial` everywhere (the
  // parameter's shape); `made` says whether this call made it.
  Tensor<T>& state_tensor(std::size_t i, const std::string& key, T initial, bool* made = nullptr);
  // The names of the state tensors a parameter of group g has once it has stepped (load_state
  // checks a state against these).
  virtual std::vector<std::string> state_names(std::size_t group) const = 0;
  ParameterState& parameter_state(std::size_t i) { return states_[i]; }

  // Calls f(i, parameter, group) for every parameter with a gradient.
  template <class F>
  void for_each_with_grad(F&& f) {
    for (std::size_t g = 0; g < groups_.size(); ++g)
      for (std::size_t j = 0; j < groups_[g].parameters.size(); ++j) {
        Var<T>& p = groups_[g].parameters[j];
        if (p.has_grad()) f(groups_[g].first + j, p, g);
      }
  }

 private:
  std::vector<Group> groups_;
  std::vector<ParameterState> states_;
};

extern template class Optimizer<float>;
extern template class Optimizer<double>;

}  // namespace tapegrad
