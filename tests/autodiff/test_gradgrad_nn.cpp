// The graph rules of the network ops (conv1d, pooling, losses, normalisation), checked by
// gradgradcheck in double over their options; and third derivatives of conv1d and pooling,
// whose gradients are themselves ops with graph rules.
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "helpers.hpp"

using namespace tapegrad;

// check_second_derivatives, its failures naming the line of the call.
#define CHECK_SECOND(...)                        \
  do {                                           \
    INFO("line " << __LINE__);                   \
    test::check_second_derivatives(__VA_ARGS__); \
  } while (false)

namespace {

// The gradient of Σ f(in)² with respect to in[0], as a tracked value: gradgradcheck on it
// checks the third derivative of f.
Var<double> gradient_of_square(const GradcheckFunction& f, const std::vector<Var<double>>& in) {
  // As gradgradcheck's own first-order function: evaluated without grad mode (gradcheck's
  // probes, and its first call for the output's shape), the gradient is a plain value.
  const bool outer_tracks = grad_enabled();
  EnableGradGuard grad_on;
  std::vector<Var<double>> xs = in;
  if (!outer_tracks) xs[0] = Var<double>::parameter(in[0].value());
  const Var<double> y = f(xs);
  GradOptions keep;
  keep.create_graph = outer_tracks;
  const Var<double> g = grad(sum(y * y), {xs[0]}, {}, keep)[0];
  return outer_tracks ? g : Var<double>(g.value());
}

}  // namespace

TEST_CASE("gradgradcheck: conv1d over stride, padding, dilation, bias, both kernel paths") {
  const Tensor<double> x = test::random_tensor({2, 2, 7}, 401);
  const Tensor<double> w = test::random_tensor({3, 2, 3}, 402);
  const Tensor<double> b = test::random_tensor({3}, 403);
  struct Case {
    std::size_t stride;
    Padding padding;
    std::size_t dilation;
  };
  // Stride 1 with a long enough output takes the direct kernels, the others im2col.
  const std::vector<Case> cases = {
      {1, Padding(0), 1},      {1, Padding(1), 1},      {2, Padding(0), 1},
      {2, Padding(2), 1},      {1, Padding(1), 2},      {3, Padding(1), 2},
      {1, Padding::same(), 2}, {1, Padding::full(), 1}, {1, Padding::valid(), 3},
      {2, Padding::full(), 1},
  };
  for (const Case& c : cases) {
    INFO("stride " << c.stride << ", padding " << c.padding.to_string() << ", dilation "
                   << c.dilation);
    CHECK_SECOND(
        [c](const auto& in) {
          return conv1d(in[0], in[1], in[2], c.stride, c.padding, c.dilation);
        },
        {x, w, b});
    CHECK_SECOND(
        [c](const auto& in) {
          return conv1d(in[0], in[1], Var<double>(), c.stride, c.padding, c.dilation);
        },
        {x, w});
    // Products through conv1d: non-zero second derivatives in x and w alone.
    CHECK_SECOND(
        [c](const auto& in) {
          const Var<double> y = conv1d(in[0], in[1], in[2], c.stride, c.padding, c.dilation);
          return y * y;
        },
        {x, w, b});
  }
  // Output channels in whole register blocks and outputs longer than the kernels' tile (32
  // columns in double): the forward writes the tiles inside a sample straight into y, starting
  // from the bias. At outputs of 40 its tiles follow the segments (one straddles two samples
  // and goes through the buffer); at 48 they are laid per sample: one inside each sample,
  // written into y, and one partly past its outputs.
  for (std::size_t length : {40, 48}) {
    INFO("length " << length);
    CHECK_SECOND(
        [](const auto& in) {
          const Var<double> y = conv1d(in[0], in[1], in[2], 1, Padding(1));
          return y * y;
        },
        {test::random_tensor({2, 2, length}, 405), test::random_tensor({4, 2, 3}, 406),
         test::random_tensor({4}, 407)});
  }
  // One weight for input and kernel: y = conv1d(w, w).
  CHECK_SECOND([](const auto& in) { return conv1d(in[0], in[0], Var<double>(), 1, Padding(2)); },
               {test::random_tensor({2, 2, 3}, 404)});
  // No samples, and no input channels: no products.
  CHECK_SECOND([](const auto& in) { return conv1d(in[0], in[1], in[2]); },
               {Tensor<double>::zeros({0, 2, 7}), w, b});
  CHECK_SECOND([](const auto& in) { return conv1d(in[0], in[1], in[2], 1, 1); },
               {Tensor<double>::zeros({2, 0, 4}), Tensor<double>::zeros({3, 0, 3}), b});
}

