// The losses: gradchecks for every option, stability, and closed-form gradient formulas.
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "helpers.hpp"

using namespace tapegrad;
using test::check_gradients;

namespace {
const std::vector<std::int64_t> labels5 = {2, 0, 3, 3, 1};
}

TEST_CASE("cross-entropy: gradcheck with labels, every reduction, with and without weights") {
  const Tensor<double> a = test::random_tensor({5, 4}, 91, -2, 2);
  const Tensor<double> w({4}, {0.5, 2.0, 1.0, 0.25});
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    for (bool weighted : {false, true}) {
      CrossEntropyOptions<double> o;
      o.reduction = r;
      if (weighted) o.class_weights = w;
      check_gradients([o](const auto& in) { return softmax_cross_entropy(in[0], labels5, o); },
                      {a});
      check_gradients([o](const auto& in) { return nll_loss(log_softmax(in[0]), labels5, o); },
                      {a});
      check_gradients([o](const auto& in) { return nll_loss(in[0], labels5, o); }, {a});
    }
  }
}

TEST_CASE("cross-entropy: soft targets, gradcheck and agreement with one-hot labels") {
  const Tensor<double> a = test::random_tensor({5, 4}, 92, -2, 2);
  Tensor<double> t = test::random_tensor({5, 4}, 93, 0.1, 1.0);
  for (std::size_t n = 0; n < 5; ++n) {  // rows of probabilities
    double s = 0;
    for (std::size_t j = 0; j < 4; ++j) s += t[n * 4 + j];
    for (std::size_t j = 0; j < 4; ++j) t[n * 4 + j] /= s;
  }
  CrossEntropyOptions<double> weighted;
  weighted.class_weights = Tensor<double>({4}, {0.5, 2.0, 1.0, 0.25});
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    CrossEntropyOptions<double> o = weighted;
    o.reduction = r;
    check_gradients(
        [t, r](const auto& in) {
          CrossEntropyOptions<double> plain;
          plain.reduction = r;
          return softmax_cross_entropy(in[0], t, plain);
        },
        {a});
    check_gradients([t, o](const auto& in) { return softmax_cross_entropy(in[0], t, o); }, {a});
  }
  Tensor<double> onehot = Tensor<double>::zeros({5, 4});
  for (std::size_t n = 0; n < 5; ++n) onehot[n * 4 + static_cast<std::size_t>(labels5[n])] = 1;
  CHECK(softmax_cross_entropy(Var<double>(a), onehot).item() ==
        doctest::Approx(softmax_cross_entropy(Var<double>(a), labels5).item()).epsilon(1e-14));
}

TEST_CASE("cross-entropy: label smoothing, gradcheck with labels and soft targets, every option") {
  const Tensor<double> a = test::random_tensor({5, 4}, 94, -2, 2);
  Tensor<double> t = test::random_tensor({5, 4}, 95, 0.1, 1.0);
  const Tensor<double> w({4}, {0.5, 2.0, 1.0, 0.25});
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none})
    for (bool weighted : {false, true})
      for (double eps : {0.1, 0.5, 1.0}) {
        INFO("reduction " << static_cast<int>(r) << ", weighted " << weighted << ", eps " << eps);
        CrossEntropyOptions<double> o;
        o.reduction = r;
        o.label_smoothing = eps;
        if (weighted) o.class_weights = w;
        check_gradients([o](const auto& in) { return softmax_cross_entropy(in[0], labels5, o); },
                        {a});
        check_gradients([t, o](const auto& in) { return softmax_cross_entropy(in[0], t, o); }, {a});
      }
}

