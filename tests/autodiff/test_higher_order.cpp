// Higher-order gradients: grad(), backward with create_graph, the functional API, custom ops'
// graph rules, closed-form Hessians, and memory over many create_graph steps.
#include "helpers.hpp"

#include <cmath>

using namespace tapegrad;
using test::check_close;
using test::error_of;

namespace {
GradOptions keeping_graph() {
  GradOptions o;
  o.create_graph = true;
  return o;
}

// y = x² with a raw rule only (no graph form).
Var<double> raw_only_square(const Var<double>& x) {
  Tensor<double> y = x.value();
  for (double& v : y) v *= v;
  return make_op<double>("raw_only_square", {x}, std::move(y),
                         [](const Tensor<double>& gy, Gradients<double>& g) {
                           const Tensor<double>& xv = g.input(0);
                           g.accumulate(0, [&](std::size_t k) { return gy[k] * 2 * xv[k]; });
                         });
}

// y = x³ with a graph rule only.
Var<double> graph_only_cube(const Var<double>& x) {
  Tensor<double> y = x.value();
  for (double& v : y) v = v * v * v;
  return make_op<double>("graph_only_cube", {x}, std::move(y),
                         [](const Var<double>& gy, GraphGradients<double>& g) {
                           const Var<double> x = g.input(0);
                           g.add(0, gy * x * x * 3.0);
                         });
}
// 3x² (the derivative of x³) whose own backward is wrong: 5x instead of 6x.
Var<double> wrong_cube_derivative(const Var<double>& x) {
  Tensor<double> y = x.value();
  for (double& v : y) v = 3 * v * v;
  return make_op<double>("wrong_cube_derivative", {x}, std::move(y),
                         [](const Tensor<double>& gy, Gradients<double>& g) {
                           const Tensor<double>& xv = g.input(0);
                           g.accumulate(0, [&](std::size_t k) { return gy[k] * 5 * xv[k]; });
                         });
}

// x³ whose graph rule is right in value (first order) but wrong in its derivative.
Var<double> cube_with_wrong_second_derivative(const Var<double>& x) {
  Tensor<double> y = x.value();
  for (double& v : y) v = v * v * v;
  return make_op<double>("cube", {x}, std::move(y),
                         [](const Var<double>& gy, GraphGradients<double>& g) {
                           g.add(0, gy * wrong_cube_derivative(g.input(0)));
                         });
}
}  // namespace

TEST_CASE("grad: returns gradients, differentiable again with create_graph; .grad() untouched") {
  Var<double> x = Var<double>::parameter(Tensor<double>({3}, {0.5, -1.0, 2.0}));
  Var<double> y = sum(x * x * x);
  const Var<double> dy = grad(y, {x}, {}, keeping_graph())[0];
  check_close(dy.value(), Tensor<double>({3}, {0.75, 3.0, 12.0}));
  CHECK(dy.requires_grad());
  const Var<double> d2y = grad(sum(dy), {x}, {}, keeping_graph())[0];
  check_close(d2y.value(), Tensor<double>({3}, {3.0, -6.0, 12.0}));
  const Var<double> d3y = grad(sum(d2y), {x})[0];  // third order: 6 everywhere
  check_close(d3y.value(), Tensor<double>({3}, {6.0, 6.0, 6.0}));
  CHECK_FALSE(d3y.requires_grad());
  CHECK_FALSE(x.has_grad());
  CHECK(Tape<double>::current().size() == 0);  // the last pass did not keep the tape
}

TEST_CASE("grad: intermediate inputs, several outputs with their grad_outputs") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2}, {1.0, 2.0}));
  Var<double> h = x * x;  // intermediate
  Var<double> a = h * 3.0, b = sum(h);
  const std::vector<Var<double>> g = grad<double>(
      {a, b}, {h, x},
      {Var<double>(Tensor<double>({2}, {1.0, 10.0})), Var<double>(Tensor<double>::ones({}))});
  check_close(g[0].value(), Tensor<double>({2}, {4.0, 31.0}));   // 3·v + 1
  check_close(g[1].value(), Tensor<double>({2}, {8.0, 124.0}));  // (3v + 1)·2x
}

