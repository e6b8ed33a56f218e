// Zero-size dimensions, NaN and ±inf: every op against PyTorch 1.13's results (shapes, values,
// gradients, and the errors it raises), tracked and untracked.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "autodiff/conv_reference.hpp"
#include "helpers.hpp"

using namespace tapegrad;

namespace {

template <class T>
constexpr T nan_v = std::numeric_limits<T>::quiet_NaN();
template <class T>
constexpr T inf_v = std::numeric_limits<T>::infinity();

// Same shape, and each element equal or both NaN.
template <class T>
void check_same(const Tensor<T>& actual, const Tensor<T>& expected) {
  REQUIRE(actual.defined());
  REQUIRE(actual.shape().to_string() == expected.shape().to_string());
  for (std::size_t k = 0; k < actual.numel(); ++k) {
    INFO("element " << k << ": " << actual[k] << " vs " << expected[k]);
    if (std::isnan(expected[k]))
      CHECK(std::isnan(actual[k]));
    else if (std::isinf(expected[k]))
      CHECK(actual[k] == expected[k]);
    else
      CHECK(actual[k] == doctest::Approx(expected[k]).epsilon(1e-6));
  }
}

template <class T>
using Fn = std::function<Var<T>(const std::vector<Var<T>>&)>;

// What an op gives: its output, and the gradient of each input for an upstream gradient of ones.
template <class T>
struct Outcome {
  Tensor<T> y;
  std::vector<Tensor<T>> grads;
};

// Runs f untracked and tracked (then backward with ones); both outputs must agree.
template <class T>
Outcome<T> run(const Fn<T>& f, const std::vector<Tensor<T>>& inputs) {
  Tensor<T> untracked;
  {
    NoGradGuard no_grad;
    std::vector<Var<T>> vars;
    for (const Tensor<T>& t : inputs) vars.emplace_back(t);
    untracked = f(vars).value();
  }
  std::vector<Var<T>> vars;
  for (const Tensor<T>& t : inputs) vars.push_back(Var<T>::parameter(t));
  Var<T> y = f(vars);
  check_same(untracked, y.value());
  y.backward(Tensor<T>::ones(y.shape()));
  Outcome<T> out{y.value(), {}};
  for (const Var<T>& v : vars) out.grads.push_back(v.grad());
  return out;
}

template <class T>
Tensor<T> zeros(const Shape& s) {
  return Tensor<T>::zeros(s);
}

// An empty tensor (some dim 0) of the given shape.
template <class T>
Tensor<T> empty(const Shape& s) {
  REQUIRE(s.numel() == 0);
  return Tensor<T>(s);
}

// Whether f throws an exception whose message contains every one of `parts`.
template <class F>
bool throws_naming(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const std::exception& e) {
    const std::string m = e.what();
    INFO(m);
    for (const std::string& p : parts)
      if (m.find(p) == std::string::npos) return false;
    return true;
  }
  return false;
}

}  // namespace

// ---- conv1d ----

TEST_CASE_TEMPLATE("conv1d: an empty batch gives an empty output of PyTorch's shape", T, float,
                   double) {
  struct Case {
    std::size_t length, stride;
    Padding padding;
    std::size_t dilation, l_out;  // PyTorch's output length
  };
  const std::vector<Case> cases = {{6, 1, 0, 1, 4}, {6, 2, 0, 1, 2}, {6, 1, "same", 1, 6},
                                   {6, 3, 1, 2, 2}, {0, 1, 2, 1, 2}, {6, 1, "full", 1, 8}};
  for (const Case& c : cases) {
    CAPTURE(c.stride);
    CAPTURE(c.l_out);
    const Tensor<T> x = empty<T>({0, 2, c.length});
    const Tensor<T> w = test::random_tensor<T>({2, 2, 3}, 1);
    const Tensor<T> b = test::random_tensor<T>({2}, 2);
    const Outcome<T> r = run<T>(
        [&](const auto& in) {
          return conv1d(in[0], in[1], in[2], c.stride, c.padding, c.dilation);
        },
        {x, w, b});
    check_same(r.y, empty<T>({0, 2, c.l_out}));
    check_same(r.grads[0], x);
    check_same(r.grads[1], zeros<T>({2, 2, 3}));  // a sum over no samples
    check_same(r.grads[2], zeros<T>({2}));
    const Outcome<T> nb =
        run<T>([&](const auto& in) { return conv1d(in[0], in[1], Var<T>(), c.stride, c.padding); },
               {x, w});
    check_same(nb.grads[1], zeros<T>({2, 2, 3}));
    check_same(test::reference::conv1d(x, w, b, c.stride, c.padding, c.dilation), r.y);
  }
}

TEST_CASE_TEMPLATE("conv1d: zero input channels give the bias everywhere, and gb is the sum of gy",
                   T, float, double) {
  // PyTorch 1.13 returns shape [2, 0, 4] here (not [N, C_out, L_out]); conv.hpp documents this.
  const Tensor<T> b({3}, {T(0.5), T(-1), T(2)});
  const Outcome<T> r = run<T>([](const auto& in) { return conv1d(in[0], in[1], in[2]); },
                              {empty<T>({2, 0, 6}), empty<T>({3, 0, 3}), b});
  Tensor<T> expected({2, 3, 4});
  for (std::size_t k = 0; k < expected.numel(); ++k) expected[k] = b[(k / 4) % 3];
  check_same(r.y, expected);
  check_same(r.grads[0], empty<T>({2, 0, 6}));
  check_same(r.grads[1], empty<T>({3, 0, 3}));
  check_same(r.grads[2], Tensor<T>::full({3}, T(8)));  // 2 samples × 4 positions
  const Outcome<T> nb = run<T>([](const auto& in) { return conv1d(in[0], in[1], Var<T>(), 2); },
                               {empty<T>({2, 0, 6}), empty<T>({3, 0, 3})});
  check_same(nb.y, zeros<T>({2, 3, 2}));
}

