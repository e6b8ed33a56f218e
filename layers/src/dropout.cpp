#include "tapegrad/layers/dropout.hpp"

#include <algorithm>
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
  // Each draw of 64 bits decides two elements, the high half the first: an element is dropped
  // when its 32 bits, read as u / 2^32, fall below p (p = 1 drops all: 2^32 exceeds every u). An
  // odd count's last draw decides one. The draws come in runs of up to 256 (fill_bits).
  const std::uint64_t threshold = static_cast<std::uint64_t>(std::ldexp(p_, 32));
  const std::size_t n = mask.numel();
  T* m = mask.data();
  constexpr std::size_t run = 256;
  std::uint64_t draws[run];
  for (std::size_t k = 0; k < n;) {
    const std::size_t count = std::min(run, (n - k + 1) / 2);
    stream_.fill_bits(draws, count);
    const std::size_t pairs = std::min(count, (n - k) / 2);  // draws that decide two elements
    T* out = m + k;
    for (std::size_t j = 0; j < pairs; ++j) {
      out[2 * j] = (draws[j] >> 32) < threshold ? T(0) : keep;
      out[2 * j + 1] = (draws[j] & 0xffffffffu) < threshold ? T(0) : keep;
    }
    if (pairs < count) out[2 * pairs] = (draws[pairs] >> 32) < threshold ? T(0) : keep;
    k += 2 * count;
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
