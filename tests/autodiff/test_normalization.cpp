// batch_norm, batch_norm_eval and layer_norm: gradchecks over their options, values checkable by
// hand, empty inputs, and the errors. (Agreement with PyTorch: tests/interop/norm_interop.)
#include <cmath>

#include "helpers.hpp"

using namespace tapegrad;
using test::check_gradients;

namespace {

// The affine options: none, weight only, weight and bias.
enum class Affine { none, weight, both };
const Affine affines[] = {Affine::none, Affine::weight, Affine::both};

// x, then the weight and bias the option uses, as gradcheck inputs.
std::vector<Tensor<double>> inputs(const Tensor<double>& x, const Shape& param, Affine a,
                                   std::uint64_t seed) {
  std::vector<Tensor<double>> in{x};
  if (a != Affine::none) in.push_back(test::random_tensor(param, seed, 0.5, 2.0));
  if (a == Affine::both) in.push_back(test::random_tensor(param, seed + 1));
  return in;
}

Var<double> weight_of(const std::vector<Var<double>>& in) {
  return in.size() > 1 ? in[1] : Var<double>();
}
Var<double> bias_of(const std::vector<Var<double>>& in) {
  return in.size() > 2 ? in[2] : Var<double>();
}

const Shape bn_shapes[] = {{6, 3}, {4, 3, 5}, {2, 3, 2, 3}};

// The gradients of x [7, 3, 11] and of γ (all 1.5) under batch_norm or layer_norm over the last
// dimension, for the upstream gradient g.
template <class T>
std::vector<Tensor<T>> run(const Tensor<T>& x, const Tensor<T>& g, bool layer) {
  Var<T> v = Var<T>::parameter(x);
  Var<T> w = Var<T>::parameter(Tensor<T>::full(layer ? Shape{11} : Shape{3}, T(1.5)));
  (layer ? layer_norm(v, {11}, w) : batch_norm(v, w)).backward(g);
  return {v.grad(), w.grad()};
}

}  // namespace

TEST_CASE("batch_norm: gradcheck in training over [N, C], [N, C, L], [N, C, H, W], any affine") {
  std::uint64_t seed = 300;
  for (const Shape& s : bn_shapes)
    for (Affine a : affines) {
      CAPTURE(s.to_string());
      CAPTURE(static_cast<int>(a));
      const Tensor<double> x = test::random_tensor(s, seed++, -2, 2);
      check_gradients([](const auto& in) { return batch_norm(in[0], weight_of(in), bias_of(in)); },
                      inputs(x, {s[1]}, a, seed += 2));
      // A larger ε, and an upstream gradient through a nonlinearity of y.
      check_gradients(
          [](const auto& in) { return tanh(batch_norm(in[0], weight_of(in), bias_of(in), 0.3)); },
          inputs(x, {s[1]}, a, seed += 2));
    }
}

TEST_CASE("batch_norm_eval: gradcheck over [N, C], [N, C, L], [N, C, H, W], any affine") {
  std::uint64_t seed = 330;
  for (const Shape& s : bn_shapes)
    for (Affine a : affines) {
      CAPTURE(s.to_string());
      CAPTURE(static_cast<int>(a));
      const Tensor<double> x = test::random_tensor(s, seed++, -2, 2);
      const Tensor<double> mean = test::random_tensor({s[1]}, seed++);
      const Tensor<double> var = test::random_tensor({s[1]}, seed++, 0.2, 3);
      check_gradients(
          [mean, var](const auto& in) {
            return batch_norm_eval(in[0], mean, var, weight_of(in), bias_of(in));
          },
          inputs(x, {s[1]}, a, seed += 2));
    }
}

