// matmul (BLAS gemm with transpose flags) and the fused linear op; products bit-identical on any
// thread count.
#include <cstdlib>
#include <random>
#include <string>

#if defined(__linux__)
#include <unistd.h>
#endif

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

// Values drawn from N(0, 1), seeded.
template <class T>
Tensor<T> normal_tensor(const Shape& shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Tensor<T> t(shape);
  for (T& v : t) v = static_cast<T>(normal(rng));
  return t;
}

template <class T>
Tensor<T> converted(const Tensor<double>& t) {
  Tensor<T> out(t.shape());
  for (std::size_t i = 0; i < t.numel(); ++i) out[i] = static_cast<T>(t[i]);
  return out;
}

// Runs f() on `threads` threads.
template <class F>
auto on_threads(std::size_t threads, const F& f) {
  test::ThreadCount count(threads);
  return f();
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

TEST_CASE(
    "matmul: products once split by thread count, in float, are bit-identical on 1, 2 and 3 "
    "threads") {
  // A, B 300×300 from N(0, 1) differed in 2 203 elements (columns 136–151) on two threads; at
  // 256×1024×512 the gradients differed too.
  const Tensor<float> a = normal_tensor<float>({300, 300}, 1201);
  const Tensor<float> b = normal_tensor<float>({300, 300}, 1202);
  const auto product = [&] { return matmul(Var<float>(a), Var<float>(b)).value(); };
  const Tensor<float> one = on_threads(1, product);
  for (std::size_t threads : {2, 3}) {
    CAPTURE(threads);
    CHECK(test::bit_identical(one, on_threads(threads, product)));
  }
  const Tensor<float> x = normal_tensor<float>({256, 512}, 1203);
  const Tensor<float> w = normal_tensor<float>({512, 1024}, 1204);
  const auto gradients = [&] {
    Var<float> xv = Var<float>::parameter(x), wv = Var<float>::parameter(w);
    Var<float> y = matmul(xv, wv);
    y.backward(normal_tensor<float>(y.shape(), 1205));
    return std::vector<Tensor<float>>{y.value(), xv.grad(), wv.grad()};
  };
  const std::vector<Tensor<float>> one_g = on_threads(1, gradients),
                                   two_g = on_threads(2, gradients);
  for (std::size_t i = 0; i < one_g.size(); ++i) {
    CAPTURE(i);  // the product, then the gradients of x and w
    CHECK(test::bit_identical(one_g[i], two_g[i]));
  }
}

TEST_CASE_TEMPLATE(
    "blas::gemm: every transpose pair, beta 0 and 1, alpha 1 and not, is bit-identical on 1 and 2 "
    "threads on both sides of every size threshold and block",
    T, float, double) {
  // The thresholds: 1 MFLOP (tapegrad's kernels from there on, with AVX-512 and alpha 1);
  // m = 256 (op(A)·B on tapegrad's kernels up to there); 16 MFLOP (OpenBLAS's products split
  // from there on) and 32 MFLOP (tapegrad's kernels' products split from there on). The blocks:
  // C's rows in 4s, columns in tiles of 64 and in units of 16, B's rows in groups of 96, k in
  // blocks of 256 and vectors of 8 or 16. Alpha ≠ 1 sends every shape to OpenBLAS, the path
  // every product takes with the baseline kernels (TAPEGRAD_KERNELS=baseline or no AVX-512).
  // Where tapegrad is built with oneDNN, float products run on its sgemm in gemm_blocks' blocks
  // whatever the shape; CTest runs this again with TAPEGRAD_PRODUCTS=builtin.
  struct Size {
    std::size_t m, n, k;
  };
  const Size sizes[] = {
      {300, 300, 100},                   // the split that differed, 18 MFLOP
      {64, 64, 120},   {64, 64, 128},    // 0.98 and 1.05 MFLOP
      {256, 200, 320}, {260, 200, 320},  // m = 256 and beyond, 33 MFLOP
      {100, 400, 196}, {100, 400, 204},  // 15.7 and 16.3 MFLOP
      {64, 1000, 240}, {64, 1000, 256},  // 30.7 and 32.8 MFLOP
      {400, 100, 300},                   // m > n: split by rows
      {67, 600, 300},                    // m and n off the blocks
  };
  struct Scale {
    T alpha, beta;
  };
  std::uint64_t seed = 1300;
  for (const Size& s : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const auto [ad, bd, fa, fb] = operands(s.m, s.n, s.k, ta, tb, seed += 3);
        const Tensor<T> a = converted<T>(ad), b = converted<T>(bd);
        const Tensor<T> c0 = test::random_tensor<T>({s.m, s.n}, seed + 2);
        for (const Scale& scale : {Scale{1, 0}, Scale{1, 1}, Scale{T(0.5), 1}}) {
          CAPTURE(s.m);
          CAPTURE(s.n);
          CAPTURE(s.k);
          CAPTURE(ta);
          CAPTURE(tb);
          CAPTURE(scale.alpha);
          CAPTURE(scale.beta);
          const auto product = [&] {
            Tensor<T> c = c0;
            blas::gemm(fa, fb, s.m, s.n, s.k, scale.alpha, a.data(), b.data(), scale.beta,
                       c.data());
            return c;
          };
          const Tensor<T> one = on_threads(1, product);
          CHECK(test::bit_identical(one, on_threads(2, product)));
        }
      }
}

TEST_CASE_TEMPLATE(
    "matmul and linear: values and gradients, written and accumulated, are bit-identical on 1 and "
    "2 threads",
    T, float, double) {
  // Products on each side of m = 256 and of 32 MFLOP, forward and backward: with AVX-512, x·Wᵀ
  // and the gradient of A in A·B on tapegrad's kernels, the others on OpenBLAS. Two backward
  // passes: the second adds to the gradients (beta = 1 in the backward products).
  const std::size_t m = 264, n = 208, k = 320;
  const auto compare = [](const auto& forward, std::vector<Tensor<T>> inputs) {
    const auto run = [&] {
      std::vector<Var<T>> params;
      for (const Tensor<T>& t : inputs) params.push_back(Var<T>::parameter(t));
      std::vector<Tensor<T>> results;
      for (std::uint64_t pass = 0; pass < 2; ++pass) {
        Var<T> out = forward(params);
        out.backward(test::random_tensor<T>(out.shape(), 1401 + pass));
        if (pass == 0) results.push_back(out.value());
      }
      for (const Var<T>& p : params) results.push_back(p.grad());
      return results;
    };
    const std::vector<Tensor<T>> one = on_threads(1, run), two = on_threads(2, run);
    for (std::size_t i = 0; i < one.size(); ++i) {
      CAPTURE(i);  // the value, then the inputs' gradients
      CHECK(test::bit_identical(one[i], two[i]));
    }
  };
  std::uint64_t seed = 1400;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const auto [a, b, fa, fb] = operands(m, n, k, ta, tb, seed += 3);
      compare(
          [fa = fa, fb = fb](const std::vector<Var<T>>& p) { return matmul(p[0], p[1], fa, fb); },
          {converted<T>(a), converted<T>(b)});
    }
  const Tensor<T> x = test::random_tensor<T>({m, k}, seed + 10);
  const Tensor<T> w = test::random_tensor<T>({n, k}, seed + 11);
  const Tensor<T> bias = test::random_tensor<T>({n}, seed + 12);
  compare([](const std::vector<Var<T>>& p) { return linear(p[0], p[1], p[2]); }, {x, w, bias});
  compare([](const std::vector<Var<T>>& p) { return linear(p[0], p[1]); }, {x, w});
}

