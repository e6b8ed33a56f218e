// gradcheck: compares the analytic gradients of a function of tensors (its backward rules)
// with central differences, in double precision. This is how to test a new op.
//
//   auto f = [](const std::vector<Var<double>>& in) { return swish(in[0]); };
//   GradcheckResult r = gradcheck(f, {Tensor<double>({2, 3}, {...})});
//   if (!r) std::cerr << r.report;
//
// For a function f with output y, gradcheck draws a random upstream gradient v (seeded) and
// compares, for every element x_j of every input, the analytic (Jᵀv)_j from backward with the
// numeric (⟨v, f(x + ε e_j)⟩ − ⟨v, f(x − ε e_j)⟩) / 2ε. An element passes when
//     |analytic − numeric| ≤ atol + rtol · |numeric|.
// It also checks that every gradient has its input's shape and that backward is linear in the
// upstream gradient (g(αv₁ + βv₂) = αg(v₁) + βg(v₂)). An element within ε of a kink (its
// one-sided differences (f(x + ε) − f(x))/ε and (f(x) − f(x − ε))/ε disagree by more than
// max(atol, 1e3·ε·(1 + |numeric|))) has no meaningful numeric gradient: it is not compared, so it
// cannot fail the check; a warning naming the input and the element's multi-index is recorded
// instead. Every other element is still compared. The report (also on success) ends with the
// number of elements compared and the number skipped at kinks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  std::uint64_t seed = 0;          // for the random upstream gradients
  bool check_linearity = true;     // also verify backward is linear in the upstream gradient
  std::vector<std::string> names;  // optional names of the inputs, for the report
};

struct GradcheckResult {
  bool passed = false;
  std::string report;                 // what failed, where, by how much; the counts of
                                      // elements compared and skipped at kinks
  std::vector<std::string> warnings;  // one per element skipped at a kink
  explicit operator bool() const { return passed; }
};

using GradcheckFunction = std::function<Var<double>(const std::vector<Var<double>>&)>;

// Checks f's gradient with respect to every input (all inputs are made tracked leaves).
GradcheckResult gradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                          const GradcheckOptions& options = {});

// Checks f's second derivative: the graph rules of the ops f uses (op.hpp), as
// torch.autograd.gradgradcheck does. With v = grad_outputs (drawn at random from the seed
// when empty), the gradients g_i(x, v) = (∂f/∂x_i)ᵀ v are computed with create_graph, and
// gradcheck compares the derivatives of Σ_i ⟨w_i, g_i(x, v)⟩ (w_i fixed random tensors) with
// respect to every input and to v against central differences of the first-order gradients.
// The report is gradcheck's, naming the input ("grad_output" for v), the worst multi-index,
// analytic and numeric values and the tolerances.
GradcheckResult gradgradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                              const std::vector<Tensor<double>>& grad_outputs = {},
                              const GradcheckOptions& options = {});

}  // namespace tapegrad
