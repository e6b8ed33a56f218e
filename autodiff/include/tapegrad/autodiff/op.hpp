// The custom-op API: a differentiable op is one function that computes its output and hands
// make_op the backward rule in the same place. Every built-in op is written this way too.
//
// clang-format off
//   // y = x * sigmoid(x), same shape as x.  dy/dx = s + x s (1 - s), s = sigmoid(x).
//   template <class T>
//   Var<T> swish(const Var<T>& x) {
//     Tensor<T> y(x.shape());
//     for (std::size_t k = 0; k < y.numel(); ++k)
//       y[k] = x.value()[k] / (1 + std::exp(-x.value()[k]));
//     return make_op<T>("swish", {x}, std::move(y),
//                       [](const Tensor<T>& gy, Gradients<T>& g) {
//                         const Tensor<T>& x = g.input(0);
//                         g.accumulate(0, [&](std::size_t k) {
//                           T s = 1 / (1 + std::exp(-x[k]));
//                           return gy[k] * (s + x[k] * s * (1 - s));
//                         });
//                       });
//   }
// clang-format on
//
// Then check it with gradcheck (gradcheck.hpp). docs/extending.md walks through it.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "tapegrad/autodiff/profiler.hpp"
#include "tapegrad/autodiff/tape.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// Wraps `output` in a Var and, if grad mode is on and any input is tracked, records the op
// `name` with its inputs and backward rule `backward(grad_output, grads)` on the tape.
// `name` must outlive the tape (a string literal). The rule runs at most once per backward
// pass; it can read inputs and output through grads.input(i) / grads.output().
// While a Profiler is recording on this thread, the call is the end of the op's forward event
// (profiler.hpp); otherwise that costs one test of a thread-local pointer.
template <class T, class Backward>
Var<T> make_op(const char* name, std::initializer_list<Var<T>> inputs, Tensor<T> output,
               Backward&& backward) {
  if (detail::ProfileCollector* prof = detail::profile_collector)
    detail::profile_forward(*prof, name);
  Var<T> out(std::move(output));
  if (!grad_enabled()) return out;
  bool any_tracked = false;
  for (const Var<T>& v : inputs) {
    if (!v.defined()) throw std::invalid_argument(std::string(name) + ": undefined input");
    any_tracked = any_tracked || is_tracked(*v.node());
  }
  if (!any_tracked) return out;
  if (inputs.size() > max_op_inputs)
    throw std::invalid_argument(std::string(name) + ": an op takes at most " +
                                std::to_string(max_op_inputs) + " inputs");
  Record<T> r;
  r.op = name;
  for (const Var<T>& v : inputs) r.inputs[r.input_count++] = v.node_ptr();
  r.output = out.node_ptr();
  r.backward = BackwardFn<T>(std::forward<Backward>(backward));
  Tape<T>::current().push(std::move(r));
  return out;
}

}  // namespace tapegrad
