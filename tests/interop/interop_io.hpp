// What the C++ halves of the interop tests share: converting tensors between scalar types,
// reading a stored tensor of either float type, and writing the inputs for the PyTorch half.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>

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

// Adds t to f as a float64 tensor named `name`.
inline void add_f64(tapegrad::TensorFile& f, const std::string& name,
                    const tapegrad::Tensor<double>& t) {
  f.tensors.emplace_back(name, tapegrad::StoredTensor{{}, t, {}});
}

// Stores the settings, one per line, as f's metadata "settings", which the PyTorch half reads.
template <class Lines>
void set_settings(tapegrad::TensorFile& f, const Lines& lines) {
  std::string text;
  for (const auto& line : lines) text += std::string(line) + "\n";
  f.metadata["settings"] = text;
}

// The comparisons of one C++ half: how many failed and the largest differences seen, for the
// summary line and the exit status it ends with.
struct Tally {
  int failures = 0;
  double worst64 = 0, worst32 = 0;

  // Records a comparison of the double results (difference d64) and the float ones (d32)
  // against their tolerances; true when both are within them.
  bool add(double d64, double tol64, double d32, double tol32) {
    const bool ok = d64 <= tol64 && d32 <= tol32;
    failures += !ok;
    worst64 = std::max(worst64, d64);
    worst32 = std::max(worst32, d32);
    return ok;
  }
  // Prints the worst differences; the process's exit status (0: every comparison passed).
  int finish() const {
    std::printf("worst: double %.1e, float %.1e\n", worst64, worst32);
    return failures == 0 ? 0 : 1;
  }
};

}  // namespace interop
