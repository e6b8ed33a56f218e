#include "tapegrad/layers/normalization.hpp"

#include <cstdio>
#include <stdexcept>

#include "tapegrad/autodiff/normalization.hpp"

namespace tapegrad::nn {
namespace {
// A double as PyTorch prints it in a module's repr: 1e-05, 0.1.
std::string repr(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}
}  // namespace

template <class T>
BatchNorm1d<T>::BatchNorm1d(std::size_t features, double eps, std::optional<double> momentum,
                            bool affine, bool track_running_stats)
    : features_(features), eps_(eps), momentum_(momentum), track_(track_running_stats) {
  if (features == 0) throw std::invalid_argument("BatchNorm1d: num_features must be positive");
  if (!(eps > 0)) throw std::invalid_argument("BatchNorm1d: eps must be positive");
  if (momentum && !(*momentum >= 0 && *momentum <= 1))
    throw std::invalid_argument("BatchNorm1d: momentum must be in [0, 1]");
  if (affine) {
    weight = this->register_parameter("weight", Tensor<T>::ones({features}));
    bias = this->register_parameter("bias", Tensor<T>::zeros({features}));
  }
  if (track_) {
    running_mean = Tensor<T>::zeros({features});
    running_var = Tensor<T>::ones({features});
    num_batches_tracked = Tensor<T>::scalar(0);
    this->register_buffer("running_mean", running_mean);
    this->register_buffer("running_var", running_var);
    this->register_buffer("num_batches_tracked", num_batches_tracked, true);
  }
}

template <class T>
Var<T> BatchNorm1d<T>::forward(const Var<T>& x) {
  output_shape(x.shape());
  if (!this->is_training() && track_)
    return batch_norm_eval(x, running_mean, running_var, weight, bias, eps_);
  if (!this->is_training() || !track_) return batch_norm(x, weight, bias, eps_);
  Tensor<T> mean, var;
  Var<T> y = batch_norm(x, weight, bias, eps_, &mean, &var);
  num_batches_tracked[0] += T(1);
  if (mean.defined()) {
    const double m = momentum_ ? *momentum_ : 1.0 / static_cast<double>(num_batches_tracked[0]);
    const T keep = static_cast<T>(1 - m), take = static_cast<T>(m);
    for (std::size_t c = 0; c < features_; ++c) {
      running_mean[c] = keep * running_mean[c] + take * mean[c];
      running_var[c] = keep * running_var[c] + take * var[c];
    }
  }
  return y;
}

template <class T>
std::string BatchNorm1d<T>::name() const {
  return "BatchNorm1d(" + std::to_string(features_) + ", eps=" + repr(eps_) +
         ", momentum=" + (momentum_ ? repr(*momentum_) : "None") +
         ", affine=" + (weight.defined() ? "True" : "False") +
         ", track_running_stats=" + (track_ ? "True" : "False") + ")";
}

template <class T>
Shape BatchNorm1d<T>::output_shape(const Shape& input) const {
  if ((input.rank() != 2 && input.rank() != 3) || input[1] != features_)
    throw ShapeError(name() + ": expects input [N, " + std::to_string(features_) + "] or [N, " +
                     std::to_string(features_) + ", L], got " + input.to_string());
  return input;
}

template <class T>
LayerNorm<T>::LayerNorm(const Shape& normalized_shape, double eps, bool elementwise_affine)
    : shape_(normalized_shape), eps_(eps) {
  if (normalized_shape.rank() == 0 || normalized_shape.numel() == 0)
    throw std::invalid_argument("LayerNorm: normalized_shape " + normalized_shape.to_string() +
                                " must have at least one dimension and no empty one");
  if (!(eps > 0)) throw std::invalid_argument("LayerNorm: eps must be positive");
  if (elementwise_affine) {
    weight = this->register_parameter("weight", Tensor<T>::ones(normalized_shape));
    bias = this->register_parameter("bias", Tensor<T>::zeros(normalized_shape));
  }
}

template <class T>
Var<T> LayerNorm<T>::forward(const Var<T>& x) {
  output_shape(x.shape());
  return layer_norm(x, shape_, weight, bias, eps_);
}

template <class T>
std::string LayerNorm<T>::name() const {
  std::string dims = "(";  // a Python tuple: (64,) or (4, 8)
  for (std::size_t i = 0; i < shape_.rank(); ++i)
    dims += (i ? ", " : "") + std::to_string(shape_[i]);
  dims += shape_.rank() == 1 ? ",)" : ")";
  return "LayerNorm(" + dims + ", eps=" + repr(eps_) +
         ", elementwise_affine=" + (weight.defined() ? "True" : "False") + ")";
}

template <class T>
Shape LayerNorm<T>::output_shape(const Shape& input) const {
  bool fits = input.rank() >= shape_.rank();
  for (std::size_t i = 0; fits && i < shape_.rank(); ++i)
    fits = input[input.rank() - shape_.rank() + i] == shape_[i];
  if (!fits)
    throw ShapeError(name() + ": expects an input ending with " + shape_.to_string() + ", got " +
                     input.to_string());
  return input;
}

template class BatchNorm1d<float>;
template class BatchNorm1d<double>;
template class LayerNorm<float>;
template class LayerNorm<double>;

}  // namespace tapegrad::nn