TEST_CASE("conv1d: no output channels, or samples of length 0, are errors as in PyTorch") {
  const Var<double> x(Tensor<double>::ones({2, 2, 6}));
  CHECK(throws_naming(
      [&] {
        conv1d(x, Var<double>(Tensor<double>({0, 2, 3})));
      },
      {"conv1d", "[0, 2, 3]"}));
  CHECK(throws_naming(
      [&] {
        conv1d(Var<double>(empty<double>({0, 2, 6})), Var<double>(Tensor<double>({0, 2, 3})));
      },
      {"conv1d", "[0, 2, 3]"}));
  const Var<double> w(Tensor<double>::ones({3, 2, 3}));
  CHECK(throws_naming(
      [&] {
        conv1d(Var<double>(empty<double>({2, 2, 0})), w, Var<double>(), 1, 2);
      },
      {"conv1d", "[2, 2, 0]"}));
  CHECK(throws_naming(
      [&] {
        conv1d(Var<double>(empty<double>({2, 2, 0})), w);
      },
      {"conv1d", "length 0"}));
}

// ---- matmul and linear ----

TEST_CASE_TEMPLATE(
    "matmul: an empty inner dimension gives zeros; empty operands get empty "
    "gradients",
    T, float, double) {
  using blas::Transpose;
  // Fill the buffer pool with NaNs first: an output left unwritten would show.
  { Tensor<T> junk = Tensor<T>::full({64}, nan_v<T>); }
  const Outcome<T> r = run<T>([](const auto& in) { return matmul(in[0], in[1]); },
                              {empty<T>({3, 0}), empty<T>({0, 4})});
  check_same(r.y, zeros<T>({3, 4}));
  check_same(r.grads[0], empty<T>({3, 0}));
  check_same(r.grads[1], empty<T>({0, 4}));
  for (Transpose ta : {Transpose::no, Transpose::yes})
    for (Transpose tb : {Transpose::no, Transpose::yes}) {
      const Shape sa = ta == Transpose::yes ? Shape{0, 3} : Shape{3, 0};
      const Shape sb = tb == Transpose::yes ? Shape{4, 0} : Shape{0, 4};
      const Outcome<T> f = run<T>([=](const auto& in) { return matmul(in[0], in[1], ta, tb); },
                                  {empty<T>(sa), empty<T>(sb)});
      check_same(f.y, zeros<T>({3, 4}));
    }
  // Empty outer dimensions: the other operand's gradient is a sum over nothing.
  const Tensor<T> w = test::random_tensor<T>({3, 4}, 3);
  const Outcome<T> m0 =
      run<T>([](const auto& in) { return matmul(in[0], in[1]); }, {empty<T>({0, 3}), w});
  check_same(m0.y, empty<T>({0, 4}));
  check_same(m0.grads[1], zeros<T>({3, 4}));
  const Outcome<T> n0 =
      run<T>([](const auto& in) { return matmul(in[0], in[1]); }, {w, empty<T>({4, 0})});
  check_same(n0.y, empty<T>({3, 0}));
  check_same(n0.grads[0], zeros<T>({3, 4}));
}

TEST_CASE_TEMPLATE("linear: zero input features give the bias, whose gradient is the sum of gy", T,
                   float, double) {
  { Tensor<T> junk = Tensor<T>::full({64}, nan_v<T>); }
  const Tensor<T> b({3}, {T(1), T(-2), T(0.5)});
  const Outcome<T> r = run<T>([](const auto& in) { return linear(in[0], in[1], in[2]); },
                              {empty<T>({2, 0}), empty<T>({3, 0}), b});
  check_same(r.y, Tensor<T>({2, 3}, {T(1), T(-2), T(0.5), T(1), T(-2), T(0.5)}));
  check_same(r.grads[0], empty<T>({2, 0}));
  check_same(r.grads[1], empty<T>({3, 0}));
  check_same(r.grads[2], Tensor<T>::full({3}, T(2)));
  const Outcome<T> nb = run<T>([](const auto& in) { return linear(in[0], in[1]); },
                               {empty<T>({2, 0}), empty<T>({3, 0})});
  check_same(nb.y, zeros<T>({2, 3}));
  // An empty batch: gW and gb are sums over no samples. No outputs: gx is zero.
  const Tensor<T> w = test::random_tensor<T>({3, 4}, 4);
  const Outcome<T> n0 =
      run<T>([](const auto& in) { return linear(in[0], in[1], in[2]); }, {empty<T>({0, 4}), w, b});
  check_same(n0.y, empty<T>({0, 3}));
  check_same(n0.grads[1], zeros<T>({3, 4}));
  check_same(n0.grads[2], zeros<T>({3}));
  const Outcome<T> o0 =
      run<T>([](const auto& in) { return linear(in[0], in[1], in[2]); },
             {test::random_tensor<T>({2, 4}, 5), empty<T>({0, 4}), empty<T>({0})});
  check_same(o0.y, empty<T>({2, 0}));
  check_same(o0.grads[0], zeros<T>({2, 4}));
}

// ---- elementwise and broadcasting ----

