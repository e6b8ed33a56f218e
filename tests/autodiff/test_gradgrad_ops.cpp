// Every op's graph rule (its backward written with tapegrad's ops), checked by gradgradcheck in
// double: second derivatives against central differences of first derivatives.
#include "helpers.hpp"

using namespace tapegrad;
using test::check_second_derivatives;

namespace {
using Fn = Var<double> (*)(const Var<double>&);
}

TEST_CASE("gradgradcheck: elementwise ops") {
  const Tensor<double> x = test::away_from_zero({2, 3}, 301);
  const Tensor<double> positive = test::random_tensor({2, 3}, 302, 0.3, 2.0);
  const std::vector<std::pair<const char*, Fn>> smooth = {
      {"neg", [](const Var<double>& v) { return neg(v); }},
      {"exp", [](const Var<double>& v) { return exp(v); }},
      {"sigmoid", [](const Var<double>& v) { return sigmoid(v); }},
      {"tanh", [](const Var<double>& v) { return tanh(v); }},
      {"softplus", [](const Var<double>& v) { return softplus(v); }},
      {"log_sigmoid", [](const Var<double>& v) { return log_sigmoid(v); }},
      {"silu", [](const Var<double>& v) { return silu(v); }},
      {"gelu", [](const Var<double>& v) { return gelu(v); }},
      {"gelu tanh", [](const Var<double>& v) { return gelu(v, GeluApproximation::tanh); }},
      {"relu", [](const Var<double>& v) { return relu(v); }},
      {"abs", [](const Var<double>& v) { return abs(v); }},
      {"sign", [](const Var<double>& v) { return sign(v); }},
      {"leaky_relu", [](const Var<double>& v) { return leaky_relu(v, 0.2); }},
      {"elu", [](const Var<double>& v) { return elu(v, 1.5); }},
      {"scalar arithmetic", [](const Var<double>& v) { return 2.0 - (v * 3.0 + 1.0) / 4.0; }},
      {"rdiv_scalar", [](const Var<double>& v) { return 2.0 / v; }},
      // Products of piecewise-linear ops with themselves have non-zero second derivatives.
      {"relu squared", [](const Var<double>& v) { return relu(v) * relu(v) * v; }},
      {"elu cubed", [](const Var<double>& v) { return elu(v) * elu(v) * elu(v); }},
  };
  for (const auto& [name, f] : smooth) {
    INFO(name);
    check_second_derivatives([f = f](const auto& in) { return f(in[0]); }, {x});
  }
  const std::vector<std::pair<const char*, Fn>> on_positives = {
      {"log", [](const Var<double>& v) { return log(v); }},
      {"sqrt", [](const Var<double>& v) { return sqrt(v); }},
  };
  for (const auto& [name, f] : on_positives) {
    INFO(name);
    check_second_derivatives([f = f](const auto& in) { return f(in[0]); }, {positive});
  }
}

TEST_CASE("gradgradcheck: broadcasting arithmetic") {
  const Tensor<double> a = test::away_from_zero({2, 3}, 311);
  const Tensor<double> row = test::away_from_zero({3}, 312);
  const Tensor<double> column = test::away_from_zero({2, 1}, 313);
  for (const auto& b : {a, row, column}) {
    INFO("b shape " << b.shape().to_string());
    check_second_derivatives([](const auto& in) { return in[0] + in[1]; }, {a, b});
    check_second_derivatives([](const auto& in) { return in[0] - in[1]; }, {a, b});
    check_second_derivatives([](const auto& in) { return in[0] * in[1]; }, {a, b});
    check_second_derivatives([](const auto& in) { return in[0] / in[1]; }, {a, b});
    check_second_derivatives([](const auto& in) { return in[1] / in[0]; }, {a, b});
  }
  // The same value on both sides.
  check_second_derivatives([](const auto& in) { return in[0] * in[0] / (in[0] + 3.0); }, {a});
}

