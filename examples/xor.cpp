// Trains a 2-8-1 network on XOR with the raw ops: forward, loss, backward, manual SGD.
// Prints the loss falling and the final predictions. With --check, exits non-zero unless
// every prediction rounds to the right answer.
#include <cstdio>
#include <cstring>
#include <random>

#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;

int main(int argc, char** argv) {
  const bool check = argc > 1 && std::strcmp(argv[1], "--check") == 0;
  using T = float;
  const Tensor<T> x({4, 2}, {0, 0, 0, 1, 1, 0, 1, 1});
  const Tensor<T> y({4, 1}, {0, 1, 1, 0});

  // Glorot-uniform weights from a fixed seed; zero biases.
  std::mt19937_64 rng(7);
  auto glorot = [&](std::size_t out, std::size_t in) {
    std::uniform_real_distribution<double> u(-1, 1);
    const double limit = std::sqrt(6.0 / static_cast<double>(in + out));
    Tensor<T> w({out, in});
    for (T& v : w) v = static_cast<T>(limit * u(rng));
    return Var<T>::parameter(std::move(w));
  };
  Var<T> w1 = glorot(8, 2), b1 = Var<T>::parameter(Tensor<T>::zeros({8}));
  Var<T> w2 = glorot(1, 8), b2 = Var<T>::parameter(Tensor<T>::zeros({1}));
  Var<T>* params[] = {&w1, &b1, &w2, &b2};

  const T lr = 0.5f;
  float loss_value = 0;
  for (int epoch = 0; epoch <= 2000; ++epoch) {
    Var<T> hidden = tanh(linear(Var<T>(x), w1, b1));
    Var<T> p = sigmoid(linear(hidden, w2, b2));
    Var<T> err = p - Var<T>(y);
    Var<T> loss = mean(err * err);
    loss.backward();
    for (Var<T>* w : params) {
      for (std::size_t k = 0; k < w->numel(); ++k) w->value()[k] -= lr * w->grad()[k];
      w->zero_grad();
    }
    loss_value = loss.item();
    if (epoch % 250 == 0) std::printf("epoch %4d  loss %.6f\n", epoch, loss_value);
  }

  NoGradGuard no_grad;
  const Tensor<T> p = sigmoid(linear(tanh(linear(Var<T>(x), w1, b1)), w2, b2)).value();
  bool all_right = true;
  for (std::size_t i = 0; i < 4; ++i) {
    const bool right = (p[i] > 0.5f) == (y[i] > 0.5f);
    all_right = all_right && right;
    std::printf("xor(%g, %g) = %.4f  (target %g)%s\n", x[2 * i], x[2 * i + 1], p[i], y[i],
                right ? "" : "  WRONG");
  }
  std::printf("final loss %.6f: %s\n", loss_value, all_right ? "all four right" : "not learned");
  return check && !all_right ? 1 : 0;
}