TEST_CASE_TEMPLATE("elementwise ops: empty in, empty out, empty gradient", T, float, double) {
  const std::vector<Fn<T>> ops = {
      [](const auto& in) { return neg(in[0]); },
      [](const auto& in) { return exp(in[0]); },
      [](const auto& in) { return log(in[0]); },
      [](const auto& in) { return sqrt(in[0]); },
      [](const auto& in) { return abs(in[0]); },
      [](const auto& in) { return sign(in[0]); },
      [](const auto& in) { return relu(in[0]); },
      [](const auto& in) { return sigmoid(in[0]); },
      [](const auto& in) { return tanh(in[0]); },
      [](const auto& in) { return softplus(in[0]); },
      [](const auto& in) { return log_sigmoid(in[0]); },
      [](const auto& in) { return leaky_relu(in[0], T(0.2)); },
      [](const auto& in) { return elu(in[0], T(2)); },
      [](const auto& in) { return gelu(in[0]); },
      [](const auto& in) { return gelu(in[0], GeluApproximation::tanh); },
      [](const auto& in) { return silu(in[0]); },
      [](const auto& in) { return in[0] + T(1); },
      [](const auto& in) { return in[0] * T(3); },
      [](const auto& in) { return T(1) - in[0]; },
      [](const auto& in) { return T(2) / in[0]; },
  };
  for (std::size_t i = 0; i < ops.size(); ++i) {
    CAPTURE(i);
    const Outcome<T> r = run<T>(ops[i], {empty<T>({0, 3})});
    check_same(r.y, empty<T>({0, 3}));
    check_same(r.grads[0], empty<T>({0, 3}));
  }
}

TEST_CASE_TEMPLATE(
    "add, sub, mul, div: broadcasting against an empty dimension gives an empty "
    "output and zero gradients for the broadcast operand",
    T, float, double) {
  const std::vector<Fn<T>> ops = {
      [](const auto& in) { return in[0] + in[1]; },
      [](const auto& in) { return in[0] - in[1]; },
      [](const auto& in) { return in[0] * in[1]; },
      [](const auto& in) { return in[0] / in[1]; },
  };
  for (std::size_t i = 0; i < ops.size(); ++i) {
    CAPTURE(i);
    const Tensor<T> a = test::random_tensor<T>({3, 1}, 6, 0.5, 1.0);
    Outcome<T> r = run<T>(ops[i], {a, empty<T>({3, 0})});
    check_same(r.y, empty<T>({3, 0}));
    check_same(r.grads[0], zeros<T>({3, 1}));
    check_same(r.grads[1], empty<T>({3, 0}));
    r = run<T>(ops[i], {empty<T>({2, 0}), empty<T>({2, 0})});
    check_same(r.y, empty<T>({2, 0}));
    r = run<T>(ops[i], {Tensor<T>::scalar(T(2)), empty<T>({0, 3})});
    check_same(r.y, empty<T>({0, 3}));
    check_same(r.grads[0], Tensor<T>::scalar(T(0)));
    r = run<T>(ops[i], {empty<T>({0, 3}), Tensor<T>::ones({1, 3})});
    check_same(r.grads[1], zeros<T>({1, 3}));
  }
  // A 0 against a dim other than 1 does not broadcast (PyTorch: "must match").
  CHECK(throws_naming(
      [] {
        add(Var<double>(empty<double>({2, 0})), Var<double>(empty<double>({3, 0})));
      },
      {"add", "[2, 0]", "[3, 0]"}));
  CHECK(
      throws_naming([] { mul(Var<double>(empty<double>({0})), Var<double>(Tensor<double>({2}))); },
                    {"mul", "[0]", "[2]"}));
}

// ---- reductions ----

TEST_CASE_TEMPLATE("sum and mean of an empty tensor: 0 and NaN, with an empty gradient", T, float,
                   double) {
  Outcome<T> r = run<T>([](const auto& in) { return sum(in[0]); }, {empty<T>({0, 3})});
  check_same(r.y, Tensor<T>::scalar(T(0)));
  check_same(r.grads[0], empty<T>({0, 3}));
  r = run<T>([](const auto& in) { return mean(in[0]); }, {empty<T>({0, 3})});
  check_same(r.y, Tensor<T>::scalar(nan_v<T>));
  check_same(r.grads[0], empty<T>({0, 3}));
  // Over an empty axis: one value per row (PyTorch: 0 for sum, NaN for mean).
  r = run<T>([](const auto& in) { return sum(in[0], {1}); }, {empty<T>({3, 0})});
  check_same(r.y, zeros<T>({3}));
  r = run<T>([](const auto& in) { return mean(in[0], {1}); }, {empty<T>({3, 0})});
  check_same(r.y, Tensor<T>::full({3}, nan_v<T>));
  check_same(r.grads[0], empty<T>({3, 0}));
  r = run<T>([](const auto& in) { return mean(in[0], {0}, true); }, {empty<T>({0, 3})});
  check_same(r.y, Tensor<T>::full({1, 3}, nan_v<T>));
  // Over a non-empty axis of an empty tensor: an empty result.
  r = run<T>([](const auto& in) { return mean(in[0], {1}); }, {empty<T>({0, 3})});
  check_same(r.y, empty<T>({0}));
  check_same(r.grads[0], empty<T>({0, 3}));
}

