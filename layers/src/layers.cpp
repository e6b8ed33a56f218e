#include "tapegrad/layers/layers.hpp"

#include <string>

#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/layers/dropout.hpp"
#include "tapegrad/layers/normalization.hpp"

namespace tapegrad::nn {

template <class T>
Linear<T>::Linear(std::size_t in, std::size_t out, bool has_bias, Generator& g, Init init)
    : in_(in), out_(out) {
  if (in == 0 || out == 0)
    throw std::invalid_argument("Linear: sizes must be positive, got in " + std::to_string(in) +
                                ", out " + std::to_string(out));
  Tensor<T> w(Shape{out, in});
  initialize(w, init, g);
  weight = this->register_parameter("weight", std::move(w));
  if (has_bias) bias = this->register_parameter("bias", Tensor<T>::zeros({out}));
}

template <class T>
Var<T> Linear<T>::forward(const Var<T>& x) {
  return linear(x, weight, bias);
}

template <class T>
std::string Linear<T>::name() const {
  return "Linear(in_features=" + std::to_string(in_) + ", out_features=" + std::to_string(out_) +
         ", bias=" + (bias.defined() ? "True" : "False") + ")";
}

template <class T>
Shape Linear<T>::output_shape(const Shape& input) const {
  if (input.rank() != 2 || input[1] != in_)
    throw ShapeError(name() + ": expects input [N, " + std::to_string(in_) + "], got " +
                     input.to_string());
  return Shape{input[0], out_};
}

template <class T>
Conv1d<T>::Conv1d(std::size_t in, std::size_t out, std::size_t kernel, Generator& g,
                  std::size_t stride, Padding padding, std::size_t dilation, bool has_bias,
                  Init init)
    : in_(in), out_(out), kernel_(kernel), stride_(stride), dilation_(dilation), padding_(padding) {
  if (in == 0 || out == 0 || kernel == 0)
    throw std::invalid_argument("Conv1d: channels and kernel must be positive, got in " +
                                std::to_string(in) + ", out " + std::to_string(out) + ", kernel " +
                                std::to_string(kernel));
  Tensor<T> w(Shape{out, in, kernel});
  initialize(w, init, g);
  weight = this->register_parameter("weight", std::move(w));
  if (has_bias) bias = this->register_parameter("bias", Tensor<T>::zeros({out}));
}

template <class T>
Var<T> Conv1d<T>::forward(const Var<T>& x) {
  return conv1d(x, weight, bias, stride_, padding_, dilation_);
}

template <class T>
std::string Conv1d<T>::name() const {
  return "Conv1d(" + std::to_string(in_) + ", " + std::to_string(out_) +
         ", kernel_size=" + std::to_string(kernel_) + ", stride=" + std::to_string(stride_) +
         ", padding=" + padding_.to_string() + ", dilation=" + std::to_string(dilation_) +
         (bias.defined() ? "" : ", bias=False") + ")";
}

template <class T>
Shape Conv1d<T>::output_shape(const Shape& input) const {
  if (input.rank() != 3 || input[1] != in_)
    throw ShapeError(name() + ": expects input [N, " + std::to_string(in_) + ", L], got " +
                     input.to_string());
  return Shape{input[0], out_,
               conv1d_output_length(input[2], kernel_, stride_, padding_, dilation_)};
}

template <class T, PoolKind Kind>
Var<T> Pool1d<T, Kind>::forward(const Var<T>& x) {
  return Kind == PoolKind::max ? max_pool1d(x, kernel_, stride_, padding_)
                               : avg_pool1d(x, kernel_, stride_, padding_);
}

template <class T, PoolKind Kind>
std::string Pool1d<T, Kind>::name() const {
  return std::string(Kind == PoolKind::max ? "MaxPool1d" : "AvgPool1d") +
         "(kernel_size=" + std::to_string(kernel_) + ", stride=" + std::to_string(stride_) +
         ", padding=" + std::to_string(padding_) + ")";
}

template <class T, PoolKind Kind>
Shape Pool1d<T, Kind>::output_shape(const Shape& input) const {
  if (input.rank() != 3) throw ShapeError(name() + ": expects [N, C, L], got " + input.to_string());
  return Shape{input[0], input[1], pool1d_output_length(input[2], kernel_, stride_, padding_)};
}

template <class T>
Var<T> Flatten<T>::forward(const Var<T>& x) {
  return flatten(x, start_, end_);
}

template <class T>
std::string Flatten<T>::name() const {
  return "Flatten(start_dim=" + std::to_string(start_) + ", end_dim=" + std::to_string(end_) + ")";
}

template <class T>
Shape Flatten<T>::output_shape(const Shape& s) const {
  const std::size_t a = normalize_axis("Flatten", start_, s);
  const std::size_t b = normalize_axis("Flatten", end_, s);
  Shape out;
  std::size_t merged = 1;
  for (std::size_t i = 0; i < s.rank(); ++i) {
    if (i < a || i > b) out.push_back(s[i]);
    if (i >= a && i <= b) merged *= s[i];
    if (i == b) out.push_back(merged);
  }
  return out;
}

template <class T>
Sequential<T>& Sequential<T>::add(std::shared_ptr<Module<T>> layer) {
  this->register_module(std::to_string(size()), std::move(layer));
  return *this;
}

template <class T>
Var<T> Sequential<T>::forward(const Var<T>& x) {
  Var<T> h = x;
  for (const auto& [name, layer] : this->children()) h = layer->forward(h);
  return h;
}

template <class T>
Shape Sequential<T>::output_shape(const Shape& input) const {
  Shape s = input;
  for (const auto& [name, layer] : this->children()) s = layer->output_shape(s);
  return s;
}

Init default_init(Activation a) {
  return a == Activation::sigmoid || a == Activation::tanh ? Init::glorot_normal : Init::he_normal;
}

namespace {
// The normalisation of `options` for an output of shape `shape` (batch axis first), if any.
template <class T>
void add_norm(Sequential<T>& model, const BlockOptions& options, const Shape& shape) {
  if (options.norm == Norm::batch) model.add(std::make_shared<BatchNorm1d<T>>(shape[1]));
  if (options.norm == Norm::layer) {
    Shape sample;
    for (std::size_t d = 1; d < shape.rank(); ++d) sample.push_back(shape[d]);
    model.add(std::make_shared<LayerNorm<T>>(sample));
  }
}
template <class T>
void add_dropout(Sequential<T>& model, const BlockOptions& options, Generator& g) {
  if (options.dropout > 0) model.add(std::make_shared<Dropout<T>>(options.dropout, g));
}
}  // namespace

template <class T>
std::shared_ptr<Sequential<T>> mlp(const std::vector<std::size_t>& sizes, Activation activation,
                                   Generator& g, const BlockOptions& options) {
  if (sizes.size() < 2)
    throw std::invalid_argument("mlp: needs at least an input and an output size");
  auto model = std::make_shared<Sequential<T>>();
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    model->add(
        std::make_shared<Linear<T>>(sizes[i], sizes[i + 1], true, g, default_init(activation)));
    if (i + 2 == sizes.size()) break;
    add_norm(*model, options, Shape{1, sizes[i + 1]});
    model->add(make_activation<T>(activation));
    add_dropout(*model, options, g);
  }
  return model;
}

