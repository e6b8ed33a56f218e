// matmul (BLAS gemm with transpose flags) and the fused linear op.
#include "helpers.hpp"

using namespace tapegrad;
using test::check_gradients;

namespace {
// Reference product of stored matrices with optional transposes, in double.
Tensor<double> naive_matmul(const Tensor<double>& a, const Tensor<double>& b, bool ta, bool tb) {
  const std::size_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  const std::size_t n = tb ? b.dim(0) : b.dim(1);
  Tensor<double> c = Tensor<double>::zeros({m, n});
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t p = 0; p < k; ++p)
        c[i * n + j] += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
  return c;
}
}  // namespace

TEST_CASE("matmul: all four transpose-flag combinations match a naive product and gradcheck") {
  const std::size_t m = 3, k = 4, n = 5;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const Tensor<double> a = test::random_tensor(ta ? Shape{k, m} : Shape{m, k}, 31);
      const Tensor<double> b = test::random_tensor(tb ? Shape{n, k} : Shape{k, n}, 32);
      const Transpose fa = ta ? Transpose::yes : Transpose::no;
      const Transpose fb = tb ? Transpose::yes : Transpose::no;
      Var<double> c = matmul(Var<double>(a), Var<double>(b), fa, fb);
      test::check_close(c.value(), naive_matmul(a, b, ta, tb), 1e-12);
      check_gradients([=](const auto& in) { return matmul(in[0], in[1], fa, fb); }, {a, b});
    }
  }
}

TEST_CASE(
    "matmul: a product split between two threads (by columns or by rows of C) is right "
    "and bit-identical to one thread's") {
  // 2·m·n·k = 24 MFLOP: large enough to be split.
  for (auto [m, n] : {std::pair<std::size_t, std::size_t>{100, 400}, {400, 100}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const std::size_t k = 300;
        CAPTURE(m);
        CAPTURE(ta);
        CAPTURE(tb);
        const Tensor<double> a = test::random_tensor(ta ? Shape{k, m} : Shape{m, k}, 41);
        const Tensor<double> b = test::random_tensor(tb ? Shape{n, k} : Shape{k, n}, 42);
        const Transpose fa = ta ? Transpose::yes : Transpose::no;
        const Transpose fb = tb ? Transpose::yes : Transpose::no;
        const std::size_t saved = num_threads();
        set_num_threads(1);
        const Tensor<double> one = matmul(Var<double>(a), Var<double>(b), fa, fb).value();
        set_num_threads(2);
        const Tensor<double> two = matmul(Var<double>(a), Var<double>(b), fa, fb).value();
        set_num_threads(saved);
        test::check_close(two, naive_matmul(a, b, ta, tb), 1e-12);
        test::check_close(two, one, 0);
      }
}

TEST_CASE("matmul: float and double agree") {
  const Tensor<double> a = test::random_tensor({7, 9}, 33), b = test::random_tensor({9, 2}, 34);
  Tensor<float> af(a.shape()), bf(b.shape());
  std::copy(a.begin(), a.end(), af.begin());
  std::copy(b.begin(), b.end(), bf.begin());
  const Tensor<double> cd = matmul(Var<double>(a), Var<double>(b)).value();
  const Tensor<float> cf = matmul(Var<float>(af), Var<float>(bf)).value();
  for (std::size_t i = 0; i < cd.numel(); ++i) CHECK(cf[i] == doctest::Approx(cd[i]).epsilon(1e-5));
}

TEST_CASE("linear: y = x Wᵀ + b passes gradcheck with and without bias") {
  const Tensor<double> x = test::random_tensor({4, 3}, 35);
  const Tensor<double> w = test::random_tensor({5, 3}, 36);
  const Tensor<double> b = test::random_tensor({5}, 37);
  check_gradients([](const auto& in) { return linear(in[0], in[1], in[2]); }, {x, w, b});
  check_gradients([](const auto& in) { return linear(in[0], in[1]); }, {x, w});
  // Same as the unfused composition.
  Var<double> fused = linear(Var<double>(x), Var<double>(w), Var<double>(b));
  Var<double> composed =
      matmul(Var<double>(x), Var<double>(w), Transpose::no, Transpose::yes) + Var<double>(b);
  test::check_close(fused.value(), composed.value(), 1e-12);
}

TEST_CASE("linear: bias of the wrong length is named") {
  Var<double> x(Tensor<double>::zeros({2, 3})), w(Tensor<double>::zeros({4, 3}));
  const std::string msg =
      test::error_of([&] { linear(x, w, Var<double>(Tensor<double>::zeros({3}))); });
  CHECK(msg.find("bias of shape [3]") != std::string::npos);
  CHECK(msg.find("[4, 3]") != std::string::npos);
}
