// grad(): gradients of outputs with respect to chosen values, returned rather than
// accumulated into .grad() (torch.autograd.grad).
//
//   GradOptions keep;
//   keep.create_graph = true;
//   Var<double> y = sum(x * x * x);
//   Var<double> dy = grad(y, {x}, {}, keep)[0];  // 3x², tracked
//   Var<double> d2y = grad(sum(dy), {x})[0];     // 6x
//
// Inputs may be leaves or intermediate values. With create_graph the pass records itself, so
// what it returns can be differentiated again (every op on the way needs a graph rule: op.hpp).
#pragma once

#include <optional>
#include <vector>

#include "tapegrad/autodiff/tape.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

struct GradOptions {
  // Keep the tape after the pass; unset means create_graph's value (as in PyTorch).
  std::optional<bool> retain_graph;
  // Record the pass: the returned gradients are tracked values (the tape is kept).
  bool create_graph = false;
  // An input that does not reach the outputs gets an undefined Var instead of an error.
  bool allow_unused = false;
};

// One gradient per input: Σ_k (∂outputs[k]/∂input)ᵀ grad_outputs[k]. grad_outputs holds one
// tensor of each output's shape; empty means ones, for single-element outputs only. A seed
// that is a tracked value is differentiated through under create_graph (the double-vjp
// construction of jvp relies on it). Leaves' grad() is left alone. Errors (std::logic_error
// or ShapeError) name the input or output at fault: an input that requires no gradient; one
// that does not reach the outputs, unless allow_unused; a seed of the wrong shape.
template <class T>
std::vector<Var<T>> grad(const std::vector<Var<T>>& outputs, const std::vector<Var<T>>& inputs,
                         const std::vector<Var<T>>& grad_outputs = {},
                         const GradOptions& options = {});

// The same for one output.
template <class T>
std::vector<Var<T>> grad(const Var<T>& output, const std::vector<Var<T>>& inputs,
                         const std::vector<Var<T>>& grad_outputs = {},
                         const GradOptions& options = {}) {
  return grad(std::vector<Var<T>>{output}, inputs, grad_outputs, options);
}

}  // namespace tapegrad
