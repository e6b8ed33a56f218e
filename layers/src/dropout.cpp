#include "tapegrad/layers/dropout.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>

#include "tapegrad/autodiff/binary.hpp"

namespace tapegrad::nn {

template <class T>
Dropout<T>::Dropout(double p, Generator& g)
    : p_(p), stream_(static_cast<std::uint64_t>(g.uniform() * 0x1.0p53)) {
  if (!(p >= 0 && p <= 1))
    throw std::invalid_argument("Dropout: probability has to be between 0 and 1, but got " +
                                std::to_string(p));
  this->register_generator("stream", stream_);
}

template <class T>
Var<T> Dropout<T>::forward(const Var<T>& x) {
  if (!this->is_training() || p_ == 0) return x;
  Tensor<T> mask(x.shape());
  const T keep = p_ == 1 ? T(0) : static_cast<T>(1 / (1 - p_));
  // Each draw of 64 bits decides two elements: an element is dropped when its 32 bits, read as
  // u / 2^32, fall below p (p = 1 drops all: 2^32 exceeds every u).
  const std::uint64_t threshold = static_cast<std::uint64_t>(std::ldexp(p_, 32));
  const std::size_t n = mask.numel();
  T* m = mask.data();
  for (std::size_t k = 0; k < n; k += 2) {
    const std::uint64_t r = stream_.bits();
    m[k] = (r >> 32) < threshold ? T(0) : keep;
    if (k + 1 < n) m[k + 1] = (r & 0xffffffffu) < threshold ? T(0) : keep;
  }
  return x * Var<T>(std::move(mask));
}

template <class T>
std::string Dropout<T>::name() const {
  char text[64];
  std::snprintf(text, sizeof text, "Dropout(p=%g, inplace=False)", p_);
  return text;
}

template class Dropout<float>;
template class Dropout<double>;

}  // namespace tapegrad::nn
