#include "tapegrad/layers/init.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace tapegrad::nn {

double Generator::uniform() {
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;  // 53 random bits
}

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  constexpr double two_pi = 6.283185307179586476925286766559;
  const double u1 = 1.0 - uniform();  // (0, 1]: the log is finite
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = r * std::sin(two_pi * u2);
  has_spare_ = true;
  return r * std::cos(two_pi * u2);
}

std::string Generator::state() const {
  std::ostringstream s;
  s.precision(17);
  s << engine_ << ' ' << has_spare_ << ' ' << spare_;
  return s.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream s(state);
  Mt19937_64 engine;
  bool has_spare = false;
  double spare = 0;
  s >> engine >> has_spare >> spare;
  if (!s) throw std::invalid_argument("Generator: malformed state");
  engine_ = engine;
  has_spare_ = has_spare;
  spare_ = spare;
}

Fans fans(const Shape& w) {
  if (w.rank() < 2)
    throw ShapeError("fans: a weight needs at least 2 dims ([out, in, ...]), got " + w.to_string());
  double receptive = 1;
  for (std::size_t d = 2; d < w.rank(); ++d) receptive *= static_cast<double>(w[d]);
  return {static_cast<double>(w[1]) * receptive, static_cast<double>(w[0]) * receptive};
}

template <class T>
void normal(Tensor<T>& w, Generator& g, double mean, double stddev) {
  for (T& v : w) v = static_cast<T>(mean + stddev * g.normal());
}

template <class T>
void uniform(Tensor<T>& w, Generator& g, double low, double high) {
  for (T& v : w) v = static_cast<T>(low + (high - low) * g.uniform());
}

template <class T>
void constant(Tensor<T>& w, double value) {
  w.fill(static_cast<T>(value));
}

template <class T>
void he_normal(Tensor<T>& w, Generator& g) {
  normal(w, g, 0.0, std::sqrt(2.0 / fans(w.shape()).in));
}

template <class T>
void he_uniform(Tensor<T>& w, Generator& g) {
  const double limit = std::sqrt(6.0 / fans(w.shape()).in);
  uniform(w, g, -limit, limit);
}

template <class T>
void glorot_normal(Tensor<T>& w, Generator& g) {
  const Fans f = fans(w.shape());
  normal(w, g, 0.0, std::sqrt(2.0 / (f.in + f.out)));
}

template <class T>
void glorot_uniform(Tensor<T>& w, Generator& g) {
  const Fans f = fans(w.shape());
  const double limit = std::sqrt(6.0 / (f.in + f.out));
  uniform(w, g, -limit, limit);
}

template <class T>
void initialize(Tensor<T>& w, Init scheme, Generator& g) {
  switch (scheme) {
    case Init::he_normal:
      return he_normal(w, g);
    case Init::he_uniform:
      return he_uniform(w, g);
    case Init::glorot_normal:
      return glorot_normal(w, g);
    case Init::glorot_uniform:
      return glorot_uniform(w, g);
    case Init::zeros:
      return zeros(w);
  }
}

#define TAPEGRAD_INSTANTIATE(T)                                  \
  template void normal(Tensor<T>&, Generator&, double, double);  \
  template void uniform(Tensor<T>&, Generator&, double, double); \
  template void constant(Tensor<T>&, double);                    \
  template void he_normal(Tensor<T>&, Generator&);               \
  template void he_uniform(Tensor<T>&, Generator&);              \
  template void glorot_normal(Tensor<T>&, Generator&);           \
  template void glorot_uniform(Tensor<T>&, Generator&);          \
  template void initialize(Tensor<T>&, Init, Generator&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad::nn