TEST_CASE("gradgradcheck: reductions, reshapes, broadcasting ops") {
  const Tensor<double> x = test::away_from_zero({2, 3, 2}, 321);
  const std::vector<std::pair<const char*, GradcheckFunction>> cases = {
      {"sum", [](const auto& in) { return sum(in[0] * in[0]); }},
      {"sum axes",
       [](const auto& in) {
         return sum(in[0] * in[0], {0, 2});
       }},
      {"sum keep", [](const auto& in) { return sum(in[0] * in[0], {1}, true) * in[0]; }},
      {"mean", [](const auto& in) { return mean(in[0] * in[0]); }},
      {"mean axes", [](const auto& in) { return mean(in[0] * in[0], {-1}); }},
      {"reshape",
       [](const auto& in) {
         return reshape(in[0] * in[0], {3, 4});
       }},
      {"flatten", [](const auto& in) { return flatten(in[0] * in[0], 1); }},
      {"transpose", [](const auto& in) { return transpose(in[0] * in[0], 0, 2); }},
      {"flip", [](const auto& in) { return flip(in[0] * in[0], 1); }},
      {"expand",
       [](const auto& in) {
         return expand(sum(in[0], {1}, true) * in[0], Shape{2, 2, 3, 2});
       }},
      {"sum_to",
       [](const auto& in) {
         return sum_to(in[0] * in[0], Shape{3, 1});
       }},
  };
  for (const auto& [name, f] : cases) {
    INFO(name);
    check_second_derivatives(f, {x});
  }
}

TEST_CASE("gradgradcheck: matmul with every transpose flag, linear with and without bias") {
  const Tensor<double> a = test::random_tensor({3, 4}, 331), at = test::random_tensor({4, 3}, 332);
  const Tensor<double> b = test::random_tensor({4, 2}, 333), bt = test::random_tensor({2, 4}, 334);
  check_second_derivatives([](const auto& in) { return matmul(in[0], in[1]); }, {a, b});
  check_second_derivatives(
      [](const auto& in) { return matmul(in[0], in[1], Transpose::yes, Transpose::no); }, {at, b});
  check_second_derivatives(
      [](const auto& in) { return matmul(in[0], in[1], Transpose::no, Transpose::yes); }, {a, bt});
  check_second_derivatives(
      [](const auto& in) { return matmul(in[0], in[1], Transpose::yes, Transpose::yes); },
      {at, bt});
  // A product of a value with itself: the second derivative is not zero.
  check_second_derivatives(
      [](const auto& in) { return matmul(in[0], in[0], Transpose::no, Transpose::yes); }, {a});
  const Tensor<double> x = test::random_tensor({3, 4}, 335), w = test::random_tensor({2, 4}, 336);
  const Tensor<double> bias = test::random_tensor({2}, 337);
  check_second_derivatives([](const auto& in) { return linear(in[0], in[1], in[2]); },
                           {x, w, bias});
  check_second_derivatives([](const auto& in) { return tanh(linear(in[0], in[1])); }, {x, w});
  // Empty products.
  check_second_derivatives([](const auto& in) { return linear(in[0], in[1], in[2]); },
                           {Tensor<double>::zeros({0, 4}), w, bias});
}

TEST_CASE("gradgradcheck: softmax, log_softmax, logsumexp over each axis") {
  const Tensor<double> x = test::random_tensor({2, 3, 2}, 341);
  for (long axis : {0L, 1L, -1L}) {
    INFO("axis " << axis);
    check_second_derivatives([axis](const auto& in) { return softmax(in[0], axis); }, {x});
    check_second_derivatives([axis](const auto& in) { return log_softmax(in[0], axis); }, {x});
    check_second_derivatives([axis](const auto& in) { return logsumexp(in[0], axis); }, {x});
    check_second_derivatives([axis](const auto& in) { return logsumexp(in[0], axis, true); }, {x});
  }
}