TEST_CASE("layer_norm: gradcheck over several normalized shapes, any affine") {
  struct Case {
    Shape x, normalized;
  };
  const Case cases[] = {{{4, 5}, {5}},    {{2, 3, 4}, {4}}, {{2, 3, 4}, {3, 4}},
                        {{3, 4}, {3, 4}}, {{6}, {6}},       {{2, 2, 1, 3}, {1, 3}}};
  std::uint64_t seed = 360;
  for (const Case& c : cases)
    for (Affine a : affines) {
      CAPTURE(c.x.to_string());
      CAPTURE(c.normalized.to_string());
      CAPTURE(static_cast<int>(a));
      const Tensor<double> x = test::random_tensor(c.x, seed++, -2, 2);
      const Shape ns = c.normalized;
      check_gradients(
          [ns](const auto& in) { return layer_norm(in[0], ns, weight_of(in), bias_of(in)); },
          inputs(x, ns, a, seed += 2));
      check_gradients(
          [ns](const auto& in) {
            return tanh(layer_norm(in[0], ns, weight_of(in), bias_of(in), 0.3));
          },
          inputs(x, ns, a, seed += 2));
    }
}

TEST_CASE_TEMPLATE("batch_norm: a channel with mean 0 and variance 1 stays; γ and β apply", T,
                   float, double) {
  // Channel 0 holds −1, 1, −1, 1 (mean 0, biased variance 1); channel 1 holds 1, 3, 5, 7 (mean
  // 4, biased variance 5, unbiased 20/3). ε = 0.
  const Tensor<T> x({2, 2, 2}, {T(-1), T(1), T(1), T(3), T(-1), T(1), T(5), T(7)});
  Tensor<T> mean, var;
  const Tensor<T> y = batch_norm(Var<T>(x), Var<T>(), Var<T>(), 0.0, &mean, &var).value();
  const double s5 = std::sqrt(5.0);
  const double expected[] = {-1, 1, -3 / s5, -1 / s5, -1, 1, 1 / s5, 3 / s5};
  for (std::size_t k = 0; k < 8; ++k)
    CHECK(static_cast<double>(y[k]) == doctest::Approx(expected[k]).epsilon(1e-6));
  CHECK(y[0] == T(-1));  // exactly
  CHECK(y[1] == T(1));
  REQUIRE(mean.shape() == Shape{2});
  CHECK(static_cast<double>(mean[0]) == 0);
  CHECK(static_cast<double>(mean[1]) == doctest::Approx(4));
  CHECK(static_cast<double>(var[0]) == doctest::Approx(4.0 / 3));  // unbiased: 4 / 3
  CHECK(static_cast<double>(var[1]) == doctest::Approx(20.0 / 3));
  const Var<T> w(Tensor<T>({2}, {T(2), T(-1)})), b(Tensor<T>({2}, {T(3), T(0.5)}));
  const Tensor<T> yab = batch_norm(Var<T>(x), w, b, 0.0).value();
  CHECK(yab[0] == T(1));  // 2·(−1) + 3
  CHECK(yab[1] == T(5));
  CHECK(static_cast<double>(yab[3]) == doctest::Approx(1 / s5 + 0.5).epsilon(1e-6));
}

