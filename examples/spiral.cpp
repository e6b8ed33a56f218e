// Trains an MLP from code on three interleaved spirals; exits non-zero below 95% accuracy.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tapegrad/layers/layers.hpp"
#include "tapegrad/tapegrad.hpp"
#include "tapegrad/train/sgd.hpp"

using namespace tapegrad;

int main() {
  const std::size_t n = 300;  // 100 points per arm
  Tensor<float> x({n, 2});
  std::vector<std::int64_t> y(n);
  nn::Generator g(0);
  for (std::size_t i = 0; i < n; ++i) {
    const double r = (i % 100) / 100.0, angle = 4.0 * r + 2.1 * (i / 100) + 0.2 * g.normal();
    x[2 * i] = static_cast<float>(r * std::sin(angle));
    x[2 * i + 1] = static_cast<float>(r * std::cos(angle));
    y[i] = static_cast<std::int64_t>(i / 100);
  }
  auto model = nn::mlp<float>({2, 64, 64, 3}, nn::Activation::relu, g);
  SGD<float> sgd(model->parameters(), {0.1, 0.9, 0.0, false, 0.0});
  for (int epoch = 1; epoch <= 500; ++epoch) {
    Var<float> loss = softmax_cross_entropy((*model)(Var<float>(x)), y);  // forward
    loss.backward();                                                      // backward
    sgd.step();                                                           // update
    sgd.zero_grad();
    if (epoch % 100 == 0) std::printf("epoch %d  loss %.4f\n", epoch, loss.item());
  }
  NoGradGuard no_grad;
  const Tensor<float> logits = (*model)(Var<float>(x)).value();
  std::size_t right = 0;
  for (std::size_t i = 0; i < n; ++i)
    right += argmax(logits.data() + 3 * i, 3) == static_cast<std::size_t>(y[i]);
  std::printf("training accuracy %.3f\n", static_cast<double>(right) / n);
  return right >= 0.95 * n ? 0 : 1;
}