TEST_CASE("cross-entropy: label smoothing is (1 - eps) NLL + eps/K sum of -log p, as PyTorch") {
  const Tensor<double> a = test::random_tensor({5, 4}, 96, -2, 2);
  const Tensor<double> w({4}, {0.5, 2.0, 1.0, 0.25});
  const Tensor<double> lp = log_softmax(Var<double>(a), 1).value();
  const double eps = 0.2;
  for (bool weighted : {false, true}) {
    double nll = 0, smooth = 0, picked = 0;
    std::vector<double> per(5);
    for (std::size_t n = 0; n < 5; ++n) {
      const std::size_t y = static_cast<std::size_t>(labels5[n]);
      const double wy = weighted ? w[y] : 1.0;
      double s = 0;
      for (std::size_t k = 0; k < 4; ++k) s -= (weighted ? w[k] : 1.0) * lp[n * 4 + k];
      nll -= wy * lp[n * 4 + y];
      smooth += s;
      picked += wy;
      per[n] = (1 - eps) * -wy * lp[n * 4 + y] + eps / 4 * s;
    }
    CrossEntropyOptions<double> o;
    o.label_smoothing = eps;
    if (weighted) o.class_weights = w;
    // mean: both terms divide by the picked weights' sum
    CHECK(softmax_cross_entropy(Var<double>(a), labels5, o).item() ==
          doctest::Approx((1 - eps) * nll / picked + eps / 4 * smooth / picked).epsilon(1e-14));
    o.reduction = Reduction::sum;
    CHECK(softmax_cross_entropy(Var<double>(a), labels5, o).item() ==
          doctest::Approx((1 - eps) * nll + eps / 4 * smooth).epsilon(1e-14));
    o.reduction = Reduction::none;
    const Tensor<double> got = softmax_cross_entropy(Var<double>(a), labels5, o).value();
    for (std::size_t n = 0; n < 5; ++n) CHECK(got[n] == doctest::Approx(per[n]).epsilon(1e-14));
  }
  // With soft targets: the targets (1 - eps) t + eps/K, the mean over N.
  Tensor<double> onehot = Tensor<double>::zeros({5, 4}), smoothed({5, 4});
  for (std::size_t n = 0; n < 5; ++n) onehot[n * 4 + static_cast<std::size_t>(labels5[n])] = 1;
  for (std::size_t e = 0; e < 20; ++e) smoothed[e] = (1 - eps) * onehot[e] + eps / 4;
  CrossEntropyOptions<double> o;
  o.label_smoothing = eps;
  CHECK(softmax_cross_entropy(Var<double>(a), onehot, o).item() ==
        doctest::Approx(softmax_cross_entropy(Var<double>(a), smoothed).item()).epsilon(1e-14));
  CHECK(softmax_cross_entropy(Var<double>(a), labels5, o).item() ==
        doctest::Approx(softmax_cross_entropy(Var<double>(a), smoothed).item()).epsilon(1e-14));
  // Outside [0, 1] (and NaN) throws, as does nll_loss with any smoothing.
  for (double bad : {-0.1, 1.5, std::nan("")}) {
    o.label_smoothing = bad;
    CHECK_THROWS_AS(softmax_cross_entropy(Var<double>(a), labels5, o), std::invalid_argument);
    CHECK_THROWS_AS(softmax_cross_entropy(Var<double>(a), onehot, o), std::invalid_argument);
  }
  o.label_smoothing = 0.1;
  CHECK_THROWS_AS(nll_loss(Var<double>(a), labels5, o), std::invalid_argument);
}

TEST_CASE(
    "cross-entropy: fused equals log_softmax + nll_loss, and its gradient is (p − onehot)/N") {
  const Tensor<double> a = test::random_tensor({5, 4}, 94, -3, 3);
  Var<double> fused_in = Var<double>::parameter(a), composed_in = Var<double>::parameter(a);
  // (One graph at a time: a backward pass releases the whole tape.)
  Var<double> fused = softmax_cross_entropy(fused_in, labels5);
  fused.backward();
  Var<double> composed = nll_loss(log_softmax(composed_in), labels5);
  composed.backward();
  CHECK(fused.item() == doctest::Approx(composed.item()).epsilon(1e-14));
  test::check_close(fused_in.grad(), composed_in.grad(), 1e-13);
  const Tensor<double> p = softmax(Var<double>(a)).value();
  for (std::size_t n = 0; n < 5; ++n)
    for (std::size_t j = 0; j < 4; ++j) {
      const double onehot = static_cast<std::int64_t>(j) == labels5[n] ? 1.0 : 0.0;
      CHECK(fused_in.grad()[n * 4 + j] ==
            doctest::Approx((p[n * 4 + j] - onehot) / 5).epsilon(1e-15));
    }
}

TEST_CASE_TEMPLATE("cross-entropy: logits of ±1000 give finite, correct losses and gradients", T,
                   float, double) {
  const Tensor<T> a({2, 3}, {T(1000), T(-1000), T(0), T(-1000), T(1000), T(999)});
  Var<T> v = Var<T>::parameter(a);
  Var<T> loss = softmax_cross_entropy(v, {1, 1});
  // Sample 0: the label's logit is 2000 below the max → loss 2000. Sample 1: ln(1 + e^-1).
  CHECK(static_cast<double>(loss.item()) ==
        doctest::Approx((2000.0 + std::log1p(std::exp(-1.0))) / 2).epsilon(1e-6));
  loss.backward();
  for (T g : v.grad()) CHECK(std::isfinite(static_cast<double>(g)));
  CHECK(static_cast<double>(v.grad()[0]) == doctest::Approx(0.5));
  CHECK(static_cast<double>(v.grad()[1]) == doctest::Approx(-0.5));
}

