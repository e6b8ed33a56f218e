// Newton's method on a small logistic regression, with the Hessian from the engine
// (functional::hessian): w ← w − H⁻¹ ∇L. It reaches the optimum in a handful of steps;
// gradient descent, run beside it from the same start, needs thousands to get as close.
// Exits non-zero unless Newton converges (gradient norm below 1e-10) within 10 steps and lands
// where gradient descent ends up.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;
using T = double;

namespace {

// Solves A z = b (A symmetric positive definite, n×n row-major) by Cholesky.
std::vector<double> solve_spd(std::vector<double> a, std::vector<double> b, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t k = 0; k < j; ++k) a[j * n + j] -= a[j * n + k] * a[j * n + k];
    a[j * n + j] = std::sqrt(a[j * n + j]);
    for (std::size_t i = j + 1; i < n; ++i) {
      for (std::size_t k = 0; k < j; ++k) a[i * n + j] -= a[i * n + k] * a[j * n + k];
      a[i * n + j] /= a[j * n + j];
    }
  }
  for (std::size_t i = 0; i < n; ++i) {  // L y = b
    for (std::size_t k = 0; k < i; ++k) b[i] -= a[i * n + k] * b[k];
    b[i] /= a[i * n + i];
  }
  for (std::size_t i = n; i-- > 0;) {  // Lᵀ z = y
    for (std::size_t k = i + 1; k < n; ++k) b[i] -= a[k * n + i] * b[k];
    b[i] /= a[i * n + i];
  }
  return b;
}

double norm(const Tensor<T>& v) {
  double s = 0;
  for (T x : v) s += x * x;
  return std::sqrt(s);
}

}  // namespace

int main() {
  // 200 samples of 6 features (the last a constant 1: the bias), on different scales, labels
  // from a noisy linear rule.
  const std::size_t n = 200, d = 6;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  Tensor<T> x({n, d}), labels({n, 1});
  for (std::size_t i = 0; i < n; ++i) {
    double z = 0.3;
    for (std::size_t j = 0; j + 1 < d; ++j) {
      x[i * d + j] = normal(rng) * (1.0 + 2.0 * static_cast<double>(j));
      z += x[i * d + j] * (j % 2 ? 0.4 : -0.25);
    }
    x[i * d + d - 1] = 1.0;
    labels[i] = z + 1.5 * normal(rng) > 0 ? 1.0 : 0.0;
  }
  // L(w) = −mean(t log σ(Xw) + (1 − t) log σ(−Xw)) + (λ/2)|w|².
  const double lambda = 1e-3;
  const functional::Function<T> loss = [&](const std::vector<Var<T>>& w) {
    const Var<T> z = matmul(Var<T>(x), reshape(w[0], {static_cast<long>(d), 1}));
    const Var<T> t(labels);
    const Var<T> nll = neg(mean(t * log_sigmoid(z) + (1.0 - t) * log_sigmoid(neg(z))));
    return nll + sum(w[0] * w[0]) * (lambda / 2);
  };

  Tensor<T> w = Tensor<T>::zeros({d});
  int newton_steps = 0;
  for (; newton_steps < 10; ++newton_steps) {
    const Tensor<T> g = functional::vjp<T>(loss, {Var<T>(w)}).derivatives[0].value();
    std::printf("newton step %d  loss %.12f  |grad| %.3e\n", newton_steps,
                functional::vjp<T>(loss, {Var<T>(w)}).output.item(), norm(g));
    if (norm(g) < 1e-10) break;
    const Tensor<T> h = functional::hessian<T>(loss, {Var<T>(w)})[0][0].value();
    const std::vector<double> step = solve_spd(std::vector<double>(h.begin(), h.end()),
                                               std::vector<double>(g.begin(), g.end()), d);
    for (std::size_t j = 0; j < d; ++j) w[j] -= step[j];
  }

  // Gradient descent from the same start, until it is within 1e-6 of Newton's optimum.
  Var<T> v = Var<T>::parameter(Tensor<T>::zeros({d}));
  const double lr = 0.02;
  int gd_steps = 0;
  double distance = 0;
  for (; gd_steps < 200000; ++gd_steps) {
    Tensor<T> diff = v.value();
    for (std::size_t j = 0; j < d; ++j) diff[j] -= w[j];
    distance = norm(diff);
    if (distance < 1e-6) break;
    loss({v}).backward();
    for (std::size_t j = 0; j < d; ++j) v.value()[j] -= lr * v.grad()[j];
    v.zero_grad();
  }
  std::printf("newton: %d steps; gradient descent (lr %.2g): %d steps to within %.1e of it\n",
              newton_steps, lr, gd_steps, distance);
  const bool ok = newton_steps < 10 && distance < 1e-6;
  return ok ? 0 : 1;
}
