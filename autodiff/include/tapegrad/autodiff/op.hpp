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
//
// To make the op twice differentiable (usable under create_graph, grad(), the functional
// API), give make_op a second rule written with tapegrad's ops, which takes the output's
// gradient as a Var and adds each input's gradient as a Var (tape.hpp: GraphGradients):
//
// clang-format off
//   [](const Var<T>& gy, GraphGradients<T>& g) {
//     Var<T> s = sigmoid(g.input(0));
//     g.add(0, gy * (s + g.input(0) * s * (1 - s)));
//   }
// clang-format on
//
// either beside the raw rule (make_op(name, inputs, output, raw, graph): first-order passes
// use the raw rule, create_graph passes the graph rule) or instead of it (first-order passes
// then run the graph rule on constants). An op without a graph rule throws, naming the op,
// when a create_graph pass reaches it: never a silently wrong second derivative. Check the
// graph rule with gradgradcheck (gradcheck.hpp).
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

// make_op with both forms of the rule: `raw` for first-order passes, `graph` under
// create_graph.
template <class T, class Raw, class Graph>
Var<T> make_op(const char* name, std::initializer_list<Var<T>> inputs, Tensor<T> output, Raw&& raw,
               Graph&& graph) {
  static_assert(detail::is_raw_rule<std::decay_t<Raw>, T>,
                "make_op: the first rule takes (const Tensor<T>&, Gradients<T>&)");
  static_assert(detail::is_graph_rule<std::decay_t<Graph>, T>,
                "make_op: the second rule takes (const Var<T>&, GraphGradients<T>&)");
  return make_op<T>(name, inputs, std::move(output),
                    detail::DualRule<T, std::decay_t<Raw>, std::decay_t<Graph>>{
                        std::forward<Raw>(raw), std::forward<Graph>(graph)});
}

}  // namespace tapegrad
