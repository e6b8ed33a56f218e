// sum / mean over all elements or axes; reshape, flatten, transpose.
#include <limits>
#include <utility>

#include "helpers.hpp"

using namespace tapegrad;
using test::check_gradients;

TEST_CASE("sum and mean: values over all elements and over axes") {
  Var<double> x(Tensor<double>({2, 3}, {1, 2, 3, 4, 5, 6}));
  CHECK(sum(x).item() == 21.0);
  CHECK(sum(x).shape() == Shape{});
  CHECK(mean(x).item() == 3.5);
  test::check_close(sum(x, {0}).value(), Tensor<double>({3}, {5, 7, 9}));
  test::check_close(sum(x, {1}, true).value(), Tensor<double>({2, 1}, {6, 15}));
  test::check_close(mean(x, {-1}).value(), Tensor<double>({2}, {2, 5}));
  test::check_close(sum(x, {0, 1}, true).value(), Tensor<double>({1, 1}, {21}));
}

TEST_CASE("sum and mean: gradcheck over every axis choice, keep-dims or not") {
  const Tensor<double> x = test::random_tensor({2, 3, 4}, 41);
  check_gradients([](const auto& in) { return sum(in[0]); }, {x});
  check_gradients([](const auto& in) { return mean(in[0]); }, {x});
  const std::vector<std::vector<long>> axis_sets = {{0}, {1}, {2}, {-1}, {0, 2}, {1, 2}, {0, 1, 2}};
  for (const auto& axes : axis_sets) {
    for (bool keep : {false, true}) {
      CAPTURE(keep);
      check_gradients([&](const auto& in) { return sum(in[0], axes, keep); }, {x});
      check_gradients([&](const auto& in) { return mean(in[0], axes, keep); }, {x});
    }
  }
}

TEST_CASE("sum: the gradient of a large tensor's sum is ones everywhere, on 1 and 2 threads") {
  // 300 000 values: large enough that two threads share the fill of the gradient.
  for (std::size_t threads : {1, 2}) {
    CAPTURE(threads);
    test::ThreadCount count(threads);
    Var<float> x = Var<float>::parameter(Tensor<float>::zeros({300, 1000}));
    Var<float> h = x * Var<float>(Tensor<float>::full({}, 1.0f));  // h's gradient is a new one
    sum(h).backward();
    std::size_t wrong = 0;
    for (float g : x.grad()) wrong += g != 1.0f;
    CHECK(wrong == 0);
    sum(x).backward();  // accumulates into x's gradient
    for (float g : x.grad()) wrong += g != 2.0f;
    CHECK(wrong == 0);
  }
}

TEST_CASE("reshape, flatten, transpose: values and gradcheck") {
  const Tensor<double> x = test::random_tensor({2, 3, 4}, 42);
  Var<double> v(x);
  CHECK(reshape(v, {-1, 4}).shape() == Shape{6, 4});
  CHECK(flatten(v).shape() == Shape{24});
  CHECK(flatten(v, 1).shape() == Shape{2, 12});
  CHECK(flatten(v, 0, 1).shape() == Shape{6, 4});
  Var<double> t = transpose(v, 0, 2);
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.value().at({3, 1, 0}) == x.at({0, 1, 3}));
  Var<double> m(test::random_tensor({3, 5}, 43));
  CHECK(transpose(m).value().at({4, 2}) == m.value().at({2, 4}));

  check_gradients([](const auto& in) { return reshape(in[0], {4, -1}) * 2.0; }, {x});
  check_gradients([](const auto& in) { return flatten(in[0], 1); }, {x});
  check_gradients([](const auto& in) { return transpose(in[0], 0, 2); }, {x});
  check_gradients([](const auto& in) { return transpose(in[0], -1, 1); }, {x});
  check_gradients([](const auto& in) { return transpose(in[0]); },
                  {test::random_tensor({3, 5}, 44)});
}

TEST_CASE("reshape: errors name the shapes") {
  Var<double> v(Tensor<double>::zeros({2, 3}));
  CHECK(test::error_of([&] {
          reshape(v, {4, -1});
        }).find("cannot infer -1 for [2, 3]") != std::string::npos);
  CHECK(test::error_of([&] {
          reshape(v, {-1, -1});
        }).find("more than one -1") != std::string::npos);
  CHECK(test::error_of([&] { transpose(v, 0, 5); }).find("transpose: axis 5") != std::string::npos);
  CHECK(test::error_of([&] { mean(v, {1, -1}); }).find("given twice") != std::string::npos);
}

TEST_CASE("argmax: the first largest value, and a NaN beats every number as in PyTorch") {
  const float nan = std::nanf("");
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<std::pair<std::vector<float>, std::size_t>> cases = {
      {{1, 3, 2}, 1},   {{3, 3, 1}, 0}, {{-inf, -inf}, 0}, {{1, nan, 5}, 1},     {{nan, 9, nan}, 0},
      {{2, 7, nan}, 2}, {{inf, 1}, 0},  {{4}, 0},          {{-1, -0.5f, -2}, 1},
  };
  for (const auto& [row, expected] : cases) CHECK(argmax(row.data(), row.size()) == expected);
}

TEST_CASE("tensor: a shape with more elements than an address space holds is an error") {
  const std::size_t big = std::size_t(1) << 32;
  // 2^64 elements wrap Shape::numel() around to 0; 2^62 floats overflow the byte count.
  CHECK(Shape{big, big}.numel() == 0);
  CHECK(test::error_of([&] {
          Tensor<float>(Shape{big, big});
        }) ==
        "Tensor: shape [4294967296, 4294967296] has more elements than an address space holds");
  CHECK_THROWS_AS(Tensor<double>(Shape{big, big / 4}), ShapeError);
  Tensor<float> t(Shape{2, 3});
  CHECK_THROWS_AS(t.resize(Shape{big, 2, big}), ShapeError);
  CHECK(t.shape() == Shape{2, 3});  // unchanged by the failed resize
  CHECK(Tensor<float>(Shape{big, big, 0}).numel() == 0);
}