TEST_CASE("cross-entropy: labels and shapes are checked, naming sample and label") {
  Var<double> a(Tensor<double>::zeros({3, 4}));
  CHECK(test::error_of([&] {
          softmax_cross_entropy(a, {0, 4, 1});
        }).find("label 4 of sample 1 is outside [0, 4)") != std::string::npos);
  CHECK(test::error_of([&] {
          softmax_cross_entropy(a, {0, -1, 1});
        }).find("label -1 of sample 1") != std::string::npos);
  CHECK(test::error_of([&] {
          softmax_cross_entropy(a, {0, 1});
        }).find("2 labels for 3 samples") != std::string::npos);
  CrossEntropyOptions<double> o;
  o.class_weights = Tensor<double>::ones({3});
  CHECK(test::error_of([&] {
          softmax_cross_entropy(a, {0, 1, 2}, o);
        }).find("class weights of shape [3] for 4 classes") != std::string::npos);
  CHECK(test::error_of([&] {
          softmax_cross_entropy(a, Tensor<double>::zeros({3, 5}));
        }).find("[3, 5]") != std::string::npos);
  CHECK(test::error_of([&] {
          nll_loss(Var<double>(Tensor<double>::zeros({4})), {0});
        }).find("must be a matrix [N, K], got shape") != std::string::npos);
}

TEST_CASE("cross-entropy: weighted mean divides by the picked weights, as PyTorch does") {
  const Tensor<double> a = test::random_tensor({3, 2}, 95);
  CrossEntropyOptions<double> o;
  o.class_weights = Tensor<double>({2}, {1.0, 3.0});
  const std::vector<std::int64_t> y = {0, 1, 1};
  CrossEntropyOptions<double> none;
  none.reduction = Reduction::none;
  const Tensor<double> per = softmax_cross_entropy(Var<double>(a), y, none).value();
  const double expected = (per[0] + 3 * per[1] + 3 * per[2]) / 7;
  CHECK(softmax_cross_entropy(Var<double>(a), y, o).item() == doctest::Approx(expected));
}

TEST_CASE("binary cross-entropy: stable on logits, gradcheck, and dL/da = f − y") {
  const Tensor<double> a = test::random_tensor({3, 4}, 96, -3, 3);
  const Tensor<double> y = test::random_tensor({3, 4}, 97, 0, 1);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    check_gradients(
        [r](const auto& in) { return binary_cross_entropy_with_logits(in[0], in[1], r); }, {a, y});
    check_gradients([r](const auto& in) { return binary_cross_entropy(sigmoid(in[0]), in[1], r); },
                    {a, y});
    check_gradients([r](const auto& in) { return mse_loss(in[0], in[1], r); }, {a, y});
  }
  // Sigmoid output + cross-entropy: dL/da = f − y.
  Var<double> av = Var<double>::parameter(a);
  binary_cross_entropy(sigmoid(av), Var<double>(y), Reduction::sum).backward();
  for (std::size_t k = 0; k < a.numel(); ++k)
    CHECK(av.grad()[k] == doctest::Approx(1 / (1 + std::exp(-a[k])) - y[k]).epsilon(1e-10));
  // Sigmoid + unscaled squared error (no ½): dL/da = −2(y − f)·f·(1 − f).
  Var<double> aw = Var<double>::parameter(a);
  mse_loss(sigmoid(aw), Var<double>(y), Reduction::sum).backward();
  for (std::size_t k = 0; k < a.numel(); ++k) {
    const double f = 1 / (1 + std::exp(-a[k]));
    CHECK(aw.grad()[k] == doctest::Approx(-2 * (y[k] - f) * f * (1 - f)).epsilon(1e-10));
  }
  // Stability at ±1000: max(a, 0) − a·y + ln(1 + e^−|a|).
  Var<double> big = Var<double>::parameter(Tensor<double>({2}, {1000, -1000}));
  Var<double> l = binary_cross_entropy_with_logits(big, Var<double>(Tensor<double>({2}, {0, 0})),
                                                   Reduction::none);
  CHECK(l.value()[0] == doctest::Approx(1000.0));
  CHECK(l.value()[1] == doctest::Approx(0.0));
  sum(l).backward();
  CHECK(big.grad()[0] == doctest::Approx(1.0));
  CHECK(big.grad()[1] == doctest::Approx(0.0));
}