TEST_CASE("grad: errors name the input or output at fault") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2}, {1.0, 2.0}));
  Var<double> unused = Var<double>::parameter(Tensor<double>({3}, {1.0, 2.0, 3.0}));
  Var<double> constant(Tensor<double>({2}, {1.0, 2.0}));
  {
    Var<double> y = sum(x * x);
    const std::string msg = error_of([&] { grad(y, {x, unused}, {}, {true}); });
    CHECK(msg.find("input 1 (shape [3]) is not used") != std::string::npos);
    GradOptions allow;
    allow.allow_unused = true;
    const auto g = grad(y, {x, unused}, {}, allow);
    CHECK(g[0].defined());
    CHECK_FALSE(g[1].defined());
  }
  {
    Var<double> y = sum(x * x);
    CHECK(error_of([&] { grad(y, {constant}); }).find("input 0 (shape [2]) does not require") !=
          std::string::npos);
    CHECK(error_of([&] { grad(x * 2.0, {x}); }).find("not a single element") != std::string::npos);
    CHECK(error_of([&] {
            grad(x * 2.0, {x}, {Var<double>(Tensor<double>::ones({3}))});
          }).find("grad_outputs 0 has shape [3], output 0 has shape [2]") != std::string::npos);
  }
}

TEST_CASE("backward with create_graph: grad_var() is differentiable; then the tape is released") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2}, {0.3, -0.7}));
  Var<double> y = sum(tanh(x));
  y.backward(false, true);
  const Var<double> g = x.grad_var();  // 1 − tanh²
  CHECK(g.requires_grad());
  for (std::size_t k = 0; k < 2; ++k)
    CHECK(g.value()[k] == doctest::Approx(1 - std::pow(std::tanh(x.value()[k]), 2)));
  const Tensor<double> first = x.grad();
  x.zero_grad();
  sum(g).backward();  // d/dx (1 − tanh²) = −2 tanh (1 − tanh²)
  for (std::size_t k = 0; k < 2; ++k) {
    const double t = std::tanh(x.value()[k]);
    CHECK(x.grad()[k] == doctest::Approx(-2 * t * (1 - t * t)));
  }
  CHECK(Tape<double>::current().size() == 0);
  CHECK(first.numel() == 2);
}

TEST_CASE("custom ops: no graph rule is an error under create_graph; a graph rule alone works") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2}, {1.5, -2.0}));
  {
    Var<double> y = sum(raw_only_square(x));
    const std::string msg = error_of([&] { grad(y, {x}, {}, keeping_graph()); });
    CHECK(msg.find("'raw_only_square' has no graph form") != std::string::npos);
    // First order still works after the failed attempt.
    y = sum(raw_only_square(x));
    check_close(grad(y, {x})[0].value(), Tensor<double>({2}, {3.0, -4.0}));
  }
  {
    Var<double> y = sum(graph_only_cube(x));
    y.backward();  // first order through the graph rule, on constants
    check_close(x.grad(), Tensor<double>({2}, {6.75, 12.0}));
  }
  const Tensor<double> v = test::away_from_zero({2, 3}, 401);
  test::check_gradients([](const auto& in) { return graph_only_cube(in[0]); }, {v});
  test::check_second_derivatives([](const auto& in) { return graph_only_cube(in[0]); }, {v});
}

TEST_CASE("gradgradcheck: a wrong graph rule fails, naming the input and the element") {
  const Tensor<double> v = test::away_from_zero({2, 3}, 402);
  // First order is right (gradcheck passes); the second derivative is not.
  test::check_gradients([](const auto& in) { return cube_with_wrong_second_derivative(in[0]); },
                        {v});
  const GradcheckResult r =
      gradgradcheck([](const auto& in) { return cube_with_wrong_second_derivative(in[0]); }, {v});
  CHECK_FALSE(r.passed);
  INFO(r.report);
  CHECK(r.report.rfind("gradgradcheck failed: input 0, element [", 0) == 0);
  CHECK(r.report.find("analytic") != std::string::npos);
  CHECK(r.report.find("numeric") != std::string::npos);
  CHECK(r.report.find("atol") != std::string::npos);
}

