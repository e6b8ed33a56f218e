// Elementwise unary ops: values, stability at the extremes, and gradchecks.
#include <limits>

#include "helpers.hpp"

using namespace tapegrad;
using test::check_gradients;

namespace {
using Unary = Var<double> (*)(const Var<double>&);
GradcheckFunction unary(Unary op) {
  return [op](const std::vector<Var<double>>& in) { return op(in[0]); };
}
}  // namespace

TEST_CASE("elementwise: every unary op passes gradcheck") {
  const Tensor<double> x = test::away_from_zero({3, 4}, 11);
  const Tensor<double> positive = test::random_tensor({3, 4}, 12, 0.2, 3.0);
  SUBCASE("neg") {
    check_gradients(unary(neg<double>), {x});
  }
  SUBCASE("exp") {
    check_gradients(unary(exp<double>), {x});
  }
  SUBCASE("log") {
    check_gradients(unary(log<double>), {positive});
  }
  SUBCASE("sqrt") {
    check_gradients(unary(sqrt<double>), {positive});
  }
  SUBCASE("abs") {
    check_gradients(unary(abs<double>), {x});
  }
  SUBCASE("sign") {
    check_gradients(unary(sign<double>), {x});
  }
  SUBCASE("relu") {
    check_gradients(unary(relu<double>), {x});
  }
  SUBCASE("sigmoid") {
    check_gradients(unary(sigmoid<double>), {x});
  }
  SUBCASE("tanh") {
    check_gradients(unary(tanh<double>), {x});
  }
  SUBCASE("softplus") {
    check_gradients(unary(softplus<double>), {x});
  }
  SUBCASE("log_sigmoid") {
    check_gradients(unary(log_sigmoid<double>), {x});
  }
}

TEST_CASE("elementwise: scalar arithmetic passes gradcheck, both operand orders") {
  const Tensor<double> x = test::away_from_zero({2, 3}, 13);
  check_gradients([](const auto& in) { return in[0] + 2.5; }, {x});
  check_gradients([](const auto& in) { return 2.5 + in[0]; }, {x});
  check_gradients([](const auto& in) { return in[0] - 1.5; }, {x});
  check_gradients([](const auto& in) { return 1.5 - in[0]; }, {x});
  check_gradients([](const auto& in) { return in[0] * -3.0; }, {x});
  check_gradients([](const auto& in) { return -3.0 * in[0]; }, {x});
  check_gradients([](const auto& in) { return in[0] / 4.0; }, {x});
  check_gradients([](const auto& in) { return 4.0 / in[0]; }, {x});
  check_gradients([](const auto& in) { return -in[0]; }, {x});
}

TEST_CASE("elementwise: relu's derivative is H(x) with H(0) = 0, abs'(0) = 0, sign' = 0") {
  Var<double> x = Var<double>::parameter(Tensor<double>({3}, {-1, 0, 2}));
  sum(relu(x)).backward();
  test::check_close(x.grad(), Tensor<double>({3}, {0, 0, 1}));
  x.zero_grad();
  sum(abs(x)).backward();
  test::check_close(x.grad(), Tensor<double>({3}, {-1, 0, 1}));
  x.zero_grad();
  sum(sign(x)).backward();
  test::check_close(x.grad(), Tensor<double>({3}, {0, 0, 0}));
  test::check_close(sign(x).value(), Tensor<double>({3}, {-1, 0, 1}));
}

TEST_CASE_TEMPLATE(
    "elementwise: sigmoid, tanh, softplus, log_sigmoid are finite and right at ±1000", T, float,
    double) {
  Var<T> x = Var<T>::parameter(Tensor<T>({4}, {T(-1000), T(-30), T(30), T(1000)}));
  Var<T> s = sigmoid(x), t = tanh(x), sp = softplus(x), ls = log_sigmoid(x);
  for (const Var<T>* v : {&s, &t, &sp, &ls})
    for (T e : v->value()) CHECK(std::isfinite(e));
  CHECK(s.value()[0] == T(0));
  CHECK(s.value()[3] == T(1));
  CHECK(t.value()[0] == T(-1));
  CHECK(t.value()[3] == T(1));
  CHECK(sp.value()[0] == T(0));
  CHECK(sp.value()[3] == T(1000));
  CHECK(ls.value()[0] == T(-1000));
  CHECK(ls.value()[3] == T(0));
  CHECK(static_cast<double>(sp.value()[1]) == doctest::Approx(std::exp(-30.0)).epsilon(1e-4));
  sum(s + t + sp + ls).backward();
  for (T g : x.grad()) CHECK(std::isfinite(g));
  // d/dx [σ + tanh + softplus + log σ] = σ(1-σ) + (1 - tanh²) + σ(x) + σ(-x) → 1 at ±1000
  CHECK(x.grad()[0] == doctest::Approx(1.0));
  CHECK(x.grad()[3] == doctest::Approx(1.0));
}