TEST_CASE("binary cross-entropy on probabilities clamps its logs at −100") {
  Var<double> p = Var<double>::parameter(Tensor<double>({2}, {0.0, 1.0}));
  Var<double> l =
      binary_cross_entropy(p, Var<double>(Tensor<double>({2}, {1.0, 0.0})), Reduction::none);
  CHECK(l.value()[0] == 100.0);
  CHECK(l.value()[1] == 100.0);
  sum(l).backward();
  for (double g : p.grad()) CHECK(std::isfinite(g));
  CHECK(test::error_of([] {
          binary_cross_entropy(Var<double>(Tensor<double>({1}, {1.5})),
                               Var<double>(Tensor<double>({1}, {1.0})));
        }).find("1.5") != std::string::npos);
  CHECK(test::error_of([] {
          mse_loss(Var<double>(Tensor<double>::zeros({2, 3})),
                   Var<double>(Tensor<double>::zeros({3, 2})));
        }).find("mse_loss: input of shape [2, 3] and target of shape [3, 2] differ") !=
        std::string::npos);
}

TEST_CASE(
    "identities: for h = relu(W¹x + b¹), o = softmax(W²h + b²), ∇W² = (o − onehot)hᵀ, ∇b² = o − "
    "onehot") {
  const Tensor<double> x = test::random_tensor({1, 6}, 98);
  Var<double> w1 = Var<double>::parameter(test::random_tensor({5, 6}, 99));
  Var<double> b1 = Var<double>::parameter(test::random_tensor({5}, 100));
  Var<double> w2 = Var<double>::parameter(test::random_tensor({3, 5}, 101));
  Var<double> b2 = Var<double>::parameter(test::random_tensor({3}, 102));
  Var<double> h = relu(linear(Var<double>(x), w1, b1));
  Var<double> logits = linear(h, w2, b2);
  const std::int64_t y = 2;
  softmax_cross_entropy(logits, {y}).backward();
  const Tensor<double> o = softmax(Var<double>(logits.value())).value();
  for (std::size_t k = 0; k < 3; ++k) {
    const double delta = o[k] - (static_cast<std::int64_t>(k) == y ? 1.0 : 0.0);
    CHECK(b2.grad()[k] == doctest::Approx(delta).epsilon(1e-12));
    for (std::size_t j = 0; j < 5; ++j)
      CHECK(w2.grad()[k * 5 + j] == doctest::Approx(delta * h.value()[j]).epsilon(1e-12));
  }
}

namespace {
// The elementwise losses with each option that matters, as functions of (input, target).
struct PairLoss {
  const char* name;
  std::function<Var<double>(const Var<double>&, const Var<double>&, Reduction)> f;
};
const std::vector<PairLoss> pair_losses = {
    {"l1_loss", [](const auto& x, const auto& t, Reduction r) { return l1_loss(x, t, r); }},
    {"smooth_l1_loss",
     [](const auto& x, const auto& t, Reduction r) { return smooth_l1_loss(x, t, r); }},
    {"smooth_l1_loss 0.3",
     [](const auto& x, const auto& t, Reduction r) { return smooth_l1_loss(x, t, r, 0.3); }},
    {"smooth_l1_loss 0",
     [](const auto& x, const auto& t, Reduction r) { return smooth_l1_loss(x, t, r, 0.0); }},
    {"huber_loss", [](const auto& x, const auto& t, Reduction r) { return huber_loss(x, t, r); }},
    {"huber_loss 0.3",
     [](const auto& x, const auto& t, Reduction r) { return huber_loss(x, t, r, 0.3); }},
    {"huber_loss 2.5",
     [](const auto& x, const auto& t, Reduction r) { return huber_loss(x, t, r, 2.5); }},
};
}  // namespace