TEST_CASE("gradgradcheck: conv1d's third derivative, through its gradient ops") {
  const Tensor<double> x = test::random_tensor({2, 2, 6}, 411);
  const Tensor<double> w = test::random_tensor({2, 2, 2}, 412);
  for (std::size_t stride : {1, 2}) {
    INFO("stride " << stride);
    const GradcheckFunction f = [stride](const auto& in) {
      return conv1d(in[0], in[1], Var<double>(), stride, Padding(1), 2);
    };
    CHECK_SECOND([f](const auto& in) { return gradient_of_square(f, in); }, {x, w});
    CHECK_SECOND([f](const auto& in) { return gradient_of_square(f, {in[1], in[0]}); }, {w, x});
  }
}

TEST_CASE("gradgradcheck: max_pool1d and avg_pool1d over kernel, stride, padding") {
  // Distinct values (no ties within a window, far beyond the finite-difference step).
  Tensor<double> x({2, 2, 7});
  for (std::size_t k = 0; k < x.numel(); ++k)
    x[k] = static_cast<double>((k * 7) % x.numel()) / 10.0 - 1.3;
  Tensor<double> even({2, 2, 6});
  for (std::size_t k = 0; k < even.numel(); ++k)
    even[k] = static_cast<double>((k * 5) % even.numel()) / 10.0 - 1.1;
  struct Case {
    std::size_t kernel, stride, padding;
  };
  for (const Case& c : std::vector<Case>{{2, 0, 0}, {2, 2, 1}, {3, 1, 0}, {3, 2, 1}, {4, 3, 2}}) {
    INFO("kernel " << c.kernel << ", stride " << c.stride << ", padding " << c.padding);
    for (const Tensor<double>& input : {x, even}) {
      CHECK_SECOND([c](const auto& in) { return max_pool1d(in[0], c.kernel, c.stride, c.padding); },
                   {input});
      CHECK_SECOND(
          [c](const auto& in) {
            const Var<double> y = max_pool1d(in[0], c.kernel, c.stride, c.padding);
            return y * y;
          },
          {input});
      CHECK_SECOND([c](const auto& in) { return avg_pool1d(in[0], c.kernel, c.stride, c.padding); },
                   {input});
      CHECK_SECOND(
          [c](const auto& in) {
            const Var<double> y = avg_pool1d(in[0] * in[0], c.kernel, c.stride, c.padding);
            return y * y;
          },
          {input});
      // Third derivatives: the gradient ops' own graph rules.
      CHECK_SECOND(
          [c](const auto& in) {
            return gradient_of_square(
                [c](const auto& v) {
                  return max_pool1d(v[0] * v[0] * v[0], c.kernel, c.stride, c.padding);
                },
                in);
          },
          {input});
      CHECK_SECOND(
          [c](const auto& in) {
            return gradient_of_square(
                [c](const auto& v) {
                  return avg_pool1d(v[0] * v[0] * v[0], c.kernel, c.stride, c.padding);
                },
                in);
          },
          {input});
    }
  }
}

TEST_CASE("gradgradcheck: softmax_cross_entropy and nll_loss, labels and soft targets") {
  const Tensor<double> logits = test::random_tensor({3, 4}, 421, -2.0, 2.0);
  const std::vector<std::int64_t> labels = {1, 3, 1};
  Tensor<double> soft = test::random_tensor({3, 4}, 422, 0.1, 1.0);
  for (std::size_t i = 0; i < 3; ++i) {
    double total = 0;
    for (std::size_t j = 0; j < 4; ++j) total += soft[i * 4 + j];
    for (std::size_t j = 0; j < 4; ++j) soft[i * 4 + j] /= total;
  }
  const Tensor<double> weights = test::random_tensor({4}, 423, 0.5, 2.0);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    for (bool weighted : {false, true}) {
      INFO("reduction " << static_cast<int>(r) << ", weighted " << weighted);
      CrossEntropyOptions<double> options;
      options.reduction = r;
      if (weighted) options.class_weights = weights;
      CHECK_SECOND([&](const auto& in) { return softmax_cross_entropy(in[0], labels, options); },
                   {logits});
      CHECK_SECOND([&](const auto& in) { return softmax_cross_entropy(in[0], soft, options); },
                   {logits});
      CHECK_SECOND([&](const auto& in) { return nll_loss(log_softmax(in[0]), labels, options); },
                   {logits});
      CHECK_SECOND([&](const auto& in) { return nll_loss(in[0] * in[0], labels, options); },
                   {logits});
    }
  }
}

