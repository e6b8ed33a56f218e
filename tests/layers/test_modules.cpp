// Modules: names, summary, modes, builders; initialisation statistics and the reasons for them.
#include <cmath>

#include "helpers.hpp"
#include "tapegrad/layers/dropout.hpp"
#include "tapegrad/layers/layers.hpp"
#include "tapegrad/layers/normalization.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

namespace {
double stddev(const Tensor<float>& t) {
  double s = 0, sq = 0;
  for (float v : t) s += v, sq += static_cast<double>(v) * v;
  const double n = static_cast<double>(t.numel());
  return std::sqrt(sq / n - (s / n) * (s / n));
}
double variance(const Tensor<float>& t) {
  return stddev(t) * stddev(t);
}
}  // namespace

TEST_CASE("modules: an MLP has PyTorch's parameter names, layouts and count") {
  Generator g(0);
  auto model = mlp<float>({784, 256, 128, 10}, Activation::relu, g);
  const auto named = model->named_parameters();
  REQUIRE(named.size() == 6);
  const char* names[] = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"};
  for (std::size_t i = 0; i < 6; ++i) CHECK(named[i].first == names[i]);
  CHECK(named[0].second.shape() == Shape{256, 784});
  CHECK(named[5].second.shape() == Shape{10});
  CHECK(model->parameter_count() == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  CHECK(model->output_shape({32, 784}) == Shape{32, 10});
  for (float b : named[1].second.value()) CHECK(b == 0.f);  // biases start at zero
}

TEST_CASE("modules: the cnn-fashion model has PyTorch's names, shapes and output") {
  Generator g(0);
  auto model = cnn1d<float>({28, 64, 128}, 28, 10, 3, 2, g);
  const auto named = model->named_parameters();
  REQUIRE(named.size() == 6);
  const char* names[] = {"0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias"};
  for (std::size_t i = 0; i < 6; ++i) CHECK(named[i].first == names[i]);
  CHECK(named[0].second.shape() == Shape{64, 28, 3});
  CHECK(named[4].second.shape() == Shape{10, 128 * 7});
  CHECK(model->output_shape({5, 28, 28}) == Shape{5, 10});
  CHECK((*model)(Var<float>(Tensor<float>::zeros({2, 28, 28}))).shape() == Shape{2, 10});
  const std::string s = model->summary({1, 28, 28});
  CHECK(s.find("MaxPool1d(kernel_size=2, stride=2, padding=0)") != std::string::npos);
  CHECK(s.find("[1, 128, 7]") != std::string::npos);
  CHECK(s.find("39114") != std::string::npos);
  Sequential<double> pools;
  pools.emplace<AvgPool1d<double>>(2).emplace<Flatten<double>>();
  CHECK(pools.output_shape({3, 4, 9}) == Shape{3, 16});
}

TEST_CASE("modules: parameters share nodes with the model; zero_grad and modes reach children") {
  Generator g(1);
  auto model = mlp<double>({3, 4, 2}, Activation::tanh, g);
  Var<double> x(test::random_tensor({5, 3}, 1));
  sum((*model)(x)).backward();
  for (const Var<double>& p : model->parameters()) CHECK(p.has_grad());
  model->parameters()[0].value()[0] = 42.0;
  CHECK(model->named_parameters()[0].second.value()[0] == 42.0);
  model->zero_grad();
  for (const Var<double>& p : model->parameters())
    for (double v : p.grad()) CHECK(v == 0.0);
  model->eval();
  CHECK_FALSE(model->is_training());
  for (const auto& [name, child] : model->children()) CHECK_FALSE(child->is_training());
  model->train();
  CHECK(model->children()[1].second->is_training());
}

TEST_CASE("modules: the summary lists each layer, its output shape and parameters, and the total") {
  Generator g(2);
  auto model = mlp<float>({8, 4, 3}, Activation::relu, g);
  const std::string s = model->summary({16, 8});
  CHECK(s.find("Linear(in_features=8, out_features=4, bias=True)") != std::string::npos);
  CHECK(s.find("[16, 4]") != std::string::npos);
  CHECK(s.find("ReLU()") != std::string::npos);
  CHECK(s.find("[16, 3]") != std::string::npos);
  CHECK(s.find("36") != std::string::npos);  // 8·4 + 4
  CHECK(s.find("total") != std::string::npos);
  CHECK(s.find("51") != std::string::npos);  // 36 + 4·3 + 3
  CHECK(test::error_of([&] {
          model->summary({16, 9});
        }).find("expects input [N, 8], got [16, 9]") != std::string::npos);
}

TEST_CASE("init: fan-in and fan-out come from the weight's shape") {
  CHECK(fans({256, 784}).in == 784);
  CHECK(fans({256, 784}).out == 256);
  CHECK(fans({32, 16, 5}).in == 80);
  CHECK(fans({32, 16, 5}).out == 160);
  CHECK(test::error_of([] { fans({7}); }).find("[7]") != std::string::npos);
}

TEST_CASE("init: every scheme's empirical deviation is within 3% of its formula") {
  Generator g(3);
  struct Case {
    Shape shape;
  };
  // A Linear's weight and a Conv1d's weight (fans (in·K, out·K)).
  Conv1d<float> conv(128, 256, 32, g);
  CHECK(stddev(conv.weight.value()) == doctest::Approx(std::sqrt(2.0 / (128 * 32))).epsilon(0.03));
  for (const Shape& shape : {Shape{1024, 1024}, Shape{256, 128, 32}}) {
    const Fans f = fans(shape);
    Tensor<float> w(shape);
    CAPTURE(shape.to_string());
    he_normal(w, g);
    CHECK(stddev(w) == doctest::Approx(std::sqrt(2 / f.in)).epsilon(0.03));
    he_uniform(w, g);
    CHECK(stddev(w) == doctest::Approx(std::sqrt(2 / f.in)).epsilon(0.03));
    glorot_normal(w, g);
    CHECK(stddev(w) == doctest::Approx(std::sqrt(2 / (f.in + f.out))).epsilon(0.03));
    glorot_uniform(w, g);
    CHECK(stddev(w) == doctest::Approx(std::sqrt(2 / (f.in + f.out))).epsilon(0.03));
    normal(w, g, 0.0, 0.25);
    CHECK(stddev(w) == doctest::Approx(0.25).epsilon(0.03));
    uniform(w, g, -0.5, 0.5);
    CHECK(stddev(w) == doctest::Approx(1 / std::sqrt(12.0)).epsilon(0.03));
    constant(w, 0.75);
    CHECK(w[7] == 0.75f);
    zeros(w);
    CHECK(w[9] == 0.f);
  }
}

TEST_CASE("init: the same seed gives the same weights bit for bit; the state round-trips") {
  Generator a(123), b(123), c(124);
  auto m1 = mlp<float>({20, 10, 5}, Activation::relu, a);
  auto m2 = mlp<float>({20, 10, 5}, Activation::relu, b);
  auto m3 = mlp<float>({20, 10, 5}, Activation::relu, c);
  test::check_close(m1->parameters()[0].value(), m2->parameters()[0].value(), 0);
  CHECK(m1->parameters()[0].value()[0] != m3->parameters()[0].value()[0]);
  a.normal();  // leaves a spare normal cached
  Generator restored(0);
  restored.set_state(a.state());
  for (int i = 0; i < 5; ++i) CHECK(restored.normal() == a.normal());
  // mt19937_64 is fully specified: its first output for seed 5489 is fixed by the standard's
  // definition, so our uniform is too.
  Generator std_seed(5489);
  CHECK(std_seed.uniform() == static_cast<double>(14514284786278117030ULL >> 11) * 0x1.0p-53);
}

TEST_CASE(
    "init: through 20 ReLU layers of width 512, He keeps the variance; N(0, 0.01²) loses it") {
  Generator g(4);
  Tensor<float> x(Shape{256, 512});
  normal(x, g, 0.0, 1.0);
  const double input_var = variance(x);
  for (bool he : {true, false}) {
    NoGradGuard no_grad;
    Var<float> h(x);
    for (int layer = 0; layer < 20; ++layer) {
      Tensor<float> w(Shape{512, 512});
      if (he)
        he_normal(w, g);
      else
        normal(w, g, 0.0, 0.01);
      // Pre-activations a = W h; He's argument tracks Var(a) from layer to layer.
      Var<float> a = linear(h, Var<float>(w));
      h = relu(a);
      if (layer == 19) {
        const double ratio = variance(a.value()) / input_var;
        CAPTURE(ratio);
        if (he) {
          CHECK(ratio > 0.5);
          CHECK(ratio < 2.0);
        } else {
          CHECK(ratio < 1e-20);  // ≈ (512 · 1e-4 / 2)^20
        }
      }
    }
  }
}

TEST_CASE(
    "init: with all-zero weights the hidden units get identical gradients and stay identical") {
  // Zero init is symmetric (identical up to BLAS rounding: gemm's kernels may sum
  // edge rows in another order). A sigmoid hidden layer (σ(0) = ½ ≠ 0) makes the gradients
  // non-zero, so the units move — but all in lockstep.
  Generator g(5);
  Sequential<double> model;
  model.emplace<Linear<double>>(4, 3, true, g, Init::zeros)
      .emplace<Sigmoid<double>>()
      .emplace<Linear<double>>(3, 2, true, g, Init::zeros);
  const Tensor<double> x = test::random_tensor({8, 4}, 6);
  const Tensor<double> y = test::random_tensor({8, 2}, 7);
  for (int step = 0; step < 5; ++step) {
    Var<double> err = model(Var<double>(x)) - Var<double>(y);
    sum(err * err).backward();
    const Tensor<double>& gw = model.parameters()[0].grad();   // [3, 4]: one row per hidden unit
    const Tensor<double>& gw2 = model.parameters()[2].grad();  // [2, 3]: one column per unit
    for (std::size_t u = 1; u < 3; ++u) {
      for (std::size_t i = 0; i < 4; ++i)
        CHECK(gw[u * 4 + i] == doctest::Approx(gw[i]).epsilon(1e-12));
      for (std::size_t o = 0; o < 2; ++o)
        CHECK(gw2[o * 3 + u] == doctest::Approx(gw2[o * 3]).epsilon(1e-12));
    }
    if (step > 0) {
      bool moved = false;
      for (double v : gw2) moved = moved || v != 0;
      CHECK(moved);
    }
    for (Var<double>& p : model.parameters()) {
      for (std::size_t k = 0; k < p.numel(); ++k) p.value()[k] -= 0.1 * p.grad()[k];
      p.zero_grad();
    }
  }
  const Tensor<double>& w = model.parameters()[0].value();
  for (std::size_t u = 1; u < 3; ++u)
    for (std::size_t i = 0; i < 4; ++i) CHECK(w[u * 4 + i] == doctest::Approx(w[i]).epsilon(1e-12));
}

TEST_CASE("identities: a sigmoid network equals the tanh network with the transformed parameters") {
  // σ(a) = ½ tanh(a/2) + ½: w̃¹ = w¹/2, b̃¹ = b¹/2, w̃² = w²/2, b̃² = b² + ½ Σ_j w²_kj.
  Generator g(8);
  Sequential<double> s, t;
  s.emplace<Linear<double>>(3, 5, true, g)
      .emplace<Sigmoid<double>>()
      .emplace<Linear<double>>(5, 2, true, g);
  t.emplace<Linear<double>>(3, 5, true, g)
      .emplace<Tanh<double>>()
      .emplace<Linear<double>>(5, 2, true, g);
  auto sp = s.parameters(), tp = t.parameters();
  normal(sp[1].value(), g, 0, 1);
  normal(sp[3].value(), g, 0, 1);
  for (std::size_t k = 0; k < sp[0].numel(); ++k) tp[0].value()[k] = sp[0].value()[k] / 2;
  for (std::size_t k = 0; k < sp[1].numel(); ++k) tp[1].value()[k] = sp[1].value()[k] / 2;
  for (std::size_t k = 0; k < sp[2].numel(); ++k) tp[2].value()[k] = sp[2].value()[k] / 2;
  for (std::size_t o = 0; o < 2; ++o) {
    double row = 0;
    for (std::size_t j = 0; j < 5; ++j) row += sp[2].value()[o * 5 + j];
    tp[3].value()[o] = sp[3].value()[o] + row / 2;
  }
  const Var<double> x(test::random_tensor({6, 3}, 9, -3, 3));
  test::check_close(t(x).value(), s(x).value(), 1e-12);
  // The map Θ' = 2Θ (a common slip) is wrong: it does not give the same outputs.
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t k = 0; k < sp[i].numel(); ++k) tp[i].value()[k] = 2 * sp[i].value()[k];
  CHECK(std::abs(t(x).value()[0] - s(x).value()[0]) > 1e-3);
}

