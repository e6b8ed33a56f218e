// Module: the base of every layer and model. A module owns named parameters (leaf Vars that
// require gradients), named buffers (state that is saved and loaded but not trained, such as
// BatchNorm's running statistics) and child modules; names are hierarchical ("0.weight",
// "1.running_mean") and follow PyTorch's, so parameter files move between the two unchanged.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/autodiff/var.hpp"
#include "tapegrad/layers/init.hpp"

namespace tapegrad::nn {

// A buffer: a tensor the module owns (one of its members), and whether it holds a count
// (stored as I64, as PyTorch stores num_batches_tracked).
template <class T>
struct Buffer {
  Tensor<T>* tensor;
  bool is_count;
};

template <class T>
class Module {
 public:
  Module() = default;
  // Buffers point into the module itself: a module is neither copied nor moved.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // The layer's computation. x's leading axis is the batch.
  virtual Var<T> forward(const Var<T>& x) = 0;
  Var<T> operator()(const Var<T>& x) { return forward(x); }

  // How PyTorch prints the layer, e.g. "Linear(in_features=784, out_features=256, bias=True)".
  virtual std::string name() const = 0;
  // The output shape for an input of shape `input` (batch axis included); throws a ShapeError
  // naming the layer when the input does not fit.
  virtual Shape output_shape(const Shape& input) const = 0;

  // Every parameter, this module's own first, then each child's under "child.", in order.
  std::vector<std::pair<std::string, Var<T>>> named_parameters() const;
  // The same handles without names; they share nodes with the module, so updating
  // p.value() updates the module.
  std::vector<Var<T>> parameters() const;
  std::size_t parameter_count() const;
  // Every buffer, this module's own first, then each child's under "child.", in order.
  std::vector<std::pair<std::string, Buffer<T>>> named_buffers() const;
  // Every random stream the module draws from while it runs (Dropout's), named likewise;
  // checkpoints save their states so that a resumed run draws the same numbers.
  std::vector<std::pair<std::string, Generator*>> named_generators() const;
  void zero_grad();

  // Training or evaluation mode, for this module and all children.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // A table: each child (or this module) with its output shape for `input` and its parameter
  // count, and the total.
  std::string summary(const Shape& input) const;

  const std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>>& children() const {
    return children_;
  }

 protected:
  // Adds a trainable parameter holding `value` and returns its handle.
  Var<T> register_parameter(const std::string& name, Tensor<T> value);
  void register_module(const std::string& name, std::shared_ptr<Module<T>> child);
  // Registers `tensor`, a member of the derived module, as the buffer `name`.
  void register_buffer(const std::string& name, Tensor<T>& tensor, bool is_count = false);
  // Registers `generator`, a member of the derived module, as the random stream `name`.
  void register_generator(const std::string& name, Generator& generator);

 private:
  std::vector<std::pair<std::string, Var<T>>> params_;
  std::vector<std::pair<std::string, Buffer<T>>> buffers_;
  std::vector<std::pair<std::string, Generator*>> generators_;
  std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> children_;
  bool training_ = true;
};

extern template class Module<float>;
extern template class Module<double>;

}  // namespace tapegrad::nn
