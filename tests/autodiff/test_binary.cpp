// Binary ops with NumPy broadcasting.
#include "helpers.hpp"

using namespace tapegrad;
using test::check_gradients;

namespace {
std::vector<GradcheckFunction> all_binary() {
  return {
      [](const auto& in) { return in[0] + in[1]; }, [](const auto& in) { return in[0] - in[1]; },
      [](const auto& in) { return in[0] * in[1]; }, [](const auto& in) { return in[0] / in[1]; }};
}
}  // namespace

TEST_CASE("binary: add, sub, mul, div pass gradcheck on equal and broadcast shapes") {
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {
      {{2, 3}, {2, 3}},        // equal
      {{4, 5}, {5}},           // [B,F] + [F]: a bias
      {{2, 1, 6}, {2, 1, 1}},  // [B,1,T] * [B,1,1]
      {{3, 1}, {1, 4}},        // both broadcast
      {{}, {2, 3}},            // a rank-0 scalar against a matrix
      {{5}, {3, 1}},           // a vector against a column
  };
  for (const Case& c : cases) {
    CAPTURE(c.a.to_string());
    CAPTURE(c.b.to_string());
    const Tensor<double> a = test::away_from_zero(c.a, 21);
    const Tensor<double> b = test::away_from_zero(c.b, 22);
    for (const auto& f : all_binary()) check_gradients(f, {a, b});
  }
}

TEST_CASE("binary: broadcast forward values and gradient shapes") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2, 3}, {1, 2, 3, 4, 5, 6}));
  Var<double> bias = Var<double>::parameter(Tensor<double>({3}, {10, 20, 30}));
  Var<double> y = x + bias;
  test::check_close(y.value(), Tensor<double>({2, 3}, {11, 22, 33, 14, 25, 36}));
  sum(y * y).backward();
  CHECK(bias.grad().shape() == Shape{3});
  // d/db Σ (x+b)² = 2 Σ_rows (x + b)
  test::check_close(bias.grad(), Tensor<double>({3}, {50, 94, 138}));

  Var<float> a = Var<float>::parameter(test::random_tensor<float>({2, 1, 3}, 1));
  Var<float> s = Var<float>::parameter(Tensor<float>({2, 1, 1}, {2.f, -1.f}));
  Var<float> p = a * s;
  CHECK(p.shape() == Shape{2, 1, 3});
  CHECK(p.value()[4] == -a.value()[4]);
  sum(p).backward();
  CHECK(s.grad().shape() == Shape{2, 1, 1});
  CHECK(s.grad()[0] == doctest::Approx(a.value()[0] + a.value()[1] + a.value()[2]));
}

TEST_CASE("binary: x * x and x / x count both operands") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2}, {3, -2}));
  sum(x * x).backward();
  test::check_close(x.grad(), Tensor<double>({2}, {6, -4}));
  x.zero_grad();
  sum(x / x).backward();
  test::check_close(x.grad(), Tensor<double>({2}, {0, 0}));
}

TEST_CASE("binary: incompatible shapes are rejected with both shapes named") {
  Var<double> a(Tensor<double>::zeros({2, 3})), b(Tensor<double>::zeros({2}));
  for (auto op : {add<double>, sub<double>, mul<double>, div<double>}) {
    const std::string msg = test::error_of([&] { op(a, b); });
    CHECK(msg.find("cannot be broadcast") != std::string::npos);
    CHECK(msg.find("[2, 3] and [2]") != std::string::npos);
  }
}
