// A physics-informed network: a tanh MLP learns the solution of the boundary-value problem
//     u″(x) = f(x) on [0, 1],  u(0) = u(1) = 0,  f(x) = −π² sin(πx)
// (exact solution u(x) = sin(πx)) by minimising the residual of u″, which the engine computes
// by differentiating the network twice with respect to its input (grad with create_graph);
// the training step then differentiates that residual with respect to the weights: third
// derivatives of the network. The boundary conditions hold exactly by construction: the trial
// solution is u(x) = x(1 − x)·N(x). Prints the loss and, at the end, the largest error against
// the exact solution on a fine grid; exits non-zero unless it is below 1e-3.
#include <cmath>
#include <cstdio>
#include <random>

#include "tapegrad/tapegrad.hpp"
#include "tapegrad/train/adam.hpp"

using namespace tapegrad;
using T = double;

namespace {

struct Network {
  Var<T> w1, b1, w2, b2, w3, b3;

  explicit Network(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto glorot = [&](std::size_t out, std::size_t in) {
      std::normal_distribution<double> normal(0.0, std::sqrt(2.0 / static_cast<double>(in + out)));
      Tensor<T> w({out, in});
      for (T& v : w) v = normal(rng);
      return Var<T>::parameter(std::move(w));
    };
    w1 = glorot(24, 1), b1 = Var<T>::parameter(Tensor<T>::zeros({24}));
    w2 = glorot(24, 24), b2 = Var<T>::parameter(Tensor<T>::zeros({24}));
    w3 = glorot(1, 24), b3 = Var<T>::parameter(Tensor<T>::zeros({1}));
  }
  std::vector<Var<T>> parameters() const { return {w1, b1, w2, b2, w3, b3}; }

  // u(x) = x(1 − x) N(x) for x of shape [n, 1].
  Var<T> u(const Var<T>& x) const {
    const Var<T> h = tanh(linear(tanh(linear(x, w1, b1)), w2, b2));
    return x * (1.0 - x) * linear(h, w3, b3);
  }
};

const double pi = std::acos(-1.0);

}  // namespace

int main() {
  // Collocation points: a uniform grid of the interior.
  const std::size_t n = 48;
  Tensor<T> points({n, 1}), f({n, 1});
  for (std::size_t i = 0; i < n; ++i) {
    points[i] = (static_cast<double>(i) + 0.5) / static_cast<double>(n);
    f[i] = -pi * pi * std::sin(pi * points[i]);
  }
  Network net(3);
  AdamOptions options;
  options.lr = 1e-2;
  Adam<T> adam(net.parameters(), options);
  GradOptions keep;
  keep.create_graph = true;

  const int steps = 1500;
  T loss_value = 0;
  for (int step = 0; step <= steps; ++step) {
    // Each u_i depends on x_i alone, so the gradient of Σ u is the vector of u′(x_i).
    Var<T> x = Var<T>::parameter(points);
    const Var<T> u = net.u(x);
    const Var<T> du = grad(sum(u), {x}, {}, keep)[0];
    const Var<T> d2u = grad(sum(du), {x}, {}, keep)[0];
    const Var<T> residual = d2u - Var<T>(f);
    Var<T> loss = mean(residual * residual);
    adam.zero_grad();
    loss.backward();
    adam.set_lr(1e-2 * 0.5 * (1 + std::cos(pi * step / steps)) + 1e-4);  // cosine decay
    adam.step();
    loss_value = loss.item();
    if (step % 500 == 0) std::printf("step %4d  residual loss %.3e\n", step, loss_value);
  }

  NoGradGuard no_grad;
  Tensor<T> grid({1001, 1});
  for (std::size_t i = 0; i < grid.numel(); ++i) grid[i] = static_cast<double>(i) / 1000.0;
  const Tensor<T> u = net.u(Var<T>(grid)).value();
  double worst = 0;
  for (std::size_t i = 0; i < grid.numel(); ++i)
    worst = std::max(worst, std::abs(u[i] - std::sin(pi * grid[i])));
  std::printf("max |u - sin(pi x)| on 1001 points: %.2e (%s)\n", worst,
              worst < 1e-3 ? "below 1e-3" : "NOT below 1e-3");
  return worst < 1e-3 ? 0 : 1;
}
