// gradcheck itself: it must fail on wrong backward rules and point at the guilty element.
#include "helpers.hpp"

#include <cmath>

using namespace tapegrad;

namespace {
// y = x², with a backward that is wrong only at flat element `bad` (by a factor 1.5).
Var<double> square_with_a_bug(const Var<double>& x, std::size_t bad) {
  Tensor<double> y = x.value();
  for (double& v : y) v *= v;
  return make_op<double>(
      "buggy_square", {x}, std::move(y), [bad](const Tensor<double>& gy, Gradients<double>& g) {
        const Tensor<double>& xv = g.input(0);
        g.accumulate(0, [&](std::size_t k) { return gy[k] * 2 * xv[k] * (k == bad ? 1.5 : 1.0); });
      });
}
}  // namespace

TEST_CASE("gradcheck: passes a correct op, fails a wrong one and names the worst element") {
  const Tensor<double> x = test::away_from_zero({2, 3}, 51);
  CHECK(gradcheck([](const auto& in) { return in[0] * in[0]; }, {x}));

  GradcheckOptions options;
  options.names = {"x"};
  const GradcheckResult r =
      gradcheck([](const auto& in) { return square_with_a_bug(in[0], 4); }, {x}, options);
  CHECK_FALSE(r.passed);
  INFO(r.report);
  CHECK(r.report.find("input 0 (\"x\")") != std::string::npos);
  CHECK(r.report.find("element [1, 1]") != std::string::npos);  // flat index 4 of [2, 3]
  CHECK(r.report.find("analytic") != std::string::npos);
  CHECK(r.report.find("numeric") != std::string::npos);
  CHECK(r.report.find("relative error") != std::string::npos);
  CHECK(r.report.find("eps = 1e-06, atol = 1e-05, rtol = 0.001") != std::string::npos);
}

TEST_CASE("gradcheck: the second input is named when its gradient is wrong") {
  const Tensor<double> a = test::away_from_zero({3}, 52), b = test::away_from_zero({2, 2}, 53);
  const GradcheckResult r =
      gradcheck([](const auto& in) { return sum(in[0]) * square_with_a_bug(in[1], 2); }, {a, b});
  CHECK_FALSE(r.passed);
  CHECK(r.report.find("input 1, element [1, 0]") != std::string::npos);
}

TEST_CASE("gradcheck: a gradient of the wrong shape is reported") {
  const GradcheckResult r = gradcheck(
      [](const auto& in) {
        return make_op<double>("wrong_shape", {in[0]}, in[0].value(),
                               [](const Tensor<double>&, Gradients<double>& g) {
                                 g.add(0, Tensor<double>::zeros({5}));
                               });
      },
      {Tensor<double>::ones({2, 2})});
  CHECK_FALSE(r.passed);
  CHECK(r.report.find("wrong_shape") != std::string::npos);
  CHECK(r.report.find("[5]") != std::string::npos);
}

TEST_CASE("gradcheck: a backward that is not linear in the upstream gradient fails") {
  // Right on its first call (the numeric comparison), then off by a constant: affine, not linear.
  int calls = 0;
  const GradcheckResult r = gradcheck(
      [&calls](const auto& in) {
        return make_op<double>("affine_backward", {in[0]}, in[0].value(),
                               [&calls](const Tensor<double>& gy, Gradients<double>& g) {
                                 const double offset = calls++ == 0 ? 0.0 : 0.5;
                                 g.accumulate(0, [&](std::size_t k) { return gy[k] + offset; });
                               });
      },
      {Tensor<double>({3}, {1, 2, 3})});
  CHECK_FALSE(r.passed);
  CHECK(r.report.find("not linear") != std::string::npos);
}

TEST_CASE("gradcheck: warns when a sample lies within eps of a kink") {
  // relu at 3e-7: the central difference straddles the kink at 0.
  const GradcheckResult r = gradcheck([](const auto& in) { return relu(in[0]); },
                                      {Tensor<double>({3}, {1.0, 3e-7, -0.5})});
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find("element [1]") != std::string::npos);
  CHECK(r.warnings[0].find("kink") != std::string::npos);
  // Away from the kink: no warning.
  const GradcheckResult smooth =
      gradcheck([](const auto& in) { return relu(in[0]); }, {Tensor<double>({2}, {1.0, -0.5})});
  CHECK(smooth.passed);
  CHECK(smooth.warnings.empty());
}

TEST_CASE("gradcheck: relu and abs sampled exactly at 0 pass, with a warning naming the element") {
  GradcheckOptions options;
  options.names = {"x"};
  for (const auto& op : std::vector<GradcheckFunction>{[](const auto& in) { return relu(in[0]); },
                                                       [](const auto& in) { return abs(in[0]); }}) {
    const GradcheckResult r =
        gradcheck(op, {Tensor<double>({2, 2}, {0.7, -0.4, 0.0, 1.3})}, options);
    INFO(r.report);
    CHECK(r.passed);
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.warnings[0].find("input 0 (\"x\") element [1, 0]") != std::string::npos);
    CHECK(r.warnings[0].find("kink") != std::string::npos);
    CHECK(r.report.find("3 elements compared, 1 skipped at kinks") != std::string::npos);
  }
}

TEST_CASE("gradcheck: a wrong backward still fails when another element sits on a kink") {
  // relu(x) + buggy x², x[0] exactly at relu's kink, the bug at element 2 (smooth there).
  const GradcheckResult r =
      gradcheck([](const auto& in) { return relu(in[0]) + square_with_a_bug(in[0], 2); },
                {Tensor<double>({3}, {0.0, 0.5, -0.8})});
  CHECK_FALSE(r.passed);
  CHECK(r.report.find("element [2]") != std::string::npos);
  CHECK(r.report.find("2 elements compared, 1 skipped at kinks") != std::string::npos);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find("element [0]") != std::string::npos);
}
