// softmax, log_softmax, logsumexp: stability, the Jacobian, and their identities.
#include <cmath>

#include "helpers.hpp"

using namespace tapegrad;
using test::check_gradients;

TEST_CASE("softmax: gradcheck along every axis, for softmax, log_softmax and logsumexp") {
  const Tensor<double> x = test::random_tensor({2, 3, 4}, 71, -2, 2);
  for (long axis : {0L, 1L, 2L, -1L}) {
    CAPTURE(axis);
    check_gradients([axis](const auto& in) { return softmax(in[0], axis); }, {x});
    check_gradients([axis](const auto& in) { return log_softmax(in[0], axis); }, {x});
    check_gradients([axis](const auto& in) { return logsumexp(in[0], axis); }, {x});
    check_gradients([axis](const auto& in) { return logsumexp(in[0], axis, true); }, {x});
  }
}

TEST_CASE_TEMPLATE("softmax: logits of ±1000 and rows 1e3 apart stay finite and exact", T, float,
                   double) {
  // Row 0 spans ±1000; row 1 sits 1e3 above row 2: the maximum must be taken per row.
  const Tensor<T> x({3, 3}, {T(1000), T(-1000), T(0), T(1001), T(1000), T(999), T(1), T(0), T(-1)});
  Var<T> v = Var<T>::parameter(x);
  const Tensor<T> p = softmax(v).value();
  const Tensor<T> lp = log_softmax(v).value();
  for (std::size_t i = 0; i < p.numel(); ++i) {
    CHECK(std::isfinite(static_cast<double>(p[i])));
    CHECK(std::isfinite(static_cast<double>(lp[i])));
  }
  CHECK(static_cast<double>(p[0]) == doctest::Approx(1.0));
  CHECK(static_cast<double>(lp[1]) == doctest::Approx(-2000.0));
  // Rows 1 and 2 differ by a constant 1000: identical probabilities.
  for (std::size_t j = 0; j < 3; ++j)
    CHECK(static_cast<double>(p[3 + j]) == doctest::Approx(static_cast<double>(p[6 + j])));
  const double e = std::exp(1.0);
  CHECK(static_cast<double>(p[3]) == doctest::Approx(e / (e + 1 + 1 / e)).epsilon(1e-6));
  CHECK(static_cast<double>(logsumexp(v).value()[0]) == doctest::Approx(1000.0));
  sum(log_softmax(v) * Var<T>(Tensor<T>::full({3, 3}, T(0.5)))).backward();
  for (T g : v.grad()) CHECK(std::isfinite(static_cast<double>(g)));
}

TEST_CASE("softmax: adding a constant to one row changes nothing in that row or the others") {
  Tensor<double> x = test::random_tensor({3, 5}, 72);
  const Tensor<double> before = softmax(Var<double>(x)).value();
  for (std::size_t j = 0; j < 5; ++j) x[5 + j] += 123.25;
  test::check_close(softmax(Var<double>(x)).value(), before, 1e-12);
}

TEST_CASE("softmax: its Jacobian, built from K backward passes, is diag(p) − ppᵀ") {
  const std::size_t k = 5;
  const Tensor<double> x = test::random_tensor({k}, 73, -3, 3);
  const Tensor<double> p = softmax(Var<double>(x)).value();
  for (std::size_t i = 0; i < k; ++i) {  // row i of J = the gradient of p_i
    Var<double> v = Var<double>::parameter(x);
    Tensor<double> e = Tensor<double>::zeros({k});
    e[i] = 1;
    softmax(v).backward(e);
    for (std::size_t j = 0; j < k; ++j)
      CHECK(v.grad()[j] == doctest::Approx((i == j ? p[i] : 0.0) - p[i] * p[j]).epsilon(1e-12));
  }
}

TEST_CASE("softmax: 2 classes are [σ(z), 1 − σ(z)] with z = x₁ − x₂; K classes need K − 1") {
  const Tensor<double> x = test::random_tensor({6, 2}, 74, -4, 4);
  const Tensor<double> p = softmax(Var<double>(x)).value();
  for (std::size_t n = 0; n < 6; ++n) {
    const double z = x[2 * n] - x[2 * n + 1];
    CHECK(p[2 * n] == doctest::Approx(1 / (1 + std::exp(-z))).epsilon(1e-12));
    CHECK(p[2 * n + 1] == doctest::Approx(1 - 1 / (1 + std::exp(-z))).epsilon(1e-12));
  }
  // S(x) = S([0, x₂ − x₁, …, x_K − x₁]).
  Tensor<double> y = test::random_tensor({4, 7}, 75, -5, 5);
  Tensor<double> shifted = y;
  for (std::size_t n = 0; n < 4; ++n)
    for (std::size_t j = 0; j < 7; ++j) shifted[n * 7 + j] = y[n * 7 + j] - y[n * 7];
  test::check_close(softmax(Var<double>(shifted)).value(), softmax(Var<double>(y)).value(), 1e-12);
}

TEST_CASE("softmax: a bad axis is named (an empty axis is allowed: test_empty.cpp)") {
  Var<double> v(Tensor<double>::zeros({2, 3}));
  CHECK(test::error_of([&] { softmax(v, 2); }).find("softmax: axis 2") != std::string::npos);
}