TEST_CASE_TEMPLATE("sum and mean with an empty axis list reduce every axis, as PyTorch 1.13", T,
                   float, double) {
  const Tensor<T> x({2, 3}, {T(1), T(2), T(3), T(4), T(5), T(6)});
  Outcome<T> r = run<T>([](const auto& in) { return sum(in[0], {}); }, {x});
  check_same(r.y, Tensor<T>::scalar(T(21)));
  check_same(r.grads[0], Tensor<T>::ones({2, 3}));
  r = run<T>([](const auto& in) { return sum(in[0], {}, true); }, {x});
  check_same(r.y, Tensor<T>({1, 1}, {T(21)}));
  r = run<T>([](const auto& in) { return mean(in[0], {}); }, {x});
  check_same(r.y, Tensor<T>::scalar(T(3.5)));
  check_same(r.grads[0], Tensor<T>::full({2, 3}, T(1) / T(6)));
  r = run<T>([](const auto& in) { return mean(in[0], {}, true); }, {x});
  check_same(r.y, Tensor<T>({1, 1}, {T(3.5)}));
  r = run<T>([](const auto& in) { return mean(in[0], {}); }, {empty<T>({0, 3})});
  check_same(r.y, Tensor<T>::scalar(nan_v<T>));
  r = run<T>([](const auto& in) { return mean(in[0], {}); }, {Tensor<T>::scalar(T(2.5))});
  check_same(r.y, Tensor<T>::scalar(T(2.5)));
  check_same(r.grads[0], Tensor<T>::scalar(T(1)));
}

// ---- softmax family ----

TEST_CASE_TEMPLATE("softmax and log_softmax: an empty axis or empty rows give an empty result", T,
                   float, double) {
  for (const Shape& s : {Shape{3, 0}, Shape{0, 3}, Shape{2, 0, 4}}) {
    CAPTURE(s.to_string());
    Outcome<T> r = run<T>([](const auto& in) { return softmax(in[0], -1); }, {empty<T>(s)});
    check_same(r.y, empty<T>(s));
    check_same(r.grads[0], empty<T>(s));
    r = run<T>([](const auto& in) { return log_softmax(in[0], 1); }, {empty<T>(s)});
    check_same(r.y, empty<T>(s));
    check_same(r.grads[0], empty<T>(s));
  }
}

TEST_CASE_TEMPLATE("logsumexp: over an empty axis it is -inf, with an empty gradient", T, float,
                   double) {
  Outcome<T> r = run<T>([](const auto& in) { return logsumexp(in[0], -1); }, {empty<T>({3, 0})});
  check_same(r.y, Tensor<T>::full({3}, -inf_v<T>));
  check_same(r.grads[0], empty<T>({3, 0}));
  r = run<T>([](const auto& in) { return logsumexp(in[0], -1, true); }, {empty<T>({3, 0})});
  check_same(r.y, Tensor<T>::full({3, 1}, -inf_v<T>));
  r = run<T>([](const auto& in) { return logsumexp(in[0], 0); }, {empty<T>({0, 3})});
  check_same(r.y, Tensor<T>::full({3}, -inf_v<T>));
  check_same(r.grads[0], empty<T>({0, 3}));
  r = run<T>([](const auto& in) { return logsumexp(in[0], 1); }, {empty<T>({0, 3})});
  check_same(r.y, empty<T>({0}));
  r = run<T>([](const auto& in) { return logsumexp(in[0], 0); }, {empty<T>({0})});
  check_same(r.y, Tensor<T>::scalar(-inf_v<T>));
}

// ---- losses ----

TEST_CASE_TEMPLATE(
    "losses: an empty batch gives NaN for mean, 0 for sum and an empty none, as "
    "PyTorch",
    T, float, double) {
  const std::vector<std::int64_t> no_labels;
  const std::vector<Reduction> reductions = {Reduction::mean, Reduction::sum, Reduction::none};
  for (Reduction red : reductions) {
    CAPTURE(static_cast<int>(red));
    CrossEntropyOptions<T> o;
    o.reduction = red;
    CrossEntropyOptions<T> weighted = o;
    weighted.class_weights = Tensor<T>({3}, {T(1), T(2), T(3)});
    const Tensor<T> expected = red == Reduction::none  ? empty<T>({0})
                               : red == Reduction::sum ? Tensor<T>::scalar(T(0))
                                                       : Tensor<T>::scalar(nan_v<T>);
    const Tensor<T> expected_elementwise = red == Reduction::none ? empty<T>({0, 3}) : expected;
    const std::vector<std::pair<Fn<T>, Shape>> label_losses = {
        {[&](const auto& in) { return softmax_cross_entropy(in[0], no_labels, o); }, {0, 3}},
        {[&](const auto& in) { return softmax_cross_entropy(in[0], no_labels, weighted); }, {0, 3}},
        {[&](const auto& in) { return softmax_cross_entropy(in[0], no_labels, o); }, {0, 0}},
        {[&](const auto& in) {
           return softmax_cross_entropy(in[0], empty<T>({0, 3}), o);
         },
         {0, 3}},
        {[&](const auto& in) { return nll_loss(in[0], no_labels, o); }, {0, 3}},
        {[&](const auto& in) { return nll_loss(in[0], no_labels, weighted); }, {0, 3}},
        {[&](const auto& in) { return nll_loss(in[0], no_labels, o); }, {0, 0}},
    };
    for (std::size_t i = 0; i < label_losses.size(); ++i) {
      CAPTURE(i);
      const Outcome<T> r = run<T>(label_losses[i].first, {empty<T>(label_losses[i].second)});
      check_same(r.y, expected);
      check_same(r.grads[0], empty<T>(label_losses[i].second));
    }
    const std::vector<Fn<T>> pair_losses = {
        [&](const auto& in) { return binary_cross_entropy_with_logits(in[0], in[1], red); },
        [&](const auto& in) { return binary_cross_entropy(in[0], in[1], red); },
        [&](const auto& in) { return mse_loss(in[0], in[1], red); },
        [&](const auto& in) { return l1_loss(in[0], in[1], red); },
        [&](const auto& in) { return smooth_l1_loss(in[0], in[1], red); },
        [&](const auto& in) { return smooth_l1_loss(in[0], in[1], red, 0.0); },
        [&](const auto& in) { return huber_loss(in[0], in[1], red, 0.5); },
        [&](const auto& in) { return kl_div(in[0], in[1], red); },
        [&](const auto& in) { return kl_div(in[0], in[1], red, true); },
    };
    for (std::size_t i = 0; i < pair_losses.size(); ++i) {
      CAPTURE(i);
      const Outcome<T> r = run<T>(pair_losses[i], {empty<T>({0, 3}), empty<T>({0, 3})});
      check_same(r.y, expected_elementwise);
      check_same(r.grads[0], empty<T>({0, 3}));
      check_same(r.grads[1], empty<T>({0, 3}));
    }
  }
}