TEST_CASE("batch_norm: the gradients by hand, and the identities of the training gradient") {
  // Channel of x = [−1, 1] (x̂ = x with ε = 0), gy = [a, b]: mean(gy) = (a + b)/2 and
  // mean(gy x̂) = (b − a)/2, so gx = γ (gy − (a + b)/2 − x̂ (b − a)/2) = 0: with two values a channel
  // normalises to ±1 whatever x is. gγ = b − a, gβ = a + b.
  Var<double> x = Var<double>::parameter(Tensor<double>({2, 1}, {-1, 1}));
  Var<double> w = Var<double>::parameter(Tensor<double>({1}, {3}));
  Var<double> b = Var<double>::parameter(Tensor<double>({1}, {0}));
  batch_norm(x, w, b, 0.0).backward(Tensor<double>({2, 1}, {0.25, 2}));
  CHECK(x.grad()[0] == 0);
  CHECK(x.grad()[1] == 0);
  CHECK(w.grad()[0] == 1.75);
  CHECK(b.grad()[0] == 2.25);
  // In training with ε = 0, Σ gx = 0 and Σ gx ⊙ x̂ = 0 per channel (y is invariant to shifting
  // and scaling a channel of x); in evaluation gx = γ gy / √(var + ε).
  const Tensor<double> xv = test::random_tensor({5, 2, 3}, 390, -2, 2);
  const Tensor<double> gy = test::random_tensor({5, 2, 3}, 391);
  Var<double> xt = Var<double>::parameter(xv);
  Var<double> y = batch_norm(xt, Var<double>(Tensor<double>({2}, {1.5, -2})), Var<double>(), 0.0);
  const Tensor<double> xhat =
      batch_norm(Var<double>(xv), Var<double>(), Var<double>(), 0.0).value();
  y.backward(gy);
  for (std::size_t c = 0; c < 2; ++c) {
    double sum = 0, dot = 0;
    for (std::size_t n = 0; n < 5; ++n)
      for (std::size_t i = 0; i < 3; ++i) {
        const std::size_t k = (n * 2 + c) * 3 + i;
        sum += xt.grad()[k];
        dot += xt.grad()[k] * xhat[k];
      }
    CHECK(std::abs(sum) < 1e-12);
    CHECK(std::abs(dot) < 1e-12);
  }
  Var<double> xe = Var<double>::parameter(xv);
  const Tensor<double> rm({2}, {0.5, -1}), rv({2}, {4, 0.25});
  batch_norm_eval(xe, rm, rv, Var<double>(Tensor<double>({2}, {1.5, -2})), Var<double>(), 0.0)
      .backward(gy);
  for (std::size_t k = 0; k < xv.numel(); ++k) {
    const std::size_t c = (k / 3) % 2;
    CHECK(xe.grad()[k] == doctest::Approx(gy[k] * (c == 0 ? 1.5 / 2 : -2 / 0.5)).epsilon(1e-15));
  }
}

TEST_CASE("batch_norm_eval: y = (x − running_mean)/√(running_var + ε)·γ + β") {
  const Tensor<double> x({2, 2}, {1, 2, 3, 4});
  const Tensor<double> rm({2}, {1, 1}), rv({2}, {4, 0.25});
  const Var<double> w(Tensor<double>({2}, {2, 1})), b(Tensor<double>({2}, {0, 10}));
  const Tensor<double> y = batch_norm_eval(Var<double>(x), rm, rv, w, b, 0.0).value();
  test::check_close(y, Tensor<double>({2, 2}, {0, 12, 2, 16}), 0);
  const Tensor<double> plain = batch_norm_eval(Var<double>(x), rm, rv).value();  // ε = 1e-5
  CHECK(plain[1] == doctest::Approx(1 / std::sqrt(0.25 + 1e-5)).epsilon(1e-15));
}