TEST_CASE_TEMPLATE(
    "conv1d: at stride 2 (im2col and gemm), values and gradients are bit-identical on 1 and 2 "
    "threads",
    T, float, double) {
  // Its products: y = W·col (270 rows: OpenBLAS), gW = gy·colᵀ (k = 792, not a multiple of the
  // vector width: OpenBLAS), gcol = Wᵀ·gy (160 rows: tapegrad's kernels with AVX-512).
  const Tensor<T> x = test::random_tensor<T>({4, 32, 400}, 1501);
  const Tensor<T> w = test::random_tensor<T>({270, 32, 5}, 1502);
  const Tensor<T> b = test::random_tensor<T>({270}, 1503);
  const auto run = [&] {
    Var<T> xv = Var<T>::parameter(x), wv = Var<T>::parameter(w), bv = Var<T>::parameter(b);
    Var<T> y = conv1d(xv, wv, bv, 2, 1);
    y.backward(test::random_tensor<T>(y.shape(), 1504));
    return std::vector<Tensor<T>>{y.value(), xv.grad(), wv.grad(), bv.grad()};
  };
  const std::vector<Tensor<T>> one = on_threads(1, run), two = on_threads(2, run);
  for (std::size_t i = 0; i < one.size(); ++i) {
    CAPTURE(i);  // the output, then the gradients of x, w and b
    CHECK(test::bit_identical(one[i], two[i]));
  }
}

