// Shape ops: the same elements under another shape or order. Each backward routes the
// gradient back through the inverse map. Derivations: docs/derivations.md#reshape-transpose.
#pragma once

#include <initializer_list>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// The elements of x in row-major order under `shape` (same element count).  gx = reshape(gy).
template <class T>
Var<T> reshape(const Var<T>& x, const Shape& shape);
// As above; one dim may be -1, inferred from the element count: reshape(x, {-1, 784}).
template <class T>
Var<T> reshape(const Var<T>& x, std::initializer_list<long> dims);
// Merges axes start_axis..end_axis (inclusive, negative counts from the end) into one.
// flatten(x) gives a vector; flatten(x, 1) turns [N, C, L] into [N, C·L].
template <class T>
Var<T> flatten(const Var<T>& x, long start_axis = 0, long end_axis = -1);
// Swaps two axes (copying into the new order).  gx = transpose(gy) with the same axes.
template <class T>
Var<T> transpose(const Var<T>& x, long axis0, long axis1);
// The transpose of a matrix [M, N] → [N, M]. (For products, prefer matmul's flags: no copy.)
template <class T>
Var<T> transpose(const Var<T>& x);

// x broadcast to `shape` (NumPy's rules: x's shape must broadcast to it), copied (torch's
// expand, without the view).  gx = sum_to(gy, x.shape()).
template <class T>
Var<T> expand(const Var<T>& x, const Shape& shape);

// Reverses x along one axis: y[…, i, …] = x[…, n − 1 − i, …].  gx = flip(gy) (a permutation's
// adjoint is its inverse, and flip is its own inverse). conv1d(x, flip(w, -1)) is a true
// convolution.
template <class T>
Var<T> flip(const Var<T>& x, long axis);

}  // namespace tapegrad