TEST_CASE_TEMPLATE("kl_div batchmean: the sum over the first dimension's size, NaN when it is 0", T,
                   float, double) {
  // PyTorch 1.13: kl_div(reduction='batchmean') on [0, 3] and [0] is NaN (0/0), on [3, 0] 0 (0/3).
  for (const Shape& shape : {Shape{0, 3}, Shape{0}, Shape{3, 0}}) {
    CAPTURE(shape.to_string());
    for (bool log_target : {false, true}) {
      const Outcome<T> r = run<T>(
          [&](const auto& in) {
            return kl_div(in[0], in[1], KlDivReduction::batchmean, log_target);
          },
          {empty<T>(shape), empty<T>(shape)});
      check_same(r.y, Tensor<T>::scalar(shape[0] == 0 ? nan_v<T> : T(0)));
      check_same(r.grads[0], empty<T>(shape));
      check_same(r.grads[1], empty<T>(shape));
    }
  }
}

TEST_CASE_TEMPLATE("softmax_cross_entropy: no classes, soft targets: NaN mean, 0 per sample", T,
                   float, double) {
  // PyTorch: cross_entropy(a [2, 0], t [2, 0]) is NaN (mean), -0 (sum) and [-0, -0] (none).
  CrossEntropyOptions<T> o;
  Outcome<T> r = run<T>(
      [&](const auto& in) {
        return softmax_cross_entropy(in[0], empty<T>({2, 0}), o);
      },
      {empty<T>({2, 0})});
  check_same(r.y, Tensor<T>::scalar(nan_v<T>));
  check_same(r.grads[0], empty<T>({2, 0}));
  o.reduction = Reduction::sum;
  r = run<T>(
      [&](const auto& in) {
        return softmax_cross_entropy(in[0], empty<T>({2, 0}), o);
      },
      {empty<T>({2, 0})});
  check_same(r.y, Tensor<T>::scalar(T(0)));
  o.reduction = Reduction::none;
  r = run<T>(
      [&](const auto& in) {
        return softmax_cross_entropy(in[0], empty<T>({2, 0}), o);
      },
      {empty<T>({2, 0})});
  check_same(r.y, zeros<T>({2}));
  // With class labels there is no valid label for no classes (PyTorch: "out of bounds").
  CHECK(throws_naming(
      [] {
        softmax_cross_entropy(Var<T>(empty<T>({2, 0})), std::vector<std::int64_t>{0, 0});
      },
      {"softmax_cross_entropy", "label 0"}));
  CHECK(throws_naming(
      [] {
        nll_loss(Var<T>(empty<T>({2, 0})), std::vector<std::int64_t>{0, 0});
      },
      {"nll_loss", "label 0"}));
}

// ---- shape ops ----

TEST_CASE_TEMPLATE("reshape, flatten, transpose, flip: empty tensors keep PyTorch's shapes", T,
                   float, double) {
  Outcome<T> r = run<T>(
      [](const auto& in) {
        return reshape(in[0], Shape{3, 0, 2});
      },
      {empty<T>({0, 6})});
  check_same(r.y, empty<T>({3, 0, 2}));
  check_same(r.grads[0], empty<T>({0, 6}));
  r = run<T>([](const auto& in) { return reshape(in[0], {2, -1}); }, {empty<T>({0, 6})});
  check_same(r.y, empty<T>({2, 0}));
  r = run<T>([](const auto& in) { return flatten(in[0], 1); }, {empty<T>({0, 2, 3})});
  check_same(r.y, empty<T>({0, 6}));
  check_same(r.grads[0], empty<T>({0, 2, 3}));
  r = run<T>([](const auto& in) { return transpose(in[0], 0, 2); }, {empty<T>({0, 2, 3})});
  check_same(r.y, empty<T>({3, 2, 0}));
  check_same(r.grads[0], empty<T>({0, 2, 3}));
  r = run<T>([](const auto& in) { return transpose(in[0]); }, {empty<T>({0, 3})});
  check_same(r.y, empty<T>({3, 0}));
  r = run<T>([](const auto& in) { return flip(in[0], 1); }, {empty<T>({2, 0, 3})});
  check_same(r.y, empty<T>({2, 0, 3}));
  check_same(r.grads[0], empty<T>({2, 0, 3}));
  r = run<T>([](const auto& in) { return flip(in[0], 0); }, {empty<T>({0, 3})});
  check_same(r.grads[0], empty<T>({0, 3}));
  // -1 beside a 0 is ambiguous (PyTorch raises too).
  CHECK(throws_naming([] { reshape(Var<T>(empty<T>({0, 6})), {-1, 0}); }, {"reshape", "-1"}));
}