TEST_CASE("l1, smooth_l1, huber: gradcheck for input and target, every reduction and β, δ") {
  // d = x − t spread over [-3, 3] on both sides of every β and δ used, |d| ≥ 0.05 (no kink).
  const Tensor<double> x = test::random_tensor({4, 5}, 111, -1.5, 1.5);
  Tensor<double> t = test::random_tensor({4, 5}, 112, -1.5, 1.5);
  for (std::size_t k = 0; k < t.numel(); ++k)
    if (std::abs(x[k] - t[k]) < 0.05 || std::abs(std::abs(x[k] - t[k]) - 0.3) < 0.05) t[k] += 0.2;
  for (const PairLoss& loss : pair_losses)
    for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
      CAPTURE(loss.name);
      CAPTURE(static_cast<int>(r));
      check_gradients([&](const auto& in) { return loss.f(in[0], in[1], r); }, {x, t});
    }
}

TEST_CASE("l1 and smooth_l1 with β = 0 at d = 0: gradcheck warns, the gradients are PyTorch's") {
  const Tensor<double> x({3}, {0.5, 1.25, -2.0});
  const Tensor<double> t({3}, {0.0, 1.25, -1.0});
  for (double beta : {-1.0, 0.0}) {  // -1: l1_loss
    CAPTURE(beta);
    const auto f = [beta](const Var<double>& a, const Var<double>& b) {
      return beta < 0 ? l1_loss(a, b, Reduction::sum) : smooth_l1_loss(a, b, Reduction::sum, beta);
    };
    const GradcheckResult r = gradcheck([&](const auto& in) { return f(in[0], in[1]); }, {x, t});
    INFO(r.report);
    CHECK(r.passed);
    CHECK(r.warnings.size() == 2);  // element [1] of each input
    Var<double> a = Var<double>::parameter(x), b = Var<double>::parameter(t);
    f(a, b).backward();
    // PyTorch 1.13: l1 has 0 at d = 0; smooth_l1 with β = 0 has −1 for input and target alike.
    CHECK(a.grad()[1] == (beta < 0 ? 0.0 : -1.0));
    CHECK(b.grad()[1] == (beta < 0 ? 0.0 : -1.0));
    CHECK(a.grad()[0] == 1.0);
    CHECK(b.grad()[2] == 1.0);
  }
}

TEST_CASE("l1, smooth_l1, huber: values against their definitions and each other") {
  const Tensor<double> x = test::random_tensor({30}, 113, -3, 3);
  const Tensor<double> t = test::random_tensor({30}, 114, -3, 3);
  const Var<double> xv(x), tv(t);
  const Reduction none = Reduction::none;
  const Tensor<double> l1 = l1_loss(xv, tv, none).value();
  const Tensor<double> sl1 = smooth_l1_loss(xv, tv, none, 0.7).value();
  const Tensor<double> sl1_0 = smooth_l1_loss(xv, tv, none, 0.0).value();
  const Tensor<double> hub = huber_loss(xv, tv, none, 0.7).value();
  const Tensor<double> hub_big = huber_loss(xv, tv, none, 100.0).value();
  const Tensor<double> mse = mse_loss(xv, tv, none).value();
  for (std::size_t k = 0; k < x.numel(); ++k) {
    const double d = std::abs(x[k] - t[k]);
    CHECK(l1[k] == d);
    CHECK(sl1[k] == doctest::Approx(d < 0.7 ? 0.5 * d * d / 0.7 : d - 0.35).epsilon(1e-15));
    CHECK(sl1_0[k] == d);                                           // β = 0 is L1
    CHECK(hub[k] == doctest::Approx(0.7 * sl1[k]).epsilon(1e-14));  // huber_δ = δ·smooth_l1_δ
    CHECK(hub_big[k] == doctest::Approx(0.5 * mse[k]).epsilon(1e-14));
  }
  CHECK(l1_loss(xv, tv).item() == doctest::Approx(sum(Var<double>(l1)).item() / 30));
  CHECK(huber_loss(xv, tv, Reduction::sum, 0.7).item() ==
        doctest::Approx(sum(Var<double>(hub)).item()));
}

