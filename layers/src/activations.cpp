#include "tapegrad/layers/activations.hpp"

#include <cstdio>
#include <cstdlib>

#include "tapegrad/autodiff/softmax.hpp"

namespace tapegrad::nn {
namespace {
// A double as Python prints a float in a module's repr: 0.01, 1.0.
std::string repr(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  std::string s = text;
  for (int digits = 1; digits <= 17; ++digits) {  // the shortest text that reads back the same
    std::snprintf(text, sizeof text, "%.*g", digits, v);
    if (std::strtod(text, nullptr) == v) {
      s = text;
      break;
    }
  }
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}
}  // namespace

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::relu:
      return "relu";
    case Activation::sigmoid:
      return "sigmoid";
    case Activation::tanh:
      return "tanh";
    case Activation::leaky_relu:
      return "leaky_relu";
    case Activation::elu:
      return "elu";
    case Activation::gelu:
      return "gelu";
    case Activation::silu:
      return "silu";
  }
  return "";
}

template <class T>
std::shared_ptr<Module<T>> make_activation(Activation a) {
  switch (a) {
    case Activation::relu:
      return std::make_shared<ReLU<T>>();
    case Activation::sigmoid:
      return std::make_shared<Sigmoid<T>>();
    case Activation::tanh:
      return std::make_shared<Tanh<T>>();
    case Activation::leaky_relu:
      return std::make_shared<LeakyReLU<T>>();
    case Activation::elu:
      return std::make_shared<ELU<T>>();
    case Activation::gelu:
      return std::make_shared<GELU<T>>();
    case Activation::silu:
      return std::make_shared<SiLU<T>>();
  }
  return nullptr;
}

template <class T>
Var<T> LeakyReLU<T>::forward(const Var<T>& x) {
  return leaky_relu(x, static_cast<T>(slope_));
}
template <class T>
std::string LeakyReLU<T>::name() const {
  return "LeakyReLU(negative_slope=" + repr(slope_) + ")";
}
template <class T>
Var<T> ELU<T>::forward(const Var<T>& x) {
  return elu(x, static_cast<T>(alpha_));
}
template <class T>
std::string ELU<T>::name() const {
  return "ELU(alpha=" + repr(alpha_) + ")";
}
template <class T>
std::string GELU<T>::name() const {
  return approximate_ == GeluApproximation::tanh ? "GELU(approximate='tanh')"
                                                 : "GELU(approximate='none')";
}
template <class T>
Var<T> Softmax<T>::forward(const Var<T>& x) {
  return softmax(x, dim_);
}
template <class T>
Var<T> LogSoftmax<T>::forward(const Var<T>& x) {
  return log_softmax(x, dim_);
}

#define TAPEGRAD_INSTANTIATE(T)                                       \
  template std::shared_ptr<Module<T>> make_activation<T>(Activation); \
  template class LeakyReLU<T>;                                        \
  template class ELU<T>;                                              \
  template class GELU<T>;                                             \
  template class Softmax<T>;                                          \
  template class LogSoftmax<T>;
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad::nn
