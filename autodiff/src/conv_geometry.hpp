// conv1d's geometry: the sizes every path of the op works with, checked once per call.
#pragma once

#include <cstddef>
#include <string>

#include "tapegrad/autodiff/conv.hpp"

namespace tapegrad::detail {

struct ConvGeometry {
  std::size_t n, c_in, length, c_out, kernel, stride, dilation, left, l_out;
  std::size_t rows() const { return c_in * kernel; }  // of the im2col matrix
};

template <class T>
ConvGeometry geometry(const Shape& xs, const Shape& ws, const Var<T>* b, std::size_t stride,
                      const Padding& padding, std::size_t dilation) {
  if (xs.rank() != 3)
    throw ShapeError("conv1d: input must be [N, C_in, L], got shape " + xs.to_string());
  if (ws.rank() != 3)
    throw ShapeError("conv1d: weight must be [C_out, C_in, K], got shape " + ws.to_string());
  if (xs[1] != ws[1])
    throw ShapeError("conv1d: input " + xs.to_string() + " has " + std::to_string(xs[1]) +
                     " channels but weight " + ws.to_string() + " expects " +
                     std::to_string(ws[1]));
  if (b && b->defined() && b->shape() != Shape{ws[0]})
    throw ShapeError("conv1d: bias of shape " + b->shape().to_string() + " for weight " +
                     ws.to_string() + " (expected [" + std::to_string(ws[0]) + "])");
  // PyTorch's errors for empty shapes: no output channels; samples of length 0 (unless there are
  // no samples or no channels).
  if (ws[0] == 0) throw ShapeError("conv1d: weight " + ws.to_string() + " has no output channels");
  if (xs[2] == 0 && xs[0] != 0 && xs[1] != 0)
    throw ShapeError("conv1d: input " + xs.to_string() +
                     " has samples of length 0 (only an empty batch or no channels may be empty)");
  ConvGeometry g{xs[0], xs[1], xs[2], ws[0], ws[2], stride, dilation, 0, 0};
  g.l_out = conv1d_output_length(xs[2], ws[2], stride, padding, dilation);
  g.left = padding.resolve(dilation * (ws[2] - 1) + 1, stride).first;
  return g;
}

}  // namespace tapegrad::detail