template <class T>
std::shared_ptr<Sequential<T>> cnn1d(const std::vector<std::size_t>& channels, std::size_t length,
                                     std::size_t classes, std::size_t kernel, std::size_t pool,
                                     Generator& g, const BlockOptions& options,
                                     Activation activation,
                                     const std::vector<std::size_t>& hidden) {
  if (channels.size() < 2) throw std::invalid_argument("cnn1d: needs input and conv channels");
  auto model = std::make_shared<Sequential<T>>();
  for (std::size_t i = 1; i < channels.size(); ++i) {
    model->add(std::make_shared<Conv1d<T>>(channels[i - 1], channels[i], kernel, g, 1, kernel / 2));
    add_norm(*model, options, model->output_shape(Shape{1, channels[0], length}));
    model->add(make_activation<T>(activation));
    model->add(std::make_shared<MaxPool1d<T>>(pool));
  }
  model->add(std::make_shared<Flatten<T>>());
  add_dropout(*model, options, g);
  std::size_t features = model->output_shape(Shape{1, channels[0], length})[1];
  for (std::size_t h : hidden) {
    model->add(std::make_shared<Linear<T>>(features, h, true, g, default_init(activation)));
    add_norm(*model, options, Shape{1, h});
    model->add(make_activation<T>(activation));
    add_dropout(*model, options, g);
    features = h;
  }
  model->add(std::make_shared<Linear<T>>(features, classes, true, g));
  return model;
}

#define TAPEGRAD_INSTANTIATE(T)                                                            \
  template class Linear<T>;                                                                \
  template class Conv1d<T>;                                                                \
  template class Pool1d<T, PoolKind::max>;                                                 \
  template class Pool1d<T, PoolKind::average>;                                             \
  template std::shared_ptr<Sequential<T>> cnn1d(                                           \
      const std::vector<std::size_t>&, std::size_t, std::size_t, std::size_t, std::size_t, \
      Generator&, const BlockOptions&, Activation, const std::vector<std::size_t>&);       \
  template class ReLU<T>;                                                                  \
  template class Sigmoid<T>;                                                               \
  template class Tanh<T>;                                                                  \
  template class Flatten<T>;                                                               \
  template class Sequential<T>;                                                            \
  template std::shared_ptr<Sequential<T>> mlp(const std::vector<std::size_t>&, Activation, \
                                              Generator&, const BlockOptions&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad::nn