TEST_CASE_TEMPLATE("layer_norm: a row with mean 0 and variance 1 stays; γ and β apply", T, float,
                   double) {
  // Row 0: −1, 1, −1, 1 (mean 0, variance 1); row 1: 2, 4, 6, 8 (mean 5, variance 5).
  const Tensor<T> x({2, 4}, {T(-1), T(1), T(-1), T(1), T(2), T(4), T(6), T(8)});
  const Tensor<T> y = layer_norm(Var<T>(x), {4}, Var<T>(), Var<T>(), 0.0).value();
  for (std::size_t k = 0; k < 4; ++k) CHECK(y[k] == x[k]);
  const double s5 = std::sqrt(5.0);
  CHECK(static_cast<double>(y[4]) == doctest::Approx(-3 / s5).epsilon(1e-6));
  CHECK(static_cast<double>(y[7]) == doctest::Approx(3 / s5).epsilon(1e-6));
  const Var<T> w(Tensor<T>({4}, {T(1), T(2), T(3), T(4)})),
      b(Tensor<T>({4}, {T(0), T(1), T(0), T(1)}));
  const Tensor<T> yab = layer_norm(Var<T>(x), {4}, w, b, 0.0).value();
  test::check_close(Tensor<T>({4}, {yab[0], yab[1], yab[2], yab[3]}),
                    Tensor<T>({4}, {T(-1), T(3), T(-3), T(5)}), 0);
  // Normalising over [2, 4] takes all 8 values of x as one row: mean 2.5, variance 9.25.
  const Tensor<T> all = layer_norm(Var<T>(x), {2, 4}, Var<T>(), Var<T>(), 0.0).value();
  CHECK(static_cast<double>(all[4]) == doctest::Approx(-0.5 / std::sqrt(9.25)).epsilon(1e-6));
  // One element per row normalises to 0.
  const Tensor<T> one = layer_norm(Var<T>(Tensor<T>({3, 1}, {T(5), T(-2), T(0)})), {1}).value();
  for (T v : one) CHECK(v == T(0));
}

TEST_CASE("layer_norm: with ε = 0 each row's gradient sums to 0 and is orthogonal to x̂") {
  const Tensor<double> xv = test::random_tensor({3, 2, 5}, 395, -2, 2);
  const Tensor<double> gy = test::random_tensor({3, 2, 5}, 396);
  Var<double> x = Var<double>::parameter(xv);
  const Var<double> w(test::random_tensor({2, 5}, 397, 0.5, 2));
  layer_norm(x, {2, 5}, w, Var<double>(), 0.0).backward(gy);
  const Tensor<double> xhat =
      layer_norm(Var<double>(xv), {2, 5}, Var<double>(), Var<double>(), 0.0).value();
  for (std::size_t r = 0; r < 3; ++r) {
    double sum = 0, dot = 0;
    for (std::size_t j = 0; j < 10; ++j) {
      sum += x.grad()[r * 10 + j];
      dot += x.grad()[r * 10 + j] * xhat[r * 10 + j];
    }
    CHECK(std::abs(sum) < 1e-12);
    CHECK(std::abs(dot) < 1e-12);
  }
}

TEST_CASE("normalisation: float agrees with double, and results do not depend on threads") {
  const Tensor<double> xd = test::random_tensor({7, 3, 11}, 398, -3, 3);
  const Tensor<double> gd = test::random_tensor({7, 3, 11}, 399);
  Tensor<float> xf(xd.shape()), gf(gd.shape());
  for (std::size_t k = 0; k < xd.numel(); ++k) {
    xf[k] = static_cast<float>(xd[k]);
    gf[k] = static_cast<float>(gd[k]);
  }
  for (bool layer : {false, true}) {
    CAPTURE(layer);
    const auto d = run(xd, gd, layer);
    const auto f = run(xf, gf, layer);
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t k = 0; k < d[i].numel(); ++k)
        CHECK(static_cast<double>(f[i][k]) == doctest::Approx(d[i][k]).epsilon(1e-5).scale(1));
    std::vector<Tensor<double>> four;
    {
      test::ThreadCount threads(4);
      four = run(xd, gd, layer);
    }
    for (std::size_t i = 0; i < 2; ++i) CHECK(test::bit_identical(four[i], d[i]));
  }
}

