// Activation layers with torch.nn's names: same shape in and out, no parameters.
#pragma once

#include <memory>
#include <string>

#include "tapegrad/autodiff/elementwise.hpp"
#include "tapegrad/layers/module.hpp"

namespace tapegrad::nn {

// The elementwise activations by name, for the builders and the command line.
enum class Activation { relu, sigmoid, tanh, leaky_relu, elu, gelu, silu };
// "relu", "tanh", … (the model options' spelling).
const char* activation_name(Activation a);
// The layer for `a` with PyTorch's default settings (LeakyReLU's slope 0.01, ELU's α = 1, exact
// GELU).
template <class T>
std::shared_ptr<Module<T>> make_activation(Activation a);

// The base of the activation layers: output shape = input shape.
template <class T>
class Elementwise : public Module<T> {
 public:
  Shape output_shape(const Shape& input) const override { return input; }
};

template <class T>
class ReLU : public Elementwise<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return relu(x); }
  std::string name() const override { return "ReLU()"; }
};
template <class T>
class Sigmoid : public Elementwise<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return sigmoid(x); }
  std::string name() const override { return "Sigmoid()"; }
};
template <class T>
class Tanh : public Elementwise<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return tanh(x); }
  std::string name() const override { return "Tanh()"; }
};
template <class T>
class SiLU : public Elementwise<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return silu(x); }
  std::string name() const override { return "SiLU()"; }
};
// y = x: a placeholder layer (torch.nn.Identity).
template <class T>
class Identity : public Elementwise<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return x; }
  std::string name() const override { return "Identity()"; }
};
// ln(1 + eˣ). PyTorch's Softplus also takes beta and threshold; this is its default (beta 1;
// above the threshold of 20 PyTorch returns x itself, which differs from ln(1 + eˣ) by < 2e-9).
template <class T>
class Softplus : public Elementwise<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return softplus(x); }
  std::string name() const override { return "Softplus(beta=1, threshold=20)"; }
};
template <class T>
class LeakyReLU : public Elementwise<T> {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : slope_(negative_slope) {}
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override;

 private:
  double slope_;
};
template <class T>
class ELU : public Elementwise<T> {
 public:
  explicit ELU(double alpha = 1.0) : alpha_(alpha) {}
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override;

 private:
  double alpha_;
};
template <class T>
class GELU : public Elementwise<T> {
 public:
  explicit GELU(GeluApproximation approximate = GeluApproximation::none)
      : approximate_(approximate) {}
  Var<T> forward(const Var<T>& x) override { return gelu(x, approximate_); }
  std::string name() const override;

 private:
  GeluApproximation approximate_;
};
// softmax / log_softmax along `dim` (torch.nn.Softmax(dim), LogSoftmax(dim)).
template <class T>
class Softmax : public Elementwise<T> {
 public:
  explicit Softmax(long dim = -1) : dim_(dim) {}
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override { return "Softmax(dim=" + std::to_string(dim_) + ")"; }

 private:
  long dim_;
};
template <class T>
class LogSoftmax : public Elementwise<T> {
 public:
  explicit LogSoftmax(long dim = -1) : dim_(dim) {}
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override { return "LogSoftmax(dim=" + std::to_string(dim_) + ")"; }

 private:
  long dim_;
};

}  // namespace tapegrad::nn
