// What the C++ halves of the interop tests share: converting tensors between scalar types and
// reading a stored tensor of either float type.
#pragma once

#include "tapegrad/layers/safetensors.hpp"

namespace interop {

// t's values converted to U, element by element.
template <class U, class T>
tapegrad::Tensor<U> as(const tapegrad::Tensor<T>& t) {
  tapegrad::Tensor<U> r(t.shape());
  for (std::size_t k = 0; k < t.numel(); ++k) r[k] = static_cast<U>(t[k]);
  return r;
}

// The F32 (T = float) or F64 (T = double) data of a stored tensor.
template <class T>
const tapegrad::Tensor<T>& stored(const tapegrad::StoredTensor& s) {
  if constexpr (std::is_same_v<T, float>)
    return s.f32;
  else
    return s.f64;
}

}  // namespace interop
