// The optimiser interface: groups, learning rates, state by name, and its checks. (Each rule's
// trajectory is compared with torch.optim's by the interop test train.optim_interop.)
#include "helpers.hpp"
#include "tapegrad/train/adagrad.hpp"
#include "tapegrad/train/adam.hpp"
#include "tapegrad/train/clip_grad.hpp"
#include "tapegrad/train/rmsprop.hpp"
#include "tapegrad/train/sgd.hpp"

using namespace tapegrad;
using test::error_of;

namespace {
// A few steps of a quadratic bowl around (1, -2, 3): each parameter has a gradient every step.
template <class Opt>
void descend(Opt& opt, Var<double>& w, Var<double>& b, int steps) {
  const Tensor<double> target({3}, {1, -2, 3});
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    Var<double> d = w - Var<double>(target);
    (sum(d * d) + sum(b * b)).backward();
    opt.step();
  }
}

// The optimiser Opt over p with its options all in play: momentum (Nesterov), weight decay,
// centring, learning-rate decay, amsgrad.
template <class Opt, class T>
Opt with_every_option(std::vector<Var<T>> p) {
  if constexpr (std::is_same_v<Opt, SGD<T>>)
    return Opt(p, SgdOptions{0.05, 0.9, 0.0, true, 0.01});
  else if constexpr (std::is_same_v<Opt, RMSprop<T>>)
    return Opt(p, RmspropOptions{0.01, 0.9, 1e-8, 0.01, 0.5, true});
  else if constexpr (std::is_same_v<Opt, Adagrad<T>>)
    return Opt(p, AdagradOptions{0.1, 0.01, 0.0, 0.1, 1e-10});
  else
    return Opt(p, AdamOptions{0.05, 0.9, 0.99, 1e-8, 0.01, true});
}
}  // namespace

TEST_CASE_TEMPLATE("optimizers: a state saved after some steps continues bit for bit", Opt,
                   SGD<double>, Adam<double>, AdamW<double>, RMSprop<double>, Adagrad<double>) {
  auto make = [](std::vector<Var<double>> p) { return with_every_option<Opt>(std::move(p)); };
  auto fresh = [] {
    return std::make_pair(Var<double>::parameter(Tensor<double>({3}, {0, 0, 0})),
                          Var<double>::parameter(Tensor<double>({2}, {1, 1})));
  };
  auto [w1, b1] = fresh();
  Opt straight = make({w1, b1});
  descend(straight, w1, b1, 10);

  auto [w2, b2] = fresh();
  Opt first = make({w2, b2});
  descend(first, w2, b2, 4);
  const OptimizerState<double> saved = first.state();
  CHECK_FALSE(saved.tensors.empty());
  CHECK(saved.counts ==
        std::vector<std::pair<std::string, std::uint64_t>>{{"0.step", 4}, {"1.step", 4}});
  auto [w3, b3] = fresh();
  w3.value() = w2.value();
  b3.value() = b2.value();
  Opt resumed = make({w3, b3});
  resumed.load_state(saved);
  descend(resumed, w3, b3, 6);
  CHECK(test::bit_identical(w3.value(), w1.value()));
  CHECK(test::bit_identical(b3.value(), b1.value()));
}