TEST_CASE("hessian: closed forms — xᵀAx, log-sum-exp, logistic regression") {
  const Tensor<double> a = test::random_tensor({3, 3}, 411);
  const Tensor<double> x0 = test::random_tensor({3}, 412);
  {
    const Tensor<double> at = a;
    auto quadratic = [at](const std::vector<Var<double>>& in) {
      Var<double> col = reshape(in[0], {3, 1});
      return sum(matmul(matmul(col, Var<double>(at), Transpose::yes, Transpose::no), col));
    };
    const auto h = functional::hessian<double>(quadratic, {Var<double>(x0)});
    Tensor<double> expected({3, 3});
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 3; ++j) expected[i * 3 + j] = a[i * 3 + j] + a[j * 3 + i];
    check_close(h[0][0].value(), expected, 1e-12);
  }
  {
    const auto h = functional::hessian<double>([](const auto& in) { return logsumexp(in[0], 0); },
                                               {Var<double>(x0)});
    double z = 0;
    for (double v : x0) z += std::exp(v);
    Tensor<double> expected({3, 3});
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 3; ++j) {
        const double pi = std::exp(x0[i]) / z, pj = std::exp(x0[j]) / z;
        expected[i * 3 + j] = (i == j ? pi : 0.0) - pi * pj;
      }
    check_close(h[0][0].value(), expected, 1e-12);
  }
  {
    // L(w) = mean(BCE-with-logits(Xw, t)); H = Xᵀ diag(σ(1 − σ)) X / N.
    const Tensor<double> xs = test::random_tensor({5, 3}, 413);
    const Tensor<double> t({5, 1}, {1, 0, 1, 1, 0});
    auto loss = [xs, t](const std::vector<Var<double>>& in) {
      const Var<double> z = matmul(Var<double>(xs), reshape(in[0], {3, 1}));
      const Var<double> s = sigmoid(z);
      // −[t log σ + (1 − t) log(1 − σ)], written with elementwise ops.
      const Var<double> tv(t);
      return mean(neg(tv * log(s) + (1.0 - tv) * log(1.0 - s)));
    };
    const auto h = functional::hessian<double>(loss, {Var<double>(x0)});
    Tensor<double> expected = Tensor<double>::zeros({3, 3});
    for (std::size_t n = 0; n < 5; ++n) {
      double z = 0;
      for (std::size_t j = 0; j < 3; ++j) z += xs[n * 3 + j] * x0[j];
      const double s = 1 / (1 + std::exp(-z));
      for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 3; ++j)
          expected[i * 3 + j] += xs[n * 3 + i] * s * (1 - s) * xs[n * 3 + j] / 5;
    }
    check_close(h[0][0].value(), expected, 1e-10);
  }
}

TEST_CASE("hvp and vhp: equal to the full Hessian times v and to differences of gradients") {
  const Tensor<double> w1 = test::random_tensor({4, 3}, 421), w2 = test::random_tensor({4}, 422);
  const Tensor<double> v1 = test::random_tensor({4, 3}, 423), v2 = test::random_tensor({4}, 424);
  const Tensor<double> data = test::random_tensor({6, 3}, 425);
  auto f = [data](const std::vector<Var<double>>& p) {
    const Var<double> h = tanh(linear(Var<double>(data), p[0]));
    return mean(log_softmax(h * p[1], -1) * h);
  };
  const auto [y, hv] = functional::hvp<double>(f, {Var<double>(w1), Var<double>(w2)},
                                               {Var<double>(v1), Var<double>(v2)});
  const auto vh = functional::vhp<double>(f, {Var<double>(w1), Var<double>(w2)},
                                          {Var<double>(v1), Var<double>(v2)});
  const auto h = functional::hessian<double>(f, {Var<double>(w1), Var<double>(w2)});
  const std::vector<Tensor<double>> v = {v1, v2};
  for (std::size_t i = 0; i < 2; ++i) {
    const std::size_t ni = i == 0 ? 12 : 4;
    Tensor<double> expected = Tensor<double>::zeros(i == 0 ? Shape{4, 3} : Shape{4});
    for (std::size_t j = 0; j < 2; ++j) {
      const std::size_t nj = j == 0 ? 12 : 4;
      for (std::size_t r = 0; r < ni; ++r)
        for (std::size_t c = 0; c < nj; ++c) expected[r] += h[i][j].value()[r * nj + c] * v[j][c];
    }
    check_close(hv[i].value(), expected, 1e-10);
    check_close(vh.derivatives[i].value(), expected, 1e-10);
  }
  // Central differences of the gradient along v.
  const double eps = 1e-5;
  auto gradient_at = [&](double s) {
    Tensor<double> a = w1, b = w2;
    for (std::size_t k = 0; k < a.numel(); ++k) a[k] += s * v1[k];
    for (std::size_t k = 0; k < b.numel(); ++k) b[k] += s * v2[k];
    return functional::vjp<double>(f, {Var<double>(a), Var<double>(b)}).derivatives;
  };
  const auto plus = gradient_at(eps), minus = gradient_at(-eps);
  for (std::size_t i = 0; i < 2; ++i) {
    Tensor<double> fd(plus[i].shape());
    for (std::size_t k = 0; k < fd.numel(); ++k)
      fd[k] = (plus[i].value()[k] - minus[i].value()[k]) / (2 * eps);
    check_close(hv[i].value(), fd, 1e-6);
  }
  CHECK(y.value().numel() == 1);
}

