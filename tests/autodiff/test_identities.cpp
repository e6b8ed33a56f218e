// Derivative identities and closed-form gradients, checked against the engine (computed, not
// copied).
#include "helpers.hpp"

#include <cmath>

using namespace tapegrad;

namespace {
Tensor<double> grid() {
  Tensor<double> t({41});
  for (std::size_t k = 0; k < t.numel(); ++k) t[k] = -10.0 + 0.5 * static_cast<double>(k);
  return t;
}
// The gradient of sum(f(x)) at x.
template <class F>
Tensor<double> grad_of(F f, const Tensor<double>& x) {
  Var<double> v = Var<double>::parameter(x);
  sum(f(v)).backward();
  return v.grad();
}
}  // namespace

TEST_CASE("identities: ReLU' = H and ReLU(x) = x·H(x)") {
  const Tensor<double> x = grid();
  const Tensor<double> g = grad_of([](const auto& v) { return relu(v); }, x);
  const Tensor<double> y = relu(Var<double>(x)).value();
  for (std::size_t k = 0; k < x.numel(); ++k) {
    const double h = x[k] > 0 ? 1.0 : 0.0;
    CHECK(g[k] == h);
    CHECK(y[k] == x[k] * h);
  }
}

TEST_CASE("identities: σ' = σ(1 − σ) and tanh' = 1 − tanh²") {
  const Tensor<double> x = grid();
  const Tensor<double> gs = grad_of([](const auto& v) { return sigmoid(v); }, x);
  const Tensor<double> gt = grad_of([](const auto& v) { return tanh(v); }, x);
  for (std::size_t k = 0; k < x.numel(); ++k) {
    const double s = 1 / (1 + std::exp(-x[k])), t = std::tanh(x[k]);
    CHECK(gs[k] == doctest::Approx(s * (1 - s)).epsilon(1e-12));
    CHECK(gt[k] == doctest::Approx(1 - t * t).epsilon(1e-12));
  }
}

TEST_CASE("identities: σ(x) = ½(tanh(x/2) + 1), tanh(x) = 2σ(2x) − 1, ln σ(x) = −softplus(−x)") {
  Var<double> x(grid());
  test::check_close(sigmoid(x).value(), ((tanh(x * 0.5) + 1.0) * 0.5).value(), 1e-12);
  test::check_close(tanh(x).value(), (sigmoid(x * 2.0) * 2.0 - 1.0).value(), 1e-12);
  test::check_close(log_sigmoid(x).value(), (-softplus(-x)).value(), 1e-12);
}

TEST_CASE("identities: ∇‖x‖² = 2x and ∇‖x‖₁ = sign(x)") {
  const Tensor<double> x = test::away_from_zero({7}, 61);
  const Tensor<double> g2 = grad_of([](const auto& v) { return v * v; }, x);
  const Tensor<double> g1 = grad_of([](const auto& v) { return abs(v); }, x);
  for (std::size_t k = 0; k < x.numel(); ++k) {
    CHECK(g2[k] == doctest::Approx(2 * x[k]));
    CHECK(g1[k] == (x[k] > 0 ? 1.0 : -1.0));
  }
}

TEST_CASE("identities: for y = Wx + b the gradients are δxᵀ, Wᵀδ and δ (summed over a batch)") {
  const std::size_t batch = 3, in = 4, out = 2;
  const Tensor<double> x = test::random_tensor({batch, in}, 62);
  const Tensor<double> w = test::random_tensor({out, in}, 63);
  const Tensor<double> b = test::random_tensor({out}, 64);
  const Tensor<double> delta = test::random_tensor({batch, out}, 65);  // ∂J/∂y
  Var<double> xv = Var<double>::parameter(x), wv = Var<double>::parameter(w),
              bv = Var<double>::parameter(b);
  linear(xv, wv, bv).backward(delta);
  for (std::size_t i = 0; i < out; ++i) {
    double gb = 0;
    for (std::size_t n = 0; n < batch; ++n) gb += delta[n * out + i];
    CHECK(bv.grad()[i] == doctest::Approx(gb));  // δ
    for (std::size_t j = 0; j < in; ++j) {
      double gw = 0;
      for (std::size_t n = 0; n < batch; ++n) gw += delta[n * out + i] * x[n * in + j];
      CHECK(wv.grad()[i * in + j] == doctest::Approx(gw));  // δxᵀ
    }
  }
  for (std::size_t n = 0; n < batch; ++n)
    for (std::size_t j = 0; j < in; ++j) {
      double gx = 0;
      for (std::size_t i = 0; i < out; ++i) gx += w[i * in + j] * delta[n * out + i];
      CHECK(xv.grad()[n * in + j] == doctest::Approx(gx));  // Wᵀδ
    }
}

TEST_CASE("identities: two stacked linear maps without a nonlinearity are one linear map") {
  const Tensor<double> x = test::random_tensor({5, 3}, 66);
  Var<double> w1(test::random_tensor({4, 3}, 67)), b1(test::random_tensor({4}, 68));
  Var<double> w2(test::random_tensor({2, 4}, 69)), b2(test::random_tensor({2}, 70));
  const Tensor<double> stacked = linear(linear(Var<double>(x), w1, b1), w2, b2).value();
  // W = W2 W1, b = W2 b1 + b2
  Var<double> w = matmul(w2, w1);
  Var<double> b = reshape(matmul(w2, reshape(b1, {4, 1})), {2}) + b2;
  test::check_close(stacked, linear(Var<double>(x), w, b).value(), 1e-12);
}