TEST_CASE("gradgradcheck: softmax_cross_entropy with label smoothing, labels and soft targets") {
  const Tensor<double> logits = test::random_tensor({3, 4}, 424, -2.0, 2.0);
  const std::vector<std::int64_t> labels = {2, 0, 2};
  const Tensor<double> soft = test::random_tensor({3, 4}, 425, 0.0, 0.5);
  const Tensor<double> weights = test::random_tensor({4}, 426, 0.5, 2.0);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    for (bool weighted : {false, true}) {
      INFO("reduction " << static_cast<int>(r) << ", weighted " << weighted);
      CrossEntropyOptions<double> options;
      options.reduction = r;
      options.label_smoothing = 0.3;
      if (weighted) options.class_weights = weights;
      CHECK_SECOND([&](const auto& in) { return softmax_cross_entropy(in[0], labels, options); },
                   {logits});
      CHECK_SECOND([&](const auto& in) { return softmax_cross_entropy(in[0], soft, options); },
                   {logits});
    }
  }
}

TEST_CASE("gradgradcheck: cross-entropy's Hessian in the logits is diag(p) - ppT per sample") {
  const Tensor<double> logits = test::random_tensor({2, 3}, 431, -1.0, 1.0);
  const std::vector<std::int64_t> labels = {2, 0};
  Var<double> a(logits, true);
  GradOptions keep;
  keep.create_graph = true;
  const Var<double> ga =
      grad(softmax_cross_entropy(a, labels, {Reduction::sum, {}}), {a}, {}, keep)[0];
  const Tensor<double> p = softmax(Var<double>(logits), 1).value();
  // Row (i, j) of the Hessian: ∂ga[i, j]/∂a = (δ_jl p_ij − p_ij p_il) in row i, 0 elsewhere.
  for (std::size_t e = 0; e < 6; ++e) {
    Tensor<double> seed = Tensor<double>::zeros({2, 3});
    seed[e] = 1;
    const Tensor<double> row = grad(ga, {a}, {Var<double>(seed)}, keep)[0].value();
    const std::size_t i = e / 3, j = e % 3;
    for (std::size_t l = 0; l < 6; ++l) {
      const double expected =
          l / 3 != i ? 0.0 : (l % 3 == j ? p[e] : 0.0) - p[e] * p[i * 3 + l % 3];
      CHECK(row[l] == doctest::Approx(expected).epsilon(1e-12));
    }
  }
}

TEST_CASE("gradgradcheck: elementwise losses over every reduction, targets as Vars") {
  const Tensor<double> x = test::random_tensor({2, 3}, 441, -2.0, 2.0);
  const Tensor<double> y = test::random_tensor({2, 3}, 442, -2.0, 2.0);
  const Tensor<double> probs = test::random_tensor({2, 3}, 443, 0.1, 0.9);
  const Tensor<double> targets = test::random_tensor({2, 3}, 444, 0.0, 1.0);
  const Tensor<double> positive = test::random_tensor({2, 3}, 445, 0.1, 1.0);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    INFO("reduction " << static_cast<int>(r));
    CHECK_SECOND([r](const auto& in) { return binary_cross_entropy_with_logits(in[0], in[1], r); },
                 {x, targets});
    CHECK_SECOND([r](const auto& in) { return binary_cross_entropy(in[0], in[1], r); },
                 {probs, targets});
    CHECK_SECOND([r](const auto& in) { return mse_loss(in[0], in[1], r); }, {x, y});
    CHECK_SECOND([r](const auto& in) { return l1_loss(in[0], in[1], r); }, {x, y});
    CHECK_SECOND([r](const auto& in) { return l1_loss(in[0] * in[0], in[1], r); }, {x, y});
    for (double beta : {0.0, 0.5, 1.0, 10.0}) {
      INFO("beta " << beta);
      CHECK_SECOND(
          [r, beta](const auto& in) { return smooth_l1_loss(in[0] * in[0], in[1], r, beta); },
          {x, y});
    }
    for (double delta : {0.5, 1.0, 10.0}) {
      INFO("delta " << delta);
      CHECK_SECOND(
          [r, delta](const auto& in) { return huber_loss(in[0] * in[0], in[1], r, delta); },
          {x, y});
    }
    CHECK_SECOND([r](const auto& in) { return kl_div(in[0], in[1], r); }, {x, positive});
    CHECK_SECOND([r](const auto& in) { return kl_div(in[0], in[1], r, true); }, {x, y});
  }
  for (KlDivReduction r : {KlDivReduction::batchmean, KlDivReduction::mean, KlDivReduction::sum,
                           KlDivReduction::none}) {
    INFO("kl_div reduction " << static_cast<int>(r));
    CHECK_SECOND([r](const auto& in) { return kl_div(in[0] * in[0], in[1], r); }, {x, positive});
    CHECK_SECOND([r](const auto& in) { return kl_div(in[0] * in[0], in[1], r, true); }, {x, y});
  }
}