TEST_CASE("jacobian, vjp and jvp agree; jvp is the double-vjp J u") {
  const Tensor<double> x0 = test::random_tensor({2, 3}, 431), u0 = test::random_tensor({2, 3}, 432);
  const Tensor<double> m = test::random_tensor({3, 2}, 433);
  auto f = [m](const std::vector<Var<double>>& in) {
    return softmax(matmul(tanh(in[0]), Var<double>(m)), -1);  // [2, 2]
  };
  const auto jac = functional::jacobian<double>(f, {Var<double>(x0)});
  REQUIRE(jac[0].shape() == Shape{2, 2, 2, 3});
  const auto jv = functional::jvp<double>(f, {Var<double>(x0)}, {Var<double>(u0)});
  const Tensor<double> v = test::random_tensor({2, 2}, 434);
  const auto vj = functional::vjp<double>(f, {Var<double>(x0)}, Var<double>(v));
  Tensor<double> ju = Tensor<double>::zeros({2, 2}), vt = Tensor<double>::zeros({2, 3});
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t c = 0; c < 6; ++c) {
      ju[r] += jac[0].value()[r * 6 + c] * u0[c];
      vt[c] += v[r] * jac[0].value()[r * 6 + c];
    }
  check_close(jv.derivatives[0].value(), ju, 1e-12);
  check_close(vj.derivatives[0].value(), vt, 1e-12);
  // With create_graph the jacobian is itself differentiable: Σ J depends on x.
  Var<double> x = Var<double>::parameter(x0);
  const auto tracked = functional::jacobian<double>(f, {x}, true);
  CHECK(tracked[0].requires_grad());
  check_close(tracked[0].value(), jac[0].value(), 1e-12);
  sum(tracked[0] * tracked[0]).backward();
  CHECK(x.has_grad());
}

TEST_CASE("create_graph does not leak: 10 000 gradient-penalty steps keep memory flat") {
  using T = float;
  Var<T> w1 = Var<T>::parameter(test::random_tensor<T>({8, 4}, 441));
  Var<T> b1 = Var<T>::parameter(Tensor<T>::zeros({8}));
  Var<T> w2 = Var<T>::parameter(test::random_tensor<T>({1, 8}, 442));
  const Tensor<T> data = test::random_tensor<T>({16, 4}, 443);
  GradOptions keep;
  keep.create_graph = true;
  std::size_t most_bytes = 0, most_records = 0, bytes_after_warmup = 0;
  for (int step = 0; step < 10000; ++step) {
    Var<T> x = Var<T>::parameter(data);
    Var<T> y = linear(tanh(linear(x, w1, b1)), w2);
    const Var<T> gx = grad(sum(y), {x}, {}, keep)[0];
    Var<T> loss = mean(y * y) + mean(gx * gx) * T(0.1);
    loss.backward();
    for (Var<T>* p : {&w1, &b1, &w2}) {
      for (std::size_t k = 0; k < p->numel(); ++k) p->value()[k] -= T(1e-3) * p->grad()[k];
      p->zero_grad();
    }
    if (step == 100) bytes_after_warmup = memory::stats().live_bytes;
    if (step > 100) {
      most_bytes = std::max(most_bytes, memory::stats().live_bytes);
      most_records = std::max(most_records, Tape<T>::current().size());
    }
  }
  CHECK(most_records == 0);
  CHECK(most_bytes == bytes_after_warmup);
}
