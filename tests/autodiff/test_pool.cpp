// max_pool1d and avg_pool1d: values, the tie rule, output lengths, gradchecks.
#include <cmath>
#include <limits>

#include "helpers.hpp"

using namespace tapegrad;

TEST_CASE("pool: max and average values, stride defaulting to the kernel, padding") {
  Var<double> x(Tensor<double>({1, 1, 6}, {1, 5, 2, 2, -1, 3}));
  test::check_close(max_pool1d(x, 2).value(), Tensor<double>({1, 1, 3}, {5, 2, 3}));
  test::check_close(max_pool1d(x, 3, 1).value(), Tensor<double>({1, 1, 4}, {5, 5, 2, 3}));
  test::check_close(max_pool1d(x, 2, 2, 1).value(), Tensor<double>({1, 1, 4}, {1, 5, 2, 3}));
  test::check_close(avg_pool1d(x, 2).value(), Tensor<double>({1, 1, 3}, {3, 2, 1}));
  // Padding counts as 0 and in the divisor (PyTorch's count_include_pad).
  test::check_close(avg_pool1d(x, 2, 2, 1).value(),
                    Tensor<double>({1, 1, 4}, {0.5, 3.5, 0.5, 1.5}));
}

TEST_CASE("pool: the gradient goes to the window's maximum, the first one on ties") {
  Var<double> x = Var<double>::parameter(Tensor<double>({1, 1, 6}, {4, 4, 1, 7, 7, 7}));
  sum(max_pool1d(x, 3)).backward();
  test::check_close(x.grad(), Tensor<double>({1, 1, 6}, {1, 0, 0, 1, 0, 0}));
  Var<double> y = Var<double>::parameter(Tensor<double>({1, 1, 4}, {1, 3, 2, 0}));
  sum(max_pool1d(y, 2, 1)).backward();  // windows [1,3] [3,2] [2,0]: 3 wins twice
  test::check_close(y.grad(), Tensor<double>({1, 1, 4}, {0, 2, 1, 0}));
}

TEST_CASE("pool: gradcheck away from ties, with strides and padding") {
  const Tensor<double> x = test::random_tensor({2, 3, 11}, 150);  // distinct values: no ties
  for (std::size_t k : {2, 3})
    for (std::size_t s : {0, 1, 2})
      for (std::size_t p : {0, 1}) {
        test::check_gradients([=](const auto& in) { return max_pool1d(in[0], k, s, p); }, {x});
        test::check_gradients([=](const auto& in) { return avg_pool1d(in[0], k, s, p); }, {x});
      }
}

TEST_CASE("pool: windows of 2 at stride 2 (the vectorised path), even and odd lengths") {
  for (std::size_t length : {8, 9}) {  // 9: each row's last value is in no window
    CAPTURE(length);
    const Tensor<double> x = test::random_tensor({3, 2, length}, 151);
    test::check_gradients([](const auto& in) { return max_pool1d(in[0], 2); }, {x});
    Var<double> xv = Var<double>::parameter(x);
    sum(max_pool1d(xv, 2)).backward();
    sum(max_pool1d(xv, 2)).backward();  // accumulates
    for (std::size_t r = 0; r < 6; ++r)
      for (std::size_t t = 0; t < length / 2; ++t) {
        const std::size_t a = r * length + 2 * t, b = a + 1;
        const bool second = x[b] > x[a];
        CHECK(xv.grad()[a] == (second ? 0.0 : 2.0));
        CHECK(xv.grad()[b] == (second ? 2.0 : 0.0));
      }
    if (length % 2) CHECK(xv.grad()[length - 1] == 0.0);
  }
  // Ties go to the first of the pair; a NaN wins over a number, in either place.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Var<float> y =
      Var<float>::parameter(Tensor<float>({1, 1, 8}, {2.f, 2.f, 1.f, 3.f, nan, 1.f, 1.f, nan}));
  Var<float> m = max_pool1d(y, 2);
  CHECK(m.value()[0] == 2.f);
  CHECK(m.value()[1] == 3.f);
  CHECK(std::isnan(m.value()[2]));
  CHECK(std::isnan(m.value()[3]));
  m.backward(Tensor<float>::ones({1, 1, 4}));
  test::check_close(y.grad(), Tensor<float>({1, 1, 8}, {1, 0, 0, 1, 1, 0, 0, 1}));
}

TEST_CASE("pool: a large max-pool, split among two threads, matches one thread bit for bit") {
  const Tensor<float> x = test::random_tensor<float>({64, 64, 80}, 152);  // 327 680 values
  const Tensor<float> gy = test::random_tensor<float>({64, 64, 40}, 153);
  Tensor<float> y[2], gx[2];
  for (std::size_t threads : {1, 2}) {
    test::ThreadCount count(threads);
    Var<float> xv = Var<float>::parameter(x);
    Var<float> out = max_pool1d(xv, 2);
    out.backward(gy);
    y[threads - 1] = out.value();
    gx[threads - 1] = xv.grad();
  }
  CHECK(test::bit_identical(y[0], y[1]));
  CHECK(test::bit_identical(gx[0], gx[1]));
  std::size_t wrong = 0;  // each pair's larger value, and its gradient in its place
  for (std::size_t i = 0; i < y[0].numel(); ++i) {
    const bool second = x[2 * i + 1] > x[2 * i];
    wrong += y[0][i] != (second ? x[2 * i + 1] : x[2 * i]);
    wrong += gx[0][2 * i + (second ? 1 : 0)] != gy[i] || gx[0][2 * i + (second ? 0 : 1)] != 0.f;
  }
  CHECK(wrong == 0);
}

TEST_CASE("pool: output lengths and invalid parameters") {
  CHECK(pool1d_output_length(28, 2, 2, 0) == 14);
  CHECK(pool1d_output_length(14, 2, 2, 0) == 7);
  CHECK(pool1d_output_length(7, 2, 2, 0) == 3);
  CHECK(pool1d_output_length(6, 2, 2, 1) == 4);
  CHECK(pool1d_output_length(125, 5, 5, 0) == 25);
  CHECK(test::error_of([] { pool1d_output_length(6, 2, 2, 2); }).find("at most half") !=
        std::string::npos);
  CHECK(test::error_of([] { pool1d_output_length(2, 3, 1, 0); }).find("shorter than the kernel") !=
        std::string::npos);
  CHECK(test::error_of([] {
          max_pool1d(Var<double>(Tensor<double>::zeros({4, 5})), 2);
        }).find("[N, C, L], got shape [4, 5]") != std::string::npos);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(max_pool1d(Var<float>(Tensor<float>({1, 1, 3}, {1.f, nan, 2.f})), 3).item()));
}
