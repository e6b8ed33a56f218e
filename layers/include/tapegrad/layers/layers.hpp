// The layers, PyTorch-style: weights have PyTorch's layouts and names, so a Sequential of these
// saves to a file that loads into the same torch.nn.Sequential, and back.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad/autodiff/conv.hpp"
#include "tapegrad/layers/activations.hpp"
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

// 1-D convolution: x [N, C_in, L] → [N, C_out, L_out]; weight [out, in, K], bias [out].
template <class T>
class Conv1d : public Module<T> {
 public:
  Conv1d(std::size_t in, std::size_t out, std::size_t kernel, Generator& g, std::size_t stride = 1,
         Padding padding = Padding(0), std::size_t dilation = 1, bool bias = true,
         Init init = Init::he_normal);
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Var<T> weight, bias;

 private:
  std::size_t in_, out_, kernel_, stride_, dilation_;
  Padding padding_;
};

// 1-D max or average pooling over the last axis (stride 0: the kernel size).
enum class PoolKind { max, average };
template <class T, PoolKind Kind>
class Pool1d : public Module<T> {
 public:
  explicit Pool1d(std::size_t kernel, std::size_t stride = 0, std::size_t padding = 0)
      : kernel_(kernel), stride_(stride ? stride : kernel), padding_(padding) {}
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;

 private:
  std::size_t kernel_, stride_, padding_;
};
template <class T>
using MaxPool1d = Pool1d<T, PoolKind::max>;
template <class T>
using AvgPool1d = Pool1d<T, PoolKind::average>;

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

// What the builders put around each hidden layer's activation: a normalisation before it
// (BatchNorm1d over the features or channels, or LayerNorm over a sample's values) and a
// Dropout of that probability after it (0: none).
enum class Norm { none, batch, layer };
struct BlockOptions {
  Norm norm = Norm::none;
  double dropout = 0.0;
};

// The default initialisation for a layer followed by `a`: He for ReLU and its relatives (leaky
// ReLU, ELU, GELU, SiLU), Glorot for σ and tanh.
Init default_init(Activation a);

// A multilayer perceptron: Linear(sizes[0] → sizes[1]), [norm], activation, [Dropout], …,
// Linear(… → sizes.back()), with nothing after the last layer (it feeds a softmax or a loss).
// Names as in the same torch.nn.Sequential: 0.weight, 0.bias, 2.weight, … without options. Every
// Linear gets default_init(activation).
template <class T>
std::shared_ptr<Sequential<T>> mlp(const std::vector<std::size_t>& sizes, Activation activation,
                                   Generator& g, const BlockOptions& options = {});

// A 1-D CNN: for each entry of `channels` after the first, Conv1d(previous → c, kernel,
// padding kernel/2) → [norm] → activation (ReLU unless given) → MaxPool1d(pool); then Flatten →
// [Dropout]; then for each entry h of `hidden` Linear(→ h) → [norm] → activation → [Dropout] (as
// in mlp, default_init(activation)); then Linear(→ classes). Input [N, channels[0], length].
// cnn1d({28, 64, 128}, 28, 10, 3, 2) is the cnn-fashion model; its names match
// torch.nn.Sequential's (0.weight, 3.weight, 7.weight, …).
template <class T>
std::shared_ptr<Sequential<T>> cnn1d(const std::vector<std::size_t>& channels, std::size_t length,
                                     std::size_t classes, std::size_t kernel, std::size_t pool,
                                     Generator& g, const BlockOptions& options = {},
                                     Activation activation = Activation::relu,
                                     const std::vector<std::size_t>& hidden = {});

}  // namespace tapegrad::nn