// ---- pooling ----

TEST_CASE_TEMPLATE("max_pool1d and avg_pool1d: an empty batch gives an empty output", T, float,
                   double) {
  struct Case {
    std::size_t length, kernel, stride, padding, l_out;  // l_out: PyTorch's
  };
  for (const Case& c : {Case{6, 2, 0, 0, 3}, Case{7, 2, 0, 0, 3}, Case{6, 3, 2, 1, 3}}) {
    CAPTURE(c.length);
    CAPTURE(c.kernel);
    const Tensor<T> x = empty<T>({0, 2, c.length});
    Outcome<T> r = run<T>(
        [&](const auto& in) { return max_pool1d(in[0], c.kernel, c.stride, c.padding); }, {x});
    check_same(r.y, empty<T>({0, 2, c.l_out}));
    check_same(r.grads[0], x);
    r = run<T>([&](const auto& in) { return avg_pool1d(in[0], c.kernel, c.stride, c.padding); },
               {x});
    check_same(r.y, empty<T>({0, 2, c.l_out}));
    check_same(r.grads[0], x);
  }
}

TEST_CASE("max_pool1d and avg_pool1d: no channels, or length 0, are errors as in PyTorch") {
  for (const Shape& s : {Shape{2, 0, 6}, Shape{0, 0, 4}, Shape{2, 2, 0}, Shape{0, 2, 0}}) {
    CAPTURE(s.to_string());
    const Var<double> x(empty<double>(s));
    CHECK(throws_naming([&] { max_pool1d(x, 2, 2, 1); }, {"max_pool1d", s.to_string()}));
    CHECK(throws_naming([&] { avg_pool1d(x, 2, 2, 1); }, {"avg_pool1d", s.to_string()}));
  }
}

// ---- NaN and infinities ----

namespace {
// The inputs of the elementwise NaN/inf checks, and PyTorch 1.13's gradients there.
const std::vector<double> special = {std::numeric_limits<double>::quiet_NaN(),
                                     std::numeric_limits<double>::infinity(),
                                     -std::numeric_limits<double>::infinity(),
                                     0.0,
                                     -0.0,
                                     1.0,
                                     -1.0,
                                     40.0,
                                     -40.0,
                                     800.0,
                                     -800.0};

template <class T>
Tensor<T> special_tensor() {
  Tensor<T> t({special.size()});
  for (std::size_t k = 0; k < special.size(); ++k) t[k] = static_cast<T>(special[k]);
  return t;
}

// The gradient of op at `special` for an upstream gradient filled with `upstream`.
template <class T, class Op>
Tensor<T> grad_of_at_special(Op op, T upstream) {
  Var<T> x = Var<T>::parameter(special_tensor<T>());
  Var<T> y = op(x);
  y.backward(Tensor<T>::full(y.shape(), upstream));
  return x.grad();
}
template <class T>
Tensor<T> grad_at_special(Var<T> (*op)(const Var<T>&), T upstream) {
  return grad_of_at_special<T>(op, upstream);
}

template <class T>
Tensor<T> values(const std::vector<double>& v) {
  Tensor<T> t({v.size()});
  for (std::size_t k = 0; k < v.size(); ++k) t[k] = static_cast<T>(v[k]);
  return t;
}
}  // namespace

TEST_CASE_TEMPLATE(
    "relu: the gradient is PyTorch's threshold_backward on the result, so a NaN "
    "input passes the upstream gradient through",
    T, float, double) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  // PyTorch 1.13 computed these: torch.relu(x).backward(g) at `special` for g = 1, NaN, inf.
  check_same(grad_at_special<T>(relu, T(1)), values<T>({1, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0}));
  check_same(grad_at_special<T>(relu, nan_v<T>),
             values<T>({nan, nan, 0, 0, 0, nan, 0, nan, 0, nan, 0}));
  check_same(grad_at_special<T>(relu, inf_v<T>),
             values<T>({inf, inf, 0, 0, 0, inf, 0, inf, 0, inf, 0}));
  check_same(relu(Var<T>(special_tensor<T>())).value(),
             values<T>({nan, inf, 0, 0, 0, 1, 0, 40, 0, 800, 0}));
}

TEST_CASE_TEMPLATE("sign: the gradient is zero, even for a NaN upstream gradient", T, float,
                   double) {
  // PyTorch 1.13: sign's backward is zeros_like(grad), whatever the grad holds.
  check_same(grad_at_special<T>(sign, T(1)), Tensor<T>::zeros({special.size()}));
  check_same(grad_at_special<T>(sign, nan_v<T>), Tensor<T>::zeros({special.size()}));
  check_same(sign(Var<T>(special_tensor<T>())).value(),
             values<T>({0, 1, -1, 0, 0, 1, -1, 1, -1, 1, -1}));
}

TEST_CASE_TEMPLATE(
    "abs, sigmoid, tanh, softplus, log_sigmoid: gradients at NaN and ±inf as "
    "PyTorch's",
    T, float, double) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // PyTorch 1.13 computed these gradients at `special` (upstream 1).
  check_same(grad_at_special<T>(abs, T(1)), values<T>({0, 1, -1, 0, 0, 1, -1, 1, -1, 1, -1}));
  check_same(grad_at_special<T>(abs, nan_v<T>), Tensor<T>::full({special.size()}, nan_v<T>));
  check_same(grad_at_special<T>(sigmoid, T(1)),
             values<T>({nan, 0, 0, 0.25, 0.25, 0.19661193324148185, 0.19661193324148185, 0,
                        4.248354255291589e-18, 0, 0}));
  check_same(grad_at_special<T>(tanh, T(1)),
             values<T>({nan, 0, 0, 1, 1, 0.41997434161402614, 0.41997434161402614, 0, 0, 0, 0}));
  check_same(grad_at_special<T>(softplus, T(1)),
             values<T>({nan, 1, 0, 0.5, 0.5, 0.7310585786300049, 0.2689414213699951, 1,
                        4.248354255291589e-18, 1, 0}));
  check_same(grad_at_special<T>(log_sigmoid, T(1)),
             values<T>({nan, 0, 1, 0.5, 0.5, 0.2689414213699951, 0.7310585786300049,
                        4.248354255291589e-18, 1, 0, 1}));
}