TEST_CASE("Dropout: inverted in training, the identity in evaluation, reproducible from the seed") {
  Generator g(3);
  nn::Dropout<double> drop(0.25, g);
  CHECK(drop.name() == "Dropout(p=0.25, inplace=False)");
  const Tensor<double> xv = Tensor<double>::full({400, 50}, 2.0);
  Var<double> x = Var<double>::parameter(xv);
  Var<double> y = drop(x);
  std::size_t kept = 0;
  for (double v : y.value()) {
    CHECK((v == 0.0 || v == doctest::Approx(2.0 / 0.75)));
    kept += v != 0.0;
  }
  CHECK(static_cast<double>(kept) / xv.numel() == doctest::Approx(0.75).epsilon(0.02));
  sum(y).backward();  // gx = mask: 0 or 1/(1 − p), where y is
  for (std::size_t k = 0; k < xv.numel(); ++k)
    CHECK(x.grad()[k] == (y.value()[k] == 0.0 ? 0.0 : doctest::Approx(1 / 0.75)));

  Generator same_seed(3);
  nn::Dropout<double> again(0.25, same_seed);
  CHECK(test::bit_identical(again(Var<double>(xv)).value(), y.value()));

  drop.eval();
  CHECK(test::bit_identical(drop(Var<double>(xv)).value(), xv));
  drop.train();
  Generator g1(1);
  nn::Dropout<double> all(1.0, g1);
  const Var<double> zeros = all(Var<double>(xv));
  for (double v : zeros.value()) CHECK(v == 0.0);
  CHECK(test::error_of([&] {
          nn::Dropout<double>(1.5, g1);
        }).find("probability has to be between 0 and 1, but got 1.5") != std::string::npos);
  CHECK(drop.named_generators().size() == 1);
}

