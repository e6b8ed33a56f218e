// The layers, PyTorch-style: weights have PyTorch's layouts and names, so a Sequential of these
// saves to a file that loads into the same torch.nn.Sequential, and back.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad/layers/init.hpp"
#include "tapegrad/layers/module.hpp"

namespace tapegrad::nn {

// y = x Wᵀ + b.  x: [N, in] → y: [N, out]; weight [out, in], bias [out] (zero at start).
template <class T>
class Linear : public Module<T> {
 public:
  Linear(std::size_t in, std::size_t out, bool bias, Generator& g, Init init = Init::he_normal);
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Var<T> weight, bias;  // bias is undefined without one

 private:
  std::size_t in_, out_;
};

// Elementwise activations: same shape in and out.
template <class T>
class ReLU : public Module<T> {
 public:
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override { return "ReLU()"; }
  Shape output_shape(const Shape& input) const override { return input; }
};
template <class T>
class Sigmoid : public Module<T> {
 public:
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override { return "Sigmoid()"; }
  Shape output_shape(const Shape& input) const override { return input; }
};
template <class T>
class Tanh : public Module<T> {
 public:
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override { return "Tanh()"; }
  Shape output_shape(const Shape& input) const override { return input; }
};

// Merges axes start..end (default: all but the batch axis) into one: [N, C, L] → [N, C·L].
template <class T>
class Flatten : public Module<T> {
 public:
  explicit Flatten(long start_axis = 1, long end_axis = -1) : start_(start_axis), end_(end_axis) {}
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;

 private:
  long start_, end_;
};

// Children applied in order, named "0", "1", … like torch.nn.Sequential.
template <class T>
class Sequential : public Module<T> {
 public:
  Sequential() = default;
  // Appends a layer; returns *this for chaining.
  Sequential& add(std::shared_ptr<Module<T>> layer);
  template <class Layer, class... Args>
  Sequential& emplace(Args&&... args) {
    return add(std::make_shared<Layer>(std::forward<Args>(args)...));
  }
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override { return "Sequential"; }
  Shape output_shape(const Shape& input) const override;
  std::size_t size() const { return this->children().size(); }
};

enum class Activation { relu, sigmoid, tanh };

// The default initialisation for a layer followed by `a`: He for ReLU, Glorot for σ and tanh.
Init default_init(Activation a);

// A multilayer perceptron: Linear(sizes[0] → sizes[1]), activation, …, Linear(… → sizes.back()),
// with no activation after the last layer (it feeds a softmax or a loss). Names: 0.weight,
// 0.bias, 2.weight, … as in PyTorch. Every Linear gets default_init(activation).
template <class T>
std::shared_ptr<Sequential<T>> mlp(const std::vector<std::size_t>& sizes, Activation activation,
                                   Generator& g);

}  // namespace tapegrad::nn