TEST_CASE_TEMPLATE(
    "max_pool1d: a NaN is the window's maximum, and the last NaN in a window takes "
    "the gradient, as in PyTorch",
    T, float, double) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    std::vector<double> row;
    std::size_t kernel, stride, padding;
    std::vector<double> y, grad;  // PyTorch 1.13's
  };
  const std::vector<Case> cases = {
      {{nan, 1, nan, 2}, 4, 4, 0, {nan}, {0, 0, 1, 0}},
      {{1, nan, 3, nan}, 2, 2, 0, {nan, nan}, {0, 1, 0, 1}},
      {{nan, 2, nan, 5, nan, 1}, 3, 1, 1, {nan, nan, nan, nan, nan, nan}, {1, 0, 2, 0, 3, 0}},
      {{3, 3, nan, nan}, 2, 2, 0, {3, nan}, {1, 0, 0, 1}},
      {{2, 2, 5, 5, 1}, 3, 2, 1, {2, 5, 5}, {1, 0, 1, 1, 0}},
      {{nan, nan, nan}, 3, 3, 0, {nan}, {0, 0, 1}},
      {{1, nan, nan}, 3, 3, 0, {nan}, {0, 0, 1}},
      {{1, 2, 3, nan, 4}, 2, 2, 0, {2, nan}, {0, 1, 0, 1, 0}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.row.size());
    CAPTURE(c.kernel);
    Tensor<T> x({1, 1, c.row.size()});
    for (std::size_t k = 0; k < c.row.size(); ++k) x[k] = static_cast<T>(c.row[k]);
    const Outcome<T> r = run<T>(
        [&](const auto& in) { return max_pool1d(in[0], c.kernel, c.stride, c.padding); }, {x});
    Tensor<T> y({1, 1, c.y.size()}), g({1, 1, c.grad.size()});
    for (std::size_t k = 0; k < c.y.size(); ++k) y[k] = static_cast<T>(c.y[k]);
    for (std::size_t k = 0; k < c.grad.size(); ++k) g[k] = static_cast<T>(c.grad[k]);
    check_same(r.y, y);
    check_same(r.grads[0], g);
  }
}

TEST_CASE_TEMPLATE(
    "leaky_relu, elu, gelu, silu: values and gradients at 0, ±inf and NaN as PyTorch's, and a NaN "
    "or infinite upstream gradient multiplies",
    T, float, double) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    const char* name;
    std::function<Var<T>(const Var<T>&)> op;
    std::vector<double> y, grad;  // PyTorch 1.13's at `special`, upstream 1
  };
  // One difference on purpose: elu's gradient at NaN is NaN here; PyTorch's is NaN in its vector
  // loop (as for these 11 doubles) and 1 in its scalar tail (as for these 11 floats).
  const std::vector<Case> cases = {
      {"leaky_relu",
       [](const Var<T>& x) { return leaky_relu(x); },
       {nan, inf, -inf, 0, 0, 1, -0.01, 40, -0.4, 800, -8},
       {0.01, 1, 0.01, 0.01, 0.01, 1, 0.01, 1, 0.01, 1, 0.01}},
      {"leaky_relu -0.5",
       [](const Var<T>& x) { return leaky_relu(x, T(-0.5)); },
       {nan, inf, inf, 0, 0, 1, 0.5, 40, 20, 800, 400},
       {-0.5, 1, -0.5, -0.5, -0.5, 1, -0.5, 1, -0.5, 1, -0.5}},
      {"elu",
       [](const Var<T>& x) { return elu(x); },
       {nan, inf, -1, 0, 0, 1, -0.6321205588285577, 40, -1, 800, -1},
       {nan, 1, 0, 1, 1, 1, 0.36787944117144233, 1, 4.248354255291589e-18, 1, 0}},
      {"elu 2",
       [](const Var<T>& x) { return elu(x, T(2)); },
       {nan, inf, -2, 0, 0, 1, -1.2642411176571153, 40, -2, 800, -2},
       {nan, 1, 0, 2, 2, 1, 0.7357588823428847, 1, 8.496708510583178e-18, 1, 0}},
      {"gelu",
       [](const Var<T>& x) { return gelu(x); },
       {nan, inf, nan, 0, 0, 0.841344746068543, -0.15865525393145702, 40, 0, 800, 0},
       {nan, nan, nan, 0.5, 0.5, 1.0833154705876864, -0.08331547058768635, 1, 0, 1, 0}},
      {"gelu tanh",
       [](const Var<T>& x) { return gelu(x, GeluApproximation::tanh); },
       {nan, inf, nan, 0, 0, 0.8411919906082768, -0.1588080093917233, 40, 0, 800, 0},
       {nan, nan, nan, 0.5, 0.5, 1.0829640838457826, -0.08296408384578258, 1, 0, 1, 0}},
      {"silu",
       [](const Var<T>& x) { return silu(x); },
       {nan, inf, nan, 0, 0, 0.7310585786300049, -0.2689414213699951, 40, -1.6993417021166355e-16,
        800, 0},
       {nan, nan, nan, 0.5, 0.5, 0.9276705118714869, 0.07232948812851325, 1,
        -1.6568581595637197e-16, 1, 0}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    check_same(c.op(Var<T>(special_tensor<T>())).value(), values<T>(c.y));
    const Tensor<T> g = grad_of_at_special<T>(c.op, T(1));
    check_same(g, values<T>(c.grad));
    // PyTorch multiplies: NaN everywhere for a NaN upstream gradient, inf·f'(x) for an infinite
    // one (NaN where f'(x) is 0).
    check_same(grad_of_at_special<T>(c.op, nan_v<T>), Tensor<T>::full({special.size()}, nan_v<T>));
    Tensor<T> times_inf(g.shape());
    for (std::size_t k = 0; k < g.numel(); ++k) times_inf[k] = inf_v<T> * g[k];
    check_same(grad_of_at_special<T>(c.op, inf_v<T>), times_inf);
  }
}

