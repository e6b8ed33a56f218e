// Defines a new differentiable op (swish) outside the library, and gradchecks it.
// docs/extending.md walks through this file. Exits non-zero if gradcheck fails.
#include <cmath>
#include <cstdio>

#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;

// swish(x) = x·σ(x), same shape as x.
// dy/dx = σ(x) + x·σ(x)(1 − σ(x)), written with s = σ(x) as s + x·s·(1 − s).
template <class T>
Var<T> swish(const Var<T>& x) {
  Tensor<T> y(x.shape());
  for (std::size_t k = 0; k < y.numel(); ++k) {
    const T v = x.value()[k];
    y[k] = v / (T(1) + std::exp(-v));
  }
  return make_op<T>("swish", {x}, std::move(y), [](const Tensor<T>& gy, Gradients<T>& g) {
    const Tensor<T>& xv = g.input(0);
    g.accumulate(0, [&](std::size_t k) {
      const T s = T(1) / (T(1) + std::exp(-xv[k]));
      return gy[k] * (s + xv[k] * s * (T(1) - s));
    });
  });
}

int main() {
  // Use it like any built-in op, in float for training...
  Var<float> w = Var<float>::parameter(Tensor<float>({3}, {-1.f, 0.5f, 2.f}));
  sum(swish(w)).backward();
  std::printf("d/dw sum(swish(w)) = [%g, %g, %g]\n", w.grad()[0], w.grad()[1], w.grad()[2]);

  // ...and check its backward in double against central differences.
  const Tensor<double> x({2, 3}, {-2.0, -0.5, 0.1, 0.7, 1.5, 3.0});
  GradcheckResult r =
      gradcheck([](const std::vector<Var<double>>& in) { return swish(in[0]); }, {x});
  std::printf("gradcheck(swish): %s\n", r.passed ? "passed" : r.report.c_str());
  return r.passed ? 0 : 1;
}
