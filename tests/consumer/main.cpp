// Builds against the installed package; exits non-zero if the gradient is wrong.
#include <cstdio>

#include <tapegrad/tapegrad.hpp>

int main() {
  using namespace tapegrad;
  Var<float> w = Var<float>::parameter(Tensor<float>({2, 2}, {1, 2, 3, 4}));
  Var<float> x(Tensor<float>({1, 2}, {1, -1}));
  sum(linear(x, w)).backward();  // d/dW Σ x Wᵀ = [x; x]
  const bool ok = w.grad()[0] == 1 && w.grad()[1] == -1 && w.grad()[2] == 1 && w.grad()[3] == -1;
  std::printf("consumer: find_package(tapegrad) works, gradient %s\n", ok ? "right" : "WRONG");
  return ok ? 0 : 1;
}