TEST_CASE_TEMPLATE(
    "l1, smooth_l1, huber, kl_div: values and both gradients at 0, ±inf and NaN as PyTorch's", T,
    float, double) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> x = {nan, 1, 0.5, 2, inf, 3, inf, 0, -1.5};
  const std::vector<double> t = {0, 1, 0, 0, 1, nan, inf, 1.5, -1};
  const std::vector<double> kx = {-1, -2, nan, -0.5, -inf, 0.3, -1, -1, -1, 2, -inf, -1};
  const std::vector<double> kt = {0, 0.5, 0.5, nan, 0.5, 0.2, -0.3, inf, 1, 0, 0, -inf};
  struct Case {
    const char* name;
    Fn<T> f;
    const std::vector<double>&input, &target;
    std::vector<double> y, gx, gt;  // PyTorch 1.13's (reduction none, upstream 1)
  };
  const Reduction none = Reduction::none;
  const std::vector<Case> cases = {
      {"l1",
       [&](const auto& in) { return l1_loss(in[0], in[1], none); },
       x,
       t,
       {nan, 0, 0.5, 2, inf, nan, nan, 1.5, 0.5},
       {0, 0, 1, 1, 1, 0, 0, -1, -1},
       {0, 0, -1, -1, -1, 0, 0, 1, 1}},
      {"smooth_l1",
       [&](const auto& in) { return smooth_l1_loss(in[0], in[1], none); },
       x,
       t,
       {nan, 0, 0.125, 1.5, inf, nan, nan, 1, 0.125},
       {nan, 0, 0.5, 1, 1, nan, nan, -1, -0.5},
       {nan, 0, -0.5, -1, -1, nan, nan, 1, 0.5}},
      {"smooth_l1 0.5",
       [&](const auto& in) { return smooth_l1_loss(in[0], in[1], none, 0.5); },
       x,
       t,
       {nan, 0, 0.25, 1.75, inf, nan, nan, 1.25, 0.25},
       {nan, 0, 1, 1, 1, nan, nan, -1, -1},
       {nan, 0, -1, -1, -1, nan, nan, 1, 1}},
      {"smooth_l1 0 (both gradients -1 at d = 0)",
       [&](const auto& in) { return smooth_l1_loss(in[0], in[1], none, 0.0); },
       x,
       t,
       {nan, 0, 0.5, 2, inf, nan, nan, 1.5, 0.5},
       {nan, -1, 1, 1, 1, nan, nan, -1, -1},
       {nan, -1, -1, -1, -1, nan, nan, 1, 1}},
      {"huber 0.5",
       [&](const auto& in) { return huber_loss(in[0], in[1], none, 0.5); },
       x,
       t,
       {nan, 0, 0.125, 0.875, inf, nan, nan, 0.625, 0.125},
       {nan, 0, 0.5, 0.5, 0.5, nan, nan, -0.5, -0.5},
       {nan, 0, -0.5, -0.5, -0.5, nan, nan, 0.5, 0.5}},
      {"kl_div (target 0: value 0, target gradient NaN)",
       [&](const auto& in) { return kl_div(in[0], in[1], none); },
       kx,
       kt,
       {0, 0.6534264097200273, nan, nan, inf, -0.3818875824868201, nan, inf, 1, 0, nan, nan},
       {0, -0.5, -0.5, nan, -0.5, -0.2, 0.3, -inf, -1, 0, 0, inf},
       {nan, 2.3068528194400546, nan, nan, inf, -0.9094379124341003, nan, nan, 2, nan, nan, nan}},
      {"kl_div log_target",
       [&](const auto& in) { return kl_div(in[0], in[1], none, true); },
       kx,
       kt,
       {1, 4.121803176750321, nan, nan, inf, -0.12214027581601695, 0.5185727544772025, inf,
        5.43656365691809, -2, inf, nan},
       {-1, -1.6487212707001282, -1.6487212707001282, nan, -1.6487212707001282, -1.2214027581601699,
        -0.7408182206817179, -inf, -2.718281828459045, -1, -1, 0},
       {2, 5.770524447450449, nan, nan, inf, 1.0992624823441528, 1.2593909751589205, inf,
        8.154845485377136, -1, inf, nan}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Outcome<T> r = run<T>(c.f, {values<T>(c.input), values<T>(c.target)});
    check_same(r.y, values<T>(c.y));
    check_same(r.grads[0], values<T>(c.gx));
    check_same(r.grads[1], values<T>(c.gt));
  }
}