TEST_CASE("elementwise: float exp, sigmoid and tanh stay within a few ulp of the exact values") {
  // 20 001 points over the whole float range of exp, plus the special values.
  Tensor<float> x({20001});
  for (std::size_t k = 0; k < x.numel(); ++k)
    x[k] = -87.0f + 175.0f * static_cast<float>(k) / 20000.0f;
  const Var<float> v(x);
  const Tensor<float> e = exp(v).value(), s = sigmoid(v).value(), t = tanh(v).value();
  double worst_exp = 0, worst_sig = 0, worst_tanh = 0;
  for (std::size_t k = 0; k < x.numel(); ++k) {
    const double xd = x[k];
    worst_exp = std::max(worst_exp, std::abs(e[k] - std::exp(xd)) / std::exp(xd));
    const double sd = 1 / (1 + std::exp(-xd));
    worst_sig = std::max(worst_sig, std::abs(s[k] - sd) / sd);
    if (std::abs(xd) > 1e-30)
      worst_tanh = std::max(worst_tanh, std::abs(t[k] - std::tanh(xd)) / std::abs(std::tanh(xd)));
  }
  CHECK(worst_exp < 6e-7);  // float epsilon is 1.19e-7
  CHECK(worst_sig < 6e-7);
  CHECK(worst_tanh < 6e-7);
  // Near zero, where tanh's closed form would cancel.
  for (float small : {1e-6f, -3e-4f, 0.01f, 0.124f, 0.126f}) {
    const float got = tanh(Var<float>(Tensor<float>::scalar(small))).item();
    CHECK(got == doctest::Approx(std::tanh(static_cast<double>(small))).epsilon(3e-7));
  }
  const Tensor<float> special(
      {5}, {-1000.f, 1000.f, std::numeric_limits<float>::infinity(),
            -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()});
  const Tensor<float> es = exp(Var<float>(special)).value();
  CHECK(es[0] == 0.f);
  CHECK(std::isinf(es[1]));
  CHECK(std::isinf(es[2]));
  CHECK(es[3] == 0.f);
  CHECK(std::isnan(es[4]));
  const Tensor<float> ts = tanh(Var<float>(special)).value();
  CHECK(ts[0] == -1.f);
  CHECK(ts[1] == 1.f);
  CHECK(std::isnan(ts[4]));
}

TEST_CASE(
    "elementwise: large tensors, split among two threads, give the same values and "
    "gradients as one thread") {
  // 300 000 values: two threads share each pass. The first backward writes new gradients, the
  // second adds to x's: both backward loops run.
  const Tensor<float> x = test::random_tensor<float>({3, 100, 1000}, 71, -3, 3);
  const Tensor<float> gy = test::random_tensor<float>(x.shape(), 72);
  for (auto op : {relu<float>, sigmoid<float>, tanh<float>, exp<float>}) {
    Tensor<float> y[2], gx[2];
    for (std::size_t threads : {1, 2}) {
      test::ThreadCount count(threads);
      Var<float> xv = Var<float>::parameter(x);
      Var<float> out = op(op(xv));
      out.backward(gy);
      op(xv).backward(gy);
      y[threads - 1] = out.value();
      gx[threads - 1] = xv.grad();
    }
    CHECK(test::bit_identical(y[0], y[1]));
    CHECK(test::bit_identical(gx[0], gx[1]));
    // And the values themselves, against the op on one element.
    const float one = op(op(Var<float>(Tensor<float>({1}, {x[123457]})))).item();
    CHECK(y[0][123457] == doctest::Approx(one).epsilon(1e-6));
  }
}

TEST_CASE("elementwise: NaN propagates through every op (no silent NaN swallowing)") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Var<float> x(Tensor<float>({1}, {nan}));
  for (auto op : {relu<float>, sigmoid<float>, tanh<float>, exp<float>, abs<float>, softplus<float>,
                  log_sigmoid<float>, sqrt<float>, log<float>})
    CHECK(std::isnan(op(x).item()));
}