TEST_CASE("gradgradcheck: batch_norm, batch_norm_eval and layer_norm, with and without affine") {
  const Tensor<double> x2 = test::random_tensor({4, 3}, 451);
  const Tensor<double> x3 = test::random_tensor({3, 2, 4}, 452);
  const Tensor<double> gamma = test::random_tensor({2}, 453, 0.5, 1.5);
  const Tensor<double> beta = test::random_tensor({2}, 454);
  const Tensor<double> gamma3 = test::random_tensor({3}, 455, 0.5, 1.5);
  const Tensor<double> beta3 = test::random_tensor({3}, 456);
  const double eps = 0.1;  // large: keeps the curvature of 1/σ̂ moderate for the differences
  CHECK_SECOND([eps](const auto& in) { return batch_norm(in[0], {}, {}, eps); }, {x2});
  CHECK_SECOND([eps](const auto& in) { return batch_norm(in[0], in[1], in[2], eps); },
               {x2, gamma3, beta3});
  CHECK_SECOND([eps](const auto& in) { return batch_norm(in[0], {}, {}, eps); }, {x3});
  CHECK_SECOND([eps](const auto& in) { return batch_norm(in[0], in[1], in[2], eps); },
               {x3, gamma, beta});
  CHECK_SECOND([eps](const auto& in) { return batch_norm(in[0], in[1], Var<double>(), eps); },
               {x3, gamma});
  const Tensor<double> running_mean = test::random_tensor({2}, 457);
  const Tensor<double> running_var = test::random_tensor({2}, 458, 0.5, 2.0);
  CHECK_SECOND(
      [&](const auto& in) {
        const Var<double> y = batch_norm_eval(in[0], running_mean, running_var, in[1], in[2], eps);
        return y * y;
      },
      {x3, gamma, beta});
  CHECK_SECOND(
      [&](const auto& in) { return batch_norm_eval(in[0] * in[0], running_mean, running_var); },
      {x3});
  CHECK_SECOND([eps](const auto& in) { return layer_norm(in[0], {4}, {}, {}, eps); }, {x3});
  const Tensor<double> lgamma = test::random_tensor({2, 4}, 459, 0.5, 1.5);
  const Tensor<double> lbeta = test::random_tensor({2, 4}, 460);
  CHECK_SECOND(
      [eps](const auto& in) {
        return layer_norm(in[0], {2, 4}, in[1], in[2], eps);
      },
      {x3, lgamma, lbeta});
  CHECK_SECOND([eps](const auto& in) { return layer_norm(in[0], {3}, in[1], Var<double>(), eps); },
               {x2, gamma3});
  // Empty batches.
  CHECK_SECOND([eps](const auto& in) { return layer_norm(in[0], {4}, {}, {}, eps); },
               {Tensor<double>::zeros({0, 4})});
}

TEST_CASE("gradgradcheck: binary_cross_entropy's graph rule keeps the clamps at p = 0 and 1") {
  // Central differences cannot step outside [0, 1]: compare the graph rule's gradients with the
  // raw rule's, and check that the second derivatives stay finite at the clamps.
  const Tensor<double> p({4}, {0.0, 1.0, 0.5, 1e-300});
  const Tensor<double> y({4}, {0.3, 0.6, 1.0, 0.2});
  Var<double> pv(p, true), yv(y, true);
  const std::vector<Var<double>> raw = grad(binary_cross_entropy(pv, yv), {pv, yv});
  GradOptions keep;
  keep.create_graph = true;
  const std::vector<Var<double>> graph = grad(binary_cross_entropy(pv, yv), {pv, yv}, {}, keep);
  for (std::size_t i = 0; i < 2; ++i) test::check_close(graph[i].value(), raw[i].value(), 1e-15);
  const std::vector<Var<double>> second = grad(sum(graph[0]) + sum(graph[1]), {pv, yv});
  for (const Var<double>& s : second)
    for (double v : s.value()) CHECK(std::isfinite(v));
}