TEST_CASE("l1, smooth_l1, huber, kl_div: shapes, β and δ are checked as PyTorch does") {
  const Var<double> a(Tensor<double>::zeros({2, 3})), b(Tensor<double>::zeros({3, 2}));
  for (const PairLoss& loss : pair_losses) {
    CAPTURE(loss.name);
    const std::string op = std::string(loss.name).substr(0, std::string(loss.name).find(' '));
    CHECK(test::error_of([&] { loss.f(a, b, Reduction::mean); }) ==
          op + ": input of shape [2, 3] and target of shape [3, 2] differ");
  }
  CHECK(test::error_of([&] { kl_div(a, b); }) ==
        "kl_div: input of shape [2, 3] and target of shape [3, 2] differ");
  CHECK(test::error_of([&] {
          smooth_l1_loss(a, a, Reduction::mean, -0.5);
        }).find("smooth_l1_loss does not support negative values for beta") == 0);
  CHECK(test::error_of([&] { smooth_l1_loss(a, a, Reduction::mean, NAN); }) != "");
  for (double delta : {0.0, -1.0, double(NAN)})
    CHECK(test::error_of([&] {
            huber_loss(a, a, Reduction::mean, delta);
          }).find("huber_loss does not support non-positive values for delta") == 0);
}

TEST_CASE("kl_div: gradcheck for input and target, every reduction, with and without log_target") {
  const Tensor<double> x = test::random_tensor({4, 5}, 115, -3, 0);    // log-probabilities
  const Tensor<double> p = test::random_tensor({4, 5}, 116, 0.05, 1);  // probabilities, > 0
  const Tensor<double> logp = test::random_tensor({4, 5}, 117, -3, 0);
  for (KlDivReduction r : {KlDivReduction::mean, KlDivReduction::sum, KlDivReduction::none,
                           KlDivReduction::batchmean}) {
    CAPTURE(static_cast<int>(r));
    check_gradients([r](const auto& in) { return kl_div(in[0], in[1], r); }, {x, p});
    check_gradients([r](const auto& in) { return kl_div(in[0], in[1], r, true); }, {x, logp});
  }
  // A 0-dimensional input: batchmean is the sum.
  check_gradients([](const auto& in) { return kl_div(in[0], in[1], KlDivReduction::batchmean); },
                  {Tensor<double>::scalar(-0.7), Tensor<double>::scalar(0.4)});
}

TEST_CASE("kl_div: values, reductions, log_target, and the zero target") {
  const Tensor<double> x = test::random_tensor({3, 4}, 118, -3, 0);
  Tensor<double> p = test::random_tensor({3, 4}, 119, 0, 1);
  p[5] = 0;
  Tensor<double> logp(p.shape());
  for (std::size_t k = 0; k < p.numel(); ++k) logp[k] = std::log(p[k]);  // −inf at 5
  const Var<double> xv(x), pv(p);
  const Tensor<double> per = kl_div(xv, pv, KlDivReduction::none).value();
  double total = 0;
  for (std::size_t k = 0; k < x.numel(); ++k) {
    CHECK(per[k] == doctest::Approx(p[k] == 0 ? 0.0 : p[k] * (std::log(p[k]) - x[k])));
    total += per[k];
  }
  CHECK(per[5] == 0);  // t = 0 contributes 0 (t ln t = 0)
  CHECK(kl_div(xv, pv, KlDivReduction::sum).item() == doctest::Approx(total).epsilon(1e-15));
  CHECK(kl_div(xv, pv).item() == doctest::Approx(total / 12).epsilon(1e-15));
  CHECK(kl_div(xv, pv, KlDivReduction::batchmean).item() ==
        doctest::Approx(total / 3).epsilon(1e-15));
  CHECK(kl_div(xv, pv, Reduction::sum).item() == kl_div(xv, pv, KlDivReduction::sum).item());
  // log_target with t = ln p gives the same divergence, except at p = 0: e^−∞·(−∞ − x) is NaN,
  // as in PyTorch.
  const Tensor<double> per_log = kl_div(xv, Var<double>(logp), KlDivReduction::none, true).value();
  for (std::size_t k = 0; k < x.numel(); ++k)
    if (k != 5) CHECK(per_log[k] == doctest::Approx(per[k]).epsilon(1e-13));
  CHECK(std::isnan(per_log[5]));
  // Gradients: ∂/∂x = −t·scale; the target's at t = 0 is NaN, as PyTorch's.
  Var<double> a = Var<double>::parameter(x), b = Var<double>::parameter(p);
  kl_div(a, b, KlDivReduction::batchmean).backward();
  for (std::size_t k = 0; k < x.numel(); ++k) {
    CHECK(a.grad()[k] == doctest::Approx(-p[k] / 3).epsilon(1e-15));
    if (k != 5)
      CHECK(b.grad()[k] == doctest::Approx((std::log(p[k]) + 1 - x[k]) / 3).epsilon(1e-14));
  }
  CHECK(std::isnan(b.grad()[5]));
}