TEST_CASE_TEMPLATE(
    "optimizers: a large parameter's update, cut into ranges among threads, is each "
    "element's own",
    Opt, SGD<float>, Adam<float>, AdamW<float>, RMSprop<float>, Adagrad<float>) {
  // One parameter of 100 003 elements (its update cut into ranges, shared by 1, 2 or 3 threads)
  // against the same values as 101 parameters of up to 997 (each updated in one range).
  const std::size_t size = 100003, piece = 997;
  const Tensor<float> start = test::random_tensor<float>({size}, 41);
  const Tensor<float> scale = test::random_tensor<float>({size}, 42, 0.5, 2);
  // Three steps on the bowl Σ scale·w², from `start`, with the values cut into `parts`.
  auto descend_in = [&](std::size_t parts_of, std::size_t threads) {
    test::ThreadCount count(threads);
    std::vector<Var<float>> ws, scales;
    for (std::size_t b = 0; b < size; b += parts_of) {
      const std::size_t n = std::min(parts_of, size - b);
      ws.push_back(Var<float>::parameter(Tensor<float>::from(
          Shape{n}, std::vector<float>(start.begin() + b, start.begin() + b + n))));
      scales.emplace_back(Tensor<float>::from(
          Shape{n}, std::vector<float>(scale.begin() + b, scale.begin() + b + n)));
    }
    Opt opt = with_every_option<Opt>(ws);
    for (int step = 0; step < 3; ++step) {
      opt.zero_grad();
      Var<float> loss = sum(ws[0] * ws[0] * scales[0]);
      for (std::size_t i = 1; i < ws.size(); ++i) loss = loss + sum(ws[i] * ws[i] * scales[i]);
      loss.backward();
      opt.step();
    }
    std::vector<float> values;
    for (const Var<float>& w : ws) values.insert(values.end(), w.value().begin(), w.value().end());
    return values;
  };
  const std::vector<float> pieces = descend_in(piece, 1);
  CHECK(pieces != std::vector<float>(start.begin(), start.end()));
  for (std::size_t threads : {1, 2, 3}) {
    CAPTURE(threads);
    const std::vector<float> whole = descend_in(size, threads);
    REQUIRE(whole.size() == pieces.size());
    std::size_t differ = 0;
    for (std::size_t k = 0; k < size; ++k) differ += whole[k] != pieces[k];
    CHECK(differ == 0);
  }
}

TEST_CASE("optimizers: a state that does not fit is refused, naming what is wrong") {
  Var<double> w = Var<double>::parameter(Tensor<double>({3}, {0, 0, 0}));
  Var<double> b = Var<double>::parameter(Tensor<double>({2}, {1, 1}));
  Adam<double> adam({w, b});
  descend(adam, w, b, 2);
  OptimizerState<double> s = adam.state();
  Adam<double> other({w, b});
  auto refused = [&](OptimizerState<double> bad) {
    return error_of([&] { other.load_state(bad); });
  };

  OptimizerState<double> unknown = s;
  unknown.tensors.emplace_back("0.momentum_buffer", Tensor<double>::zeros({3}));
  CHECK(refused(unknown).find("\"0.momentum_buffer\"") != std::string::npos);
  OptimizerState<double> misshapen = s;
  misshapen.tensors[0].second = Tensor<double>::zeros({4});
  CHECK(refused(misshapen).find("shape [4] but parameter 0 has shape [3]") != std::string::npos);
  OptimizerState<double> incomplete = s;
  incomplete.tensors.pop_back();
  CHECK(refused(incomplete).find("incomplete") != std::string::npos);
  OptimizerState<double> stray = s;
  stray.counts.emplace_back("7.step", 1);
  CHECK(refused(stray).find("\"7.step\"") != std::string::npos);
  CHECK(other.state().tensors.empty());  // nothing was changed by the refusals
  other.load_state(s);
  CHECK(other.state().tensors.size() == s.tensors.size());
}

TEST_CASE("optimizers: groups have their own options; schedules scale every group's rate") {
  Var<double> w = Var<double>::parameter(Tensor<double>({2}, {1, 1}));
  Var<double> b = Var<double>::parameter(Tensor<double>({2}, {1, 1}));
  SGD<double> sgd(std::vector<ParamGroup<double, SgdOptions>>{{{w}, {0.1, 0, 0, false, 0.5}},
                                                              {{b}, {0.2, 0, 0, false, 0.0}}});
  CHECK(sgd.group_count() == 2);
  CHECK(sgd.all_parameters().size() == 2);
  sgd.scale_lr(0.5);
  CHECK(sgd.lr(0) == 0.05);
  CHECK(sgd.lr(1) == 0.1);
  CHECK(sgd.initial_lr(1) == 0.2);
  sum(w + b).backward();
  sgd.step();
  // w: 1 − 0.05·(1 + 0.5·1) = 0.925; b (no decay): 1 − 0.1·1 = 0.9.
  CHECK(w.value()[0] == doctest::Approx(0.925));
  CHECK(b.value()[0] == doctest::Approx(0.9));
  CHECK(error_of([&] {
          SGD<double>(std::vector<ParamGroup<double, SgdOptions>>{{{w}, {}}, {{w}, {}}});
        }).find("more than one group") != std::string::npos);
  CHECK(error_of([&] { sgd.set_lr(-1); }).find("learning rate must be >= 0") != std::string::npos);
}