TEST_CASE("batch_norm: channels longer than a block, and many channels, against direct sums") {
  // The [N, C, L] passes take groups of whole channels up to 2048 values a sample, or one
  // channel in blocks of 2048: every way of cutting is checked against the formulas summed
  // directly, on 1 and 3 threads.
  std::uint64_t seed = 500;
  for (const Shape& s : {Shape{3, 2, 5000}, Shape{2, 3, 2048}, Shape{4, 300, 7}, Shape{2, 5, 600},
                         Shape{5, 1, 2049}}) {
    CAPTURE(s.to_string());
    const std::size_t batch = s[0], channels = s[1], length = s[2];
    const Tensor<double> xv = test::random_tensor(s, seed++, -3, 3);
    const Tensor<double> gy = test::random_tensor(s, seed++);
    const Tensor<double> wv = test::random_tensor({channels}, seed++, 0.5, 2);
    const auto run_on = [&](std::size_t threads) {
      test::ThreadCount count(threads);
      Var<double> x = Var<double>::parameter(xv), w = Var<double>::parameter(wv),
                  b = Var<double>::parameter(Tensor<double>::zeros({channels}));
      Tensor<double> mean, var;
      Var<double> y = batch_norm(x, w, b, 1e-5, &mean, &var);
      y.backward(gy);
      return std::vector<Tensor<double>>{y.value(), mean, var, x.grad(), w.grad(), b.grad()};
    };
    const std::vector<Tensor<double>> one = run_on(1), three = run_on(3);
    for (std::size_t i = 0; i < one.size(); ++i) CHECK(test::bit_identical(one[i], three[i]));
    const double m = static_cast<double>(batch * length);
    const auto at = [&](std::size_t n, std::size_t c, std::size_t i) {
      return (n * channels + c) * length + i;
    };
    for (std::size_t c = 0; c < channels; ++c) {
      double mu = 0, r = 0, sum_g = 0, sum_gx = 0;
      for (std::size_t n = 0; n < batch; ++n)
        for (std::size_t i = 0; i < length; ++i) mu += xv[at(n, c, i)];
      mu /= m;
      for (std::size_t n = 0; n < batch; ++n)
        for (std::size_t i = 0; i < length; ++i)
          r += (xv[at(n, c, i)] - mu) * (xv[at(n, c, i)] - mu);
      const double inv = 1 / std::sqrt(r / m + 1e-5);
      for (std::size_t n = 0; n < batch; ++n)
        for (std::size_t i = 0; i < length; ++i) {
          sum_g += gy[at(n, c, i)];
          sum_gx += gy[at(n, c, i)] * (xv[at(n, c, i)] - mu) * inv;
        }
      CHECK(one[1][c] == doctest::Approx(mu).epsilon(1e-12));
      CHECK(one[2][c] == doctest::Approx(r / (m - 1)).epsilon(1e-12));
      CHECK(one[4][c] == doctest::Approx(sum_gx).epsilon(1e-10));
      CHECK(one[5][c] == doctest::Approx(sum_g).epsilon(1e-10));
      for (std::size_t n = 0; n < batch; ++n)
        for (std::size_t i = 0; i < length; i += 7) {
          const std::size_t k = at(n, c, i);
          const double xhat = (xv[k] - mu) * inv;
          CHECK(one[0][k] == doctest::Approx(wv[c] * xhat).epsilon(1e-12));
          CHECK(one[3][k] == doctest::Approx(wv[c] * inv * (gy[k] - sum_g / m - xhat * sum_gx / m))
                                 .epsilon(1e-9)
                                 .scale(1));
        }
    }
  }
}

