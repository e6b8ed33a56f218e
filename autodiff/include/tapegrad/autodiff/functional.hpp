// tapegrad::functional: derivatives of a whole function of tensors, as torch.autograd.functional.
//
//   auto f = [](const std::vector<Var<double>>& x) { return sum(x[0] * x[0] * x[0]); };
//   auto [y, hv] = functional::hvp<double>(f, {x}, {v});  // hv[0] = 6 x ⊙ v
//
// The function takes its inputs as Vars and returns one Var. Inputs are passed as Vars: a
// tracked input is used as it is when create_graph is set (the results then stay connected to
// the caller's graph, as in PyTorch); otherwise each input is replaced by a fresh leaf holding
// its value. Without create_graph every result is a constant (detached). The passes keep the
// tape (they never release the caller's other graphs); what they record is released as
// unreachable once the results are dropped.
//
// Constructions (all reverse-mode, through grad() and the ops' graph rules):
//   vjp      vᵀJ: one reverse pass.
//   jvp      J u by the double-vjp construction: with w a tracked seed, g(w) = Jᵀw is linear in
//            w, and J u = ∂⟨g(w), u⟩/∂w. Two reverse passes, the first with create_graph.
//   vhp      vᵀH = ∂⟨∇f, v⟩/∂x: two reverse passes, the first with create_graph.
//   hvp      H v computed as vhp's ∂⟨∇f, v⟩/∂x, which equals H v because the Hessian is
//            symmetric wherever f is twice continuously differentiable. (PyTorch computes hvp
//            by a double-vjp; the results agree, at half the passes here.)
//   jacobian one reverse pass per output element.
//   hessian  the jacobian of ∇f: one reverse pass per input element.
#pragma once

#include <functional>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::functional {

template <class T>
using Function = std::function<Var<T>(const std::vector<Var<T>>&)>;

// The function's output and one derivative per input.
template <class T>
struct Derivatives {
  Var<T> output;
  std::vector<Var<T>> derivatives;
};

// vᵀ J for each input: derivatives[i] has input i's shape. v has the output's shape; empty
// means 1 for a single-element output.
template <class T>
Derivatives<T> vjp(const Function<T>& f, const std::vector<Var<T>>& inputs,
                   const Var<T>& v = Var<T>(), bool create_graph = false);

// J u: u holds one tensor per input (its shape); derivatives has one element, of the output's
// shape.
template <class T>
Derivatives<T> jvp(const Function<T>& f, const std::vector<Var<T>>& inputs,
                   const std::vector<Var<T>>& u, bool create_graph = false);

// For a single-element f: vᵀH and H v, one tensor per input (v holds one per input).
template <class T>
Derivatives<T> vhp(const Function<T>& f, const std::vector<Var<T>>& inputs,
                   const std::vector<Var<T>>& v, bool create_graph = false);
template <class T>
Derivatives<T> hvp(const Function<T>& f, const std::vector<Var<T>>& inputs,
                   const std::vector<Var<T>>& v, bool create_graph = false);

// ∂f/∂input_i for each input, of shape output.shape ++ input_i.shape.
template <class T>
std::vector<Var<T>> jacobian(const Function<T>& f, const std::vector<Var<T>>& inputs,
                             bool create_graph = false);

// For a single-element f: H[i][j] = ∂²f/∂input_i ∂input_j, of shape input_i.shape ++
// input_j.shape.
template <class T>
std::vector<std::vector<Var<T>>> hessian(const Function<T>& f, const std::vector<Var<T>>& inputs,
                                         bool create_graph = false);

}  // namespace tapegrad::functional