#if defined(__linux__) && defined(__x86_64__)
TEST_CASE("matmul: the bit-identity tests pass again on OpenBLAS's Haswell and SkylakeX kernels") {
  // OpenBLAS picks its kernels when it is loaded, by the CPU (OPENBLAS_CORETYPE overrides the
  // choice where it is built for several, as Debian's is). Some kernel sets give a block of C the
  // same value alone as inside a larger call, and would hide a split of the products that
  // depends on the thread count: 0.3.21's Prescott set, which it picks on the development VM's
  // Intel CPU. Its Haswell set (also AMD Zen's) does not in sgemm, its SkylakeX set not in dgemm:
  // the tests "…bit-identical on 1…" run again, in a child process, in float on the Haswell set
  // and in double on the SkylakeX set, where this CPU runs them.
  if (std::getenv("TAPEGRAD_TEST_CHILD")) return;
  char self[4096];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
  REQUIRE(length > 0);
  self[length] = '\0';
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd");
  struct Run {
    const char* core;
    bool runs;
    const char* tests;
  };
  for (const Run& run :
       {Run{"Haswell", avx2, "*bit-identical on 1*<float>,*once split by thread count*"},
        Run{"SkylakeX", avx512, "*bit-identical on 1*<double>"}}) {
    if (!run.runs) continue;
    CAPTURE(run.core);
    // TAPEGRAD_PRODUCTS=builtin: float products on OpenBLAS and tapegrad's kernels even where
    // oneDNN's sgemm would run them.
    const std::string command = std::string(
                                    "TAPEGRAD_TEST_CHILD=1 TAPEGRAD_PRODUCTS=builtin "
                                    "OPENBLAS_CORETYPE=") +
                                run.core + " '" + self + "' --minimal --test-case='" + run.tests +
                                "'";
    CHECK(std::system(command.c_str()) == 0);
  }
}
#endif

TEST_CASE("blas::float_products names what runs float products") {
  const char* forced = std::getenv("TAPEGRAD_PRODUCTS");
  const bool builtin = forced && std::string(forced) == "builtin";
  const std::string runs = blas::float_products();
#if defined(TAPEGRAD_TEST_ONEDNN)
  const bool onednn = !builtin;
#else
  const bool onednn = false;
#endif
  CHECK((runs == "oneDNN sgemm") == onednn);
  if (runs == "tapegrad AVX-512 kernels + OpenBLAS") {  // only where the CPU has AVX-512
    const char* kernels = std::getenv("TAPEGRAD_KERNELS");
    CHECK_FALSE((kernels && std::string(kernels) == "baseline"));
    __builtin_cpu_init();
    CHECK(__builtin_cpu_supports("avx512f"));
  } else if (!onednn) {
    CHECK(runs == "OpenBLAS");
  }
}

TEST_CASE("blas::gemm: an empty inner dimension gives beta · C (C unread when beta is 0)") {
  std::vector<float> c = {1, 2, NAN, 4, 5, 6};
  blas::gemm(blas::Transpose::no, blas::Transpose::no, 2, 3, 0, 1.f, nullptr, nullptr, 0.f,
             c.data());
  for (float v : c) CHECK(v == 0.0f);
  std::vector<double> d = {1, 2, 3, 4};
  blas::gemm(blas::Transpose::yes, blas::Transpose::yes, 2, 2, 0, 1.0, nullptr, nullptr, 0.5,
             d.data());
  CHECK(d == std::vector<double>{0.5, 1, 1.5, 2});
}
