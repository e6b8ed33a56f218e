// leaky_relu, elu, gelu, silu: gradchecks over their options, kinks, and closed forms.
// (Values at 0, ±inf and NaN against PyTorch's: test_empty.cpp; against PyTorch on random
// inputs: interop/ops_interop.)
#include <cmath>
#include <functional>

#include "helpers.hpp"

using namespace tapegrad;
using test::check_gradients;

namespace {
using Activation = std::function<Var<double>(const Var<double>&)>;
GradcheckFunction of(Activation op) {
  return [op](const std::vector<Var<double>>& in) { return op(in[0]); };
}

// Every op with each option that matters: activation(i, x) for i < activation_count.
constexpr std::size_t activation_count = 10;
template <class T>
Var<T> activation(std::size_t i, const Var<T>& x) {
  switch (i) {
    case 0:
      return leaky_relu(x);
    case 1:
      return leaky_relu(x, T(0.2));
    case 2:
      return leaky_relu(x, T(-0.5));
    case 3:
      return leaky_relu(x, T(0));
    case 4:
      return elu(x);
    case 5:
      return elu(x, T(0.5));
    case 6:
      return elu(x, T(2));
    case 7:
      return gelu(x);
    case 8:
      return gelu(x, GeluApproximation::tanh);
    default:
      return silu(x);
  }
}
}  // namespace

TEST_CASE("activations: every op and option passes gradcheck") {
  // |x| in [0.2, 1] and wider values in [-6, 6] (the tails of gelu and silu), none near 0.
  const Tensor<double> x = test::away_from_zero({3, 4}, 21);
  Tensor<double> wide = test::random_tensor({4, 5}, 22, 0.2, 6.0);
  for (std::size_t k = 0; k < wide.numel(); k += 2) wide[k] = -wide[k];
  for (std::size_t i = 0; i < activation_count; ++i) {
    CAPTURE(i);
    const Activation op = [i](const Var<double>& v) { return activation(i, v); };
    check_gradients(of(op), {x});
    check_gradients(of(op), {wide});
    // Composed with itself: the rule must use its own input, not the graph's.
    check_gradients(of([op](const Var<double>& v) { return op(op(v) * 1.5); }), {x});
  }
}

TEST_CASE(
    "activations: at their kinks (leaky_relu at 0, elu at 0 for α ≠ 1) gradcheck warns rather "
    "than fails, and the gradient there is PyTorch's (slope, α)") {
  GradcheckOptions options;
  options.names = {"x"};
  const Tensor<double> at_kink({2, 2}, {0.7, -0.4, 0.0, 1.3});
  for (const auto& [op, slope_at_0] : std::vector<std::pair<Activation, double>>{
           {[](const auto& v) { return leaky_relu(v); }, 0.01},
           {[](const auto& v) { return elu(v, 2.0); }, 2.0},
           {[](const auto& v) { return elu(v, 0.5); }, 0.5}}) {
    const GradcheckResult r = gradcheck(of(op), {at_kink}, options);
    INFO(r.report);
    CHECK(r.passed);
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.warnings[0].find("input 0 (\"x\") element [1, 0]") != std::string::npos);
    CHECK(r.report.find("3 elements compared, 1 skipped at kinks") != std::string::npos);
    Var<double> v = Var<double>::parameter(at_kink);
    sum(op(v)).backward();
    CHECK(v.grad()[2] == slope_at_0);
  }
  // elu with α = 1 is C¹ at 0: no kink, no warning.
  const GradcheckResult smooth = gradcheck(of([](const auto& v) { return elu(v); }), {at_kink});
  CHECK(smooth.passed);
  CHECK(smooth.warnings.empty());
}

TEST_CASE("activations: closed forms and identities") {
  const Tensor<double> x = test::random_tensor({50}, 23, -5, 5);
  const Var<double> v(x);
  const Tensor<double> lr = leaky_relu(v, 0.2).value(), e = elu(v, 1.5).value(),
                       g = gelu(v).value(), gt = gelu(v, GeluApproximation::tanh).value(),
                       s = silu(v).value(), sig = sigmoid(v).value();
  for (std::size_t k = 0; k < x.numel(); ++k) {
    const double xi = x[k];
    CAPTURE(xi);
    CHECK(lr[k] == (xi > 0 ? xi : 0.2 * xi));
    CHECK(e[k] == doctest::Approx(xi > 0 ? xi : 1.5 * (std::exp(xi) - 1)).epsilon(1e-15));
    CHECK(g[k] == doctest::Approx(0.5 * xi * (1 + std::erf(xi / std::sqrt(2.0)))).epsilon(1e-12));
    const double u = std::sqrt(2 / M_PI) * (xi + 0.044715 * xi * xi * xi);
    CHECK(gt[k] == doctest::Approx(0.5 * xi * (1 + std::tanh(u))).epsilon(1e-12));
    // The tanh form approximates the exact one within 5e-4 everywhere.
    CHECK(std::abs(gt[k] - g[k]) < 5e-4);
    CHECK(s[k] == doctest::Approx(xi * sig[k]).epsilon(1e-15));
  }
  // gelu's left tail without cancellation: x·Φ(x) at −10 is −10·7.62e-24.
  CHECK(gelu(Var<double>(Tensor<double>::scalar(-10.0))).item() ==
        doctest::Approx(-10 * 7.619853024160527e-24).epsilon(1e-12));
}

TEST_CASE("activations: float agrees with double within a few float ulp") {
  const Tensor<float> xf = test::random_tensor<float>({2000}, 24, -12, 12);
  Tensor<double> xd(xf.shape());
  for (std::size_t k = 0; k < xf.numel(); ++k) xd[k] = xf[k];
  for (std::size_t i = 0; i < activation_count; ++i) {
    CAPTURE(i);
    Var<float> vf = Var<float>::parameter(xf);
    Var<float> yf = activation(i, vf);
    sum(yf).backward();
    Var<double> vd = Var<double>::parameter(xd);
    Var<double> yd = activation(i, vd);
    sum(yd).backward();
    double worst_y = 0, worst_g = 0;
    for (std::size_t k = 0; k < xd.numel(); ++k) {
      worst_y = std::max(worst_y,
                         std::abs(yf.value()[k] - yd.value()[k]) / (1 + std::abs(yd.value()[k])));
      worst_g =
          std::max(worst_g, std::abs(vf.grad()[k] - vd.grad()[k]) / (1 + std::abs(vd.grad()[k])));
    }
    CHECK(worst_y < 1e-6);
    CHECK(worst_g < 1e-6);
  }
}