TEST_CASE("BatchNorm1d: batch statistics in training, running ones in evaluation, as PyTorch") {
  nn::BatchNorm1d<double> bn(2, 1e-5, 0.1);
  CHECK(bn.name() ==
        "BatchNorm1d(2, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  CHECK(bn.parameters().size() == 2);
  REQUIRE(bn.named_buffers().size() == 3);
  CHECK(bn.named_buffers()[2].first == "num_batches_tracked");
  CHECK(bn.named_buffers()[2].second.is_count);
  // Channel 0 holds 1, 2, 3, 4 (mean 2.5, biased variance 1.25, unbiased 5/3); channel 1 is 0.
  const Tensor<double> x({4, 2}, {1, 0, 2, 0, 3, 0, 4, 0});
  const Tensor<double> y = bn(Var<double>(x)).value();
  CHECK(y.at({0, 0}) == doctest::Approx(-1.5 / std::sqrt(1.25 + 1e-5)));
  CHECK(y.at({3, 1}) == 0.0);
  CHECK(bn.running_mean[0] == doctest::Approx(0.25));                // 0.9·0 + 0.1·2.5
  CHECK(bn.running_var[0] == doctest::Approx(0.9 + 0.1 * 5.0 / 3));  // unbiased
  CHECK(bn.running_var[1] == doctest::Approx(0.9));
  CHECK(bn.num_batches_tracked[0] == 1.0);
  bn.eval();
  const Tensor<double> e = bn(Var<double>(x)).value();
  CHECK(e.at({0, 0}) == doctest::Approx((1 - 0.25) / std::sqrt(bn.running_var[0] + 1e-5)));
  CHECK(bn.num_batches_tracked[0] == 1.0);  // evaluation updates nothing

  nn::BatchNorm1d<double> cumulative(2, 1e-5, std::nullopt);  // momentum None: running average
  cumulative(Var<double>(x));
  CHECK(cumulative.running_mean[0] == doctest::Approx(2.5));  // factor 1/1
  CHECK(cumulative.name().find("momentum=None") != std::string::npos);
  nn::BatchNorm1d<double> plain(2, 1e-5, 0.1, false, false);
  CHECK(plain.parameters().empty());
  CHECK(plain.named_buffers().empty());
  plain.eval();  // without running statistics: batch statistics in evaluation too
  CHECK(plain(Var<double>(x)).value().at({0, 0}) == doctest::Approx(y.at({0, 0})));
  CHECK(test::error_of([&] {
          bn(Var<double>(Tensor<double>::zeros({4, 3})));
        }).find("expects input [N, 2] or [N, 2, L], got [4, 3]") != std::string::npos);
}

TEST_CASE("LayerNorm: normalises over the trailing dimensions, with PyTorch's name") {
  nn::LayerNorm<double> ln(Shape{3});
  CHECK(ln.name() == "LayerNorm((3,), eps=1e-05, elementwise_affine=True)");
  CHECK(nn::LayerNorm<double>(Shape{2, 3}, 1e-6, false).name() ==
        "LayerNorm((2, 3), eps=1e-06, elementwise_affine=False)");
  const Tensor<double> y = ln(Var<double>(Tensor<double>({2, 3}, {1, 2, 3, 5, 5, 5}))).value();
  CHECK(y.at({0, 0}) == doctest::Approx(-1 / std::sqrt(2.0 / 3 + 1e-5)));
  CHECK(y.at({1, 2}) == 0.0);
  CHECK(test::error_of([&] {
          ln(Var<double>(Tensor<double>::zeros({2, 4})));
        }).find("ending with [3]") != std::string::npos);
}

TEST_CASE("builders: normalisation and dropout around each hidden activation, torch.nn's order") {
  Generator g(8);
  auto m = mlp<float>({6, 5, 4, 3}, Activation::relu, g, {Norm::batch, 0.25});
  std::vector<std::string> names;
  for (const auto& [index, layer] : m->children()) names.push_back(layer->name().substr(0, 6));
  CHECK(names == std::vector<std::string>{"Linear", "BatchN", "ReLU()", "Dropou", "Linear",
                                          "BatchN", "ReLU()", "Dropou", "Linear"});
  CHECK(m->named_buffers().size() == 6);
  auto c = cnn1d<float>({28, 16, 8}, 28, 10, 3, 2, g, {Norm::layer, 0.5});
  CHECK(c->children()[1].second->name() ==
        "LayerNorm((16, 28), eps=1e-05, elementwise_affine=True)");
  CHECK(c->output_shape(Shape{2, 28, 28}) == Shape{2, 10});
  // Hidden fully-connected layers after the flattening, each built as the MLP's blocks.
  auto h = cnn1d<float>({28, 16}, 28, 10, 3, 2, g, {Norm::batch, 0.5}, Activation::gelu, {32, 8});
  names.clear();
  for (const auto& [index, layer] : h->children()) names.push_back(layer->name().substr(0, 6));
  CHECK(names == std::vector<std::string>{"Conv1d", "BatchN", "GELU(a", "MaxPoo", "Flatte",
                                          "Dropou", "Linear", "BatchN", "GELU(a", "Dropou",
                                          "Linear", "BatchN", "GELU(a", "Dropou", "Linear"});
  CHECK(h->children()[6].second->name() == "Linear(in_features=224, out_features=32, bias=True)");
  CHECK(h->children()[14].second->name() == "Linear(in_features=8, out_features=10, bias=True)");
  CHECK(h->output_shape(Shape{3, 28, 28}) == Shape{3, 10});
  auto plain = mlp<float>({6, 5, 3}, Activation::relu, g);
  CHECK(plain->size() == 3);  // no options: the same model as before
}

TEST_CASE("activation layers: torch.nn's names, and each applies its op") {
  const Tensor<double> xv({1, 4}, {-2, -0.5, 0.5, 3});
  const Var<double> x(xv);
  struct Case {
    std::shared_ptr<Module<double>> layer;
    std::string name;
    Var<double> expected;
  };
  const std::vector<Case> cases = {
      {std::make_shared<LeakyReLU<double>>(0.2), "LeakyReLU(negative_slope=0.2)",
       leaky_relu(x, 0.2)},
      {std::make_shared<LeakyReLU<double>>(), "LeakyReLU(negative_slope=0.01)",
       leaky_relu(x, 0.01)},
      {std::make_shared<ELU<double>>(), "ELU(alpha=1.0)", elu(x, 1.0)},
      {std::make_shared<GELU<double>>(), "GELU(approximate='none')", gelu(x)},
      {std::make_shared<GELU<double>>(GeluApproximation::tanh), "GELU(approximate='tanh')",
       gelu(x, GeluApproximation::tanh)},
      {std::make_shared<SiLU<double>>(), "SiLU()", silu(x)},
      {std::make_shared<Softplus<double>>(), "Softplus(beta=1, threshold=20)", softplus(x)},
      {std::make_shared<Softmax<double>>(1), "Softmax(dim=1)", softmax(x, 1)},
      {std::make_shared<LogSoftmax<double>>(1), "LogSoftmax(dim=1)", log_softmax(x, 1)},
      {std::make_shared<Identity<double>>(), "Identity()", x},
  };
  for (const Case& c : cases) {
    CHECK(c.layer->name() == c.name);
    test::check_close((*c.layer)(x).value(), c.expected.value(), 0);
    CHECK(c.layer->output_shape(Shape{3, 4}) == Shape{3, 4});
  }
  for (Activation a : {Activation::relu, Activation::leaky_relu, Activation::elu, Activation::gelu,
                       Activation::silu, Activation::tanh, Activation::sigmoid})
    CHECK(make_activation<double>(a)->parameters().empty());
  CHECK(default_init(Activation::gelu) == Init::he_normal);
  CHECK(default_init(Activation::tanh) == Init::glorot_normal);
}