TEST_CASE("normalisation: empty inputs give empty outputs and zero parameter gradients") {
  for (const Shape& s : {Shape{0, 3}, Shape{0, 3, 4}, Shape{2, 3, 0}}) {
    CAPTURE(s.to_string());
    Var<double> x = Var<double>::parameter(Tensor<double>(s));
    Var<double> w = Var<double>::parameter(Tensor<double>::ones({3}));
    Var<double> b = Var<double>::parameter(Tensor<double>::ones({3}));
    Tensor<double> mean = Tensor<double>::ones({3}), var = Tensor<double>::ones({3});
    const Var<double> y = batch_norm(x, w, b, 1e-5, &mean, &var);
    CHECK(y.shape() == s);
    CHECK_FALSE(mean.defined());  // no statistics: the running ones stay as they are
    CHECK_FALSE(var.defined());
    sum(y).backward();
    CHECK(x.grad().shape() == s);
    test::check_close(w.grad(), Tensor<double>::zeros({3}), 0);
    test::check_close(b.grad(), Tensor<double>::zeros({3}), 0);
    CHECK(batch_norm_eval(Var<double>(Tensor<double>(s)), Tensor<double>::zeros({3}),
                          Tensor<double>::ones({3}))
              .shape() == s);
  }
  Var<double> x = Var<double>::parameter(Tensor<double>(Shape{0, 4}));
  Var<double> w = Var<double>::parameter(Tensor<double>::ones({4}));
  const Var<double> y = layer_norm(x, {4}, w);
  CHECK(y.shape() == Shape{0, 4});
  sum(y).backward();
  test::check_close(w.grad(), Tensor<double>::zeros({4}), 0);
  CHECK(layer_norm(Var<double>(Tensor<double>(Shape{2, 0})), {0}).shape() == Shape{2, 0});
}

TEST_CASE("normalisation: errors name the op and the shapes") {
  auto error = [](auto f) { return test::error_of(f); };
  const Var<double> x(test::random_tensor({4, 3, 2}, 400));
  const Var<double> w3(Tensor<double>::ones({3})), w4(Tensor<double>::ones({4}));
  const Tensor<double> t3 = Tensor<double>::ones({3}), t2 = Tensor<double>::ones({2});
  CHECK(error([&] { batch_norm(Var<double>(Tensor<double>::ones({3}))); }) ==
        "batch_norm: input must have shape [N, C, *] (rank 2 or more), got shape [3]");
  CHECK(error([&] { batch_norm(x, w4); }) ==
        "batch_norm: weight of shape [4] for input of shape [4, 3, 2] (expected [3], one per "
        "channel)");
  CHECK(error([&] { batch_norm(x, w3, w4); }).find("batch_norm: bias of shape [4]") == 0);
  CHECK(error([&] { batch_norm_eval(x, t2, t3); }) ==
        "batch_norm_eval: running mean of shape [2] for input of shape [4, 3, 2] (expected [3], "
        "one per channel)");
  CHECK(error([&] { batch_norm_eval(x, t3, t2); }).find("running variance of shape [2]") !=
        std::string::npos);
  CHECK(error([&] { batch_norm_eval(x, t3, t3, w4); }).find("batch_norm_eval: weight") == 0);
  CHECK(error([&] {
          batch_norm(Var<double>(Tensor<double>::ones({1, 3})));
        }) ==
        "batch_norm: Expected more than 1 value per channel when training, got input of shape "
        "[1, 3]");
  CHECK(error([&] {
          batch_norm(Var<double>(Tensor<double>::ones({1, 3, 1})));
        }).find("Expected more than 1 value per channel when training") != std::string::npos);
  CHECK(error([&] {  // evaluation takes one value per channel
          batch_norm_eval(Var<double>(Tensor<double>::ones({1, 3})), t3, t3);
        })
            .empty());
  CHECK(error([&] { layer_norm(x, {3}); }) ==
        "layer_norm: normalized_shape [3] is not the trailing dimensions of input of shape "
        "[4, 3, 2]");
  CHECK(error([&] {
          layer_norm(x, {5, 4, 3, 2});
        }).find("normalized_shape [5, 4, 3, 2]") != std::string::npos);
  CHECK(error([&] { layer_norm(x, Shape{}); }) ==
        "layer_norm: normalized_shape [] must have rank 1 or more");
  CHECK(error([&] {
          layer_norm(x, {3, 2}, w3);
        }) ==
        "layer_norm: weight of shape [3] for input of shape [4, 3, 2] (expected [3, 2], "
        "normalized_shape)");
  CHECK(error([&] { layer_norm(x, {2}, Var<double>(), w3); }).find("layer_norm: bias") == 0);
}