TEST_CASE("optimizers: invalid options are refused as PyTorch refuses them") {
  Var<double> w = Var<double>::parameter(Tensor<double>({2}, {1, 1}));
  CHECK(error_of([&] {
          Adam<double>({w}, AdamOptions{0.1, 1.0, 0.999, 1e-8, 0, false});
        }).find("beta1 must be in [0, 1)") != std::string::npos);
  CHECK(error_of([&] {
          Adam<double>({w}, AdamOptions{-0.1, 0.9, 0.999, 1e-8, 0, false});
        }).find("learning rate") != std::string::npos);
  CHECK(error_of([&] {
          RMSprop<double>({w}, RmspropOptions{0.1, -0.5, 1e-8, 0, 0, false});
        }).find("alpha") != std::string::npos);
  CHECK(error_of([&] {
          Adagrad<double>({w}, AdagradOptions{0.1, -1, 0, 0, 1e-10});
        }).find("lr_decay") != std::string::npos);
  CHECK(AdamW<double>({w}).options().weight_decay == 0.01);  // PyTorch's AdamW default
  CHECK(AdamW<double>({w}).name() == "AdamW");
}

TEST_CASE("optimizers: a parameter without a gradient is skipped, its state untouched") {
  Var<double> used = Var<double>::parameter(Tensor<double>({2}, {1, 1}));
  Var<double> unused = Var<double>::parameter(Tensor<double>({2}, {5, 5}));
  Adam<double> adam({used, unused});
  sum(used * used).backward();
  adam.step();
  CHECK(unused.value()[0] == 5.0);
  const OptimizerState<double> s = adam.state();
  CHECK(s.counts == std::vector<std::pair<std::string, std::uint64_t>>{{"0.step", 1}});
  for (const auto& [name, t] : s.tensors) CHECK(name.rfind("0.", 0) == 0);
}

TEST_CASE("clip_grad_norm: returns the norm before clipping and scales to max_norm") {
  Var<double> a = Var<double>::parameter(Tensor<double>({2}, {0, 0}));
  Var<double> b = Var<double>::parameter(Tensor<double>({1}, {0}));
  Var<double> none = Var<double>::parameter(Tensor<double>({1}, {0}));  // never gets a gradient
  (sum(a * Var<double>(Tensor<double>({2}, {3, 4}))) + sum(b * 12.0)).backward();  // ∇ = 3, 4, 12
  CHECK(clip_grad_norm<double>({a, b, none}, 26.0) == doctest::Approx(13.0));
  CHECK(a.grad()[1] == doctest::Approx(4.0));  // below max_norm: unchanged (factor 1)
  CHECK(clip_grad_norm<double>({a, b, none}, 6.5) == doctest::Approx(13.0));
  CHECK(a.grad()[0] == doctest::Approx(1.5).epsilon(1e-6));
  CHECK(b.grad()[0] == doctest::Approx(6.0).epsilon(1e-6));
  CHECK(clip_grad_norm<double>({a, b}, 1.0, INFINITY) == doctest::Approx(6.0).epsilon(1e-6));
  CHECK(b.grad()[0] == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(clip_grad_norm<double>({none}, 1.0) == 0.0);
  b.grad()[0] = NAN;
  CHECK(error_of([&] {
          clip_grad_norm<double>({a, b}, 1.0, 2.0, true);
        }).find("non-finite") != std::string::npos);
  CHECK(error_of([&] { clip_grad_norm<double>({a}, -1.0); }).find("max_norm") != std::string::npos);
}

TEST_CASE("clip_grad_value: clamps every element, leaving NaN as NaN") {
  Var<double> a = Var<double>::parameter(Tensor<double>({4}, {0, 0, 0, 0}));
  sum(a * Var<double>(Tensor<double>({4}, {-3, 0.5, 7, 0}))).backward();
  a.grad()[3] = NAN;
  clip_grad_value<double>({a}, 1.0);
  CHECK(a.grad()[0] == -1.0);
  CHECK(a.grad()[1] == 0.5);
  CHECK(a.grad()[2] == 1.0);
  CHECK(std::isnan(a.grad()[3]));
}