TEST_CASE("gradgradcheck: piecewise losses' graph rules match the raw rules at kinks and NaN") {
  // d = x − y: 0, inside and outside β, NaN.
  const Tensor<double> x({5}, {1.0, 0.25, 3.0, -2.0, std::nan("")});
  const Tensor<double> y({5}, {1.0, 0.0, 0.0, 0.5, 0.0});
  using Loss = std::function<Var<double>(const Var<double>&, const Var<double>&)>;
  const std::vector<std::pair<const char*, Loss>> losses = {
      {"l1", [](const auto& a, const auto& b) { return l1_loss(a, b, Reduction::sum); }},
      {"smooth_l1 beta 0",
       [](const auto& a, const auto& b) { return smooth_l1_loss(a, b, Reduction::sum, 0.0); }},
      {"smooth_l1 beta 1",
       [](const auto& a, const auto& b) { return smooth_l1_loss(a, b, Reduction::sum, 1.0); }},
      {"huber", [](const auto& a, const auto& b) { return huber_loss(a, b, Reduction::sum, 1.0); }},
  };
  for (const auto& [name, loss] : losses) {
    INFO(name);
    Var<double> xv(x, true), yv(y, true);
    const std::vector<Var<double>> raw = grad(loss(xv, yv), {xv, yv});
    GradOptions keep;
    keep.create_graph = true;
    const std::vector<Var<double>> graph = grad(loss(xv, yv), {xv, yv}, {}, keep);
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t k = 0; k < x.numel(); ++k) {
        INFO("input " << i << ", element " << k);
        const double r = raw[i].value()[k], g = graph[i].value()[k];
        CHECK((std::isnan(r) ? std::isnan(g) : r == g));
      }
  }
}

namespace {

// A small network of every op above: conv1d → batch_norm → relu → max_pool1d → avg_pool1d →
// layer_norm → linear → softmax cross-entropy.
template <class T>
Var<T> small_network(const Var<T>& x, const Var<T>& w, const Var<T>& b, const Var<T>& v) {
  const Var<T> h = max_pool1d(relu(batch_norm(conv1d(x, w, b, 1, 1), Var<T>(), Var<T>(), 0.1)), 2);
  const Var<T> a = layer_norm(flatten(avg_pool1d(h, 2, 1), 1), Shape{4}, Var<T>(), Var<T>(), 0.1);
  return softmax_cross_entropy(linear(a, v), std::vector<std::int64_t>{0, 2, 1});
}

}  // namespace

TEST_CASE("gradgradcheck: a network of conv, norm, pooling and a loss, in double and float") {
  const Tensor<double> x = test::random_tensor({3, 2, 7}, 471);
  const Tensor<double> w = test::random_tensor({2, 2, 3}, 472);
  const Tensor<double> b = test::random_tensor({2}, 473);
  const Tensor<double> v = test::random_tensor({3, 4}, 474);
  CHECK_SECOND([](const auto& in) { return small_network(in[0], in[1], in[2], in[3]); },
               {x, w, b, v});
  // The gradient penalty ‖∂L/∂x‖² differentiated with respect to the weights, in both types.
  auto penalty_gradient = [&](auto zero) {
    using T = decltype(zero);
    auto cast = [](const Tensor<double>& t) {
      Tensor<T> out(t.shape());
      for (std::size_t k = 0; k < t.numel(); ++k) out[k] = static_cast<T>(t[k]);
      return out;
    };
    Var<T> xv(cast(x), true), wv(cast(w), true), bv(cast(b), true), vv(cast(v), true);
    GradOptions keep;
    keep.create_graph = true;
    const Var<T> gx = grad(small_network(xv, wv, bv, vv), {xv}, {}, keep)[0];
    return grad(sum(gx * gx), {wv})[0].value();
  };
  const Tensor<double> exact = penalty_gradient(0.0);
  const Tensor<float> single = penalty_gradient(0.0f);
  for (std::size_t k = 0; k < exact.numel(); ++k)
    CHECK(single[k] == doctest::Approx(exact[k]).epsilon(1e-3).scale(1e-2));
}
