// Sums and means, over all elements or over chosen axes (negative axes count from the end).
// The backward of a reduction broadcasts the output gradient back over the reduced axes.
// As PyTorch 1.13: an empty axis list reduces every axis; a sum of no elements is 0 and a mean
// of none is NaN (an empty tensor, or an axis of size 0), with an empty gradient.
// Derivations: docs/derivations.md#sum-mean.
#pragma once

#include <cstddef>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// y = Σ_k x_k, a rank-0 scalar.  gx = gy · 1.
template <class T>
Var<T> sum(const Var<T>& x);
// Sum over `axes` (all of them if empty); with keep_dims they stay as size-1 dims, otherwise
// they are removed.
// gx[i] = gy[i with the reduced axes dropped (or set to 0)].
template <class T>
Var<T> sum(const Var<T>& x, const std::vector<long>& axes, bool keep_dims = false);
// y = (1/n) Σ_k x_k (NaN for n = 0).  gx = gy / n.
template <class T>
Var<T> mean(const Var<T>& x);
// Mean over `axes` (all if empty; n = product of the reduced dims).  gx = broadcast(gy) / n.
template <class T>
Var<T> mean(const Var<T>& x, const std::vector<long>& axes, bool keep_dims = false);

// x summed down to `shape`, which must broadcast to x's shape (torch's sum_to_size): the
// adjoint of broadcasting, summing over the axes `shape` lacks or has as 1. Returns x itself
// when the shapes are equal.  gx = expand(gy, x.shape()).
template <class T>
Var<T> sum_to(const Var<T>& x, const Shape& shape);

// The index of the largest of row[0], …, row[n − 1], the first on ties; a NaN counts as larger
// than every number (the first NaN wins), as in PyTorch's argmax. n must be positive. For
// predictions: argmax(logits.data() + i·K, K) is sample i's class.
template <class T>
std::size_t argmax(const T* row, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t j = 1; j < n; ++j) {
    if (row[best] != row[best]) break;  // NaN: nothing beats it
    if (row[j] > row[best] || row[j] != row[j]) best = j;
  }
  return best;
}

}  // namespace tapegrad
