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

// Random operands of op(A)·op(B), [m, k]·[k, n], stored as the flags say, and the flags.
struct Operands {
  Tensor<double> a, b;
  Transpose fa, fb;
};
Operands operands(std::size_t m, std::size_t n, std::size_t k, bool ta, bool tb,
                  std::uint64_t seed) {
  return {test::random_tensor(ta ? Shape{k, m} : Shape{m, k}, seed),
          test::random_tensor(tb ? Shape{n, k} : Shape{k, n}, seed + 1),
          ta ? Transpose::yes : Transpose::no, tb ? Transpose::yes : Transpose::no};
}
}  // namespace

TEST_CASE("matmul: all four transpose-flag combinations match a naive product and gradcheck") {
  const std::size_t m = 3, k = 4, n = 5;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const Operands o = operands(m, n, k, ta, tb, 31);
      Var<double> c = matmul(Var<double>(o.a), Var<double>(o.b), o.fa, o.fb);
      test::check_close(c.value(), naive_matmul(o.a, o.b, ta, tb), 1e-12);
      const Transpose fa = o.fa, fb = o.fb;
      check_gradients([=](const auto& in) { return matmul(in[0], in[1], fa, fb); }, {o.a, o.b});
    }
  }
}

TEST_CASE(
    "matmul: a product split between two threads (by columns or by rows of C) is right "
    "and bit-identical to one thread's") {
  // 2·m·n·k ≥ 20 MFLOP: large enough to be split. With AVX-512, A·Bᵀ at k = 256 (a multiple
  // of every vector width) and op(A)·B at m = 100 run on tapegrad's kernels, the rest on
  // OpenBLAS.
  for (auto [m, n] : {std::pair<std::size_t, std::size_t>{100, 400}, {400, 100}})
    for (std::size_t k : {256, 300})
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          CAPTURE(m);
          CAPTURE(k);
          CAPTURE(ta);
          CAPTURE(tb);
          const auto [a, b, fa, fb] = operands(m, n, k, ta, tb, 41);
          Tensor<double> one, two;
          {
            test::ThreadCount count(1);
            one = matmul(Var<double>(a), Var<double>(b), fa, fb).value();
          }
          {
            test::ThreadCount count(2);
            two = matmul(Var<double>(a), Var<double>(b), fa, fb).value();
          }
          test::check_close(two, naive_matmul(a, b, ta, tb), 1e-12);
          test::check_close(two, one, 0);
        }
}

TEST_CASE_TEMPLATE(
    "blas::gemm: every transpose pair, beta 0 and 1, on shapes around the kernels' blocks, "
    "matches a naive product",
    T, float, double) {
  // m, n, k off and on the register blocks (4 rows, tiles of 64 columns, groups of 96 rows of
  // B, vectors of 8 or 16, blocks of 256 of k): on CPUs with AVX-512 the products of 1 MFLOP
  // or more (m = 64 or 67, k = 256 or 300) run on tapegrad's kernels and take each of their
  // paths, the others on OpenBLAS; elsewhere all run on OpenBLAS.
  std::uint64_t seed = 300;
  const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-12;
  for (std::size_t m : {1, 7, 64, 67})
    for (std::size_t n : {1, 70, 200})
      for (std::size_t k : {1, 33, 256, 300})
        for (bool ta : {false, true})
          for (bool tb : {false, true})
            for (double beta : {0.0, 1.0}) {
              CAPTURE(m);
              CAPTURE(n);
              CAPTURE(k);
              CAPTURE(ta);
              CAPTURE(tb);
              CAPTURE(beta);
              const auto [a, b, fa, fb] = operands(m, n, k, ta, tb, seed += 3);
              const Tensor<double> c0 = test::random_tensor(Shape{m, n}, seed + 2);
              Tensor<double> expected = naive_matmul(a, b, ta, tb);
              if (beta == 1.0)
                for (std::size_t i = 0; i < expected.numel(); ++i) expected[i] += c0[i];
              Tensor<T> af(a.shape()), bf(b.shape()), cf(c0.shape());
              for (std::size_t i = 0; i < a.numel(); ++i) af[i] = static_cast<T>(a[i]);
              for (std::size_t i = 0; i < b.numel(); ++i) bf[i] = static_cast<T>(b[i]);
              for (std::size_t i = 0; i < c0.numel(); ++i) cf[i] = static_cast<T>(c0[i]);
              blas::gemm(fa, fb, m, n, k, T(1), af.data(), bf.data(), static_cast<T>(beta),
                         cf.data());
              double worst = 0;
              for (std::size_t i = 0; i < cf.numel(); ++i)
                worst = std::max(worst, std::abs(static_cast<double>(cf[i]) - expected[i]));
              CHECK(worst <= tol * static_cast<double>(k + 1));
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
