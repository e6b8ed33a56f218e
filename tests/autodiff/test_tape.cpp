// The tape's contract: accumulation, release, depth, no-grad mode and error messages.
#include <thread>

#include "helpers.hpp"

using namespace tapegrad;
using test::error_of;

TEST_CASE_TEMPLATE("tape: a value used on several paths gets the sum of all contributions", T,
                   float, double) {
  Var<T> a = Var<T>::parameter(Tensor<T>({2}, {T(1.5), T(-2)}));
  Var<T> s = a + a;
  Var<T> c = s * s;  // c = 4a², dc/da = 8a
  sum(c).backward();
  CHECK(a.grad()[0] == doctest::Approx(12.0));
  CHECK(a.grad()[1] == doctest::Approx(-16.0));

  // A diamond: b feeds two branches that meet again.
  a.zero_grad();
  Var<T> b = exp(a);
  Var<T> d = sum(b * T(3) + sigmoid(b));
  d.backward();
  for (std::size_t k = 0; k < 2; ++k) {
    const double e = std::exp(static_cast<double>(a.value()[k]));
    const double s = 1 / (1 + std::exp(-e));
    CHECK(a.grad()[k] == doctest::Approx(e * (3 + s * (1 - s))).epsilon(1e-5));
  }
}

TEST_CASE("tape: gradients accumulate across backward calls until zeroed") {
  Var<double> w = Var<double>::parameter(Tensor<double>({3}, {1, 2, 3}));
  for (int pass = 1; pass <= 2; ++pass) {
    sum(w * w).backward();  // d/dw Σ w² = 2w per pass
    for (std::size_t k = 0; k < 3; ++k) CHECK(w.grad()[k] == doctest::Approx(2.0 * pass * (k + 1)));
  }
  w.zero_grad();
  for (double g : w.grad()) CHECK(g == 0.0);
  sum(w).backward();
  for (double g : w.grad()) CHECK(g == 1.0);
}

// zero_grad writes no zeros: the next pass overwrites the buffer, and grad() read before then
// fills it. Each case starts from a buffer holding a stale 2g, which must never show.
TEST_CASE("tape: after zero_grad the next pass writes the gradient afresh, whatever writes it") {
  Var<double> w = Var<double>::parameter(Tensor<double>({2, 2}, {1, 2, 3, 4}));
  Var<double> x = Var<double>::parameter(Tensor<double>({2, 2}, {0.5, -1, 2, 0.25}));
  Var<double> unused = Var<double>::parameter(Tensor<double>({3}, {1, 1, 1}));
  auto stale = [&] {
    for (int pass = 0; pass < 2; ++pass) (sum(matmul(x, w)) + sum(unused)).backward();
    w.zero_grad();
    x.zero_grad();
    unused.zero_grad();
  };
  // matmul: gemm into the slot with beta 0; `unused` is not reached this time.
  stale();
  sum(matmul(x, w)).backward();  // dW = xᵀ·1, dx = 1·Wᵀ
  CHECK(w.grad()[0] == doctest::Approx(2.5));
  CHECK(w.grad()[1] == doctest::Approx(2.5));
  CHECK(w.grad()[2] == doctest::Approx(-0.75));
  CHECK(x.grad()[0] == doctest::Approx(3.0));
  CHECK(x.grad()[3] == doctest::Approx(7.0));
  for (double g : unused.grad()) CHECK(g == 0.0);  // not reached: read as zeros
  // The same leaf twice in one op (x ⊙ x): both writes land on zeros.
  stale();
  sum(x * x).backward();
  for (std::size_t k = 0; k < 4; ++k) CHECK(x.grad()[k] == doctest::Approx(2 * x.value()[k]));
  // A leaf as the root of backward, and grad_var.
  stale();
  x.backward(Tensor<double>({2, 2}, {1, 2, 3, 4}));
  for (std::size_t k = 0; k < 4; ++k) CHECK(x.grad_var().value()[k] == double(k + 1));
  stale();
  CHECK(w.grad_var().value()[0] == 0.0);
}

TEST_CASE("tape: retain_graph allows a second pass over the same tape") {
  Var<double> x = Var<double>::parameter(Tensor<double>::scalar(2.0));
  Var<double> y = x * x * x;  // 3x² = 12
  y.backward(true);
  CHECK(Tape<double>::current().size() > 0);
  y.backward();
  CHECK(x.grad().item() == doctest::Approx(24.0));
  CHECK(Tape<double>::current().size() == 0);
}

TEST_CASE("tape: a 100 000-op chain runs backward without recursion") {
  Var<double> x = Var<double>::parameter(Tensor<double>::scalar(1.0));
  Var<double> y = x;
  for (int i = 0; i < 100000; ++i) y = y * 1.00001 + 0.0;
  CHECK(Tape<double>::current().size() == 200000);
  y.backward();
  CHECK(x.grad().item() == doctest::Approx(std::pow(1.00001, 100000)).epsilon(1e-9));
  CHECK(Tape<double>::current().size() == 0);
}

TEST_CASE("tape: training steps keep the tape and memory flat") {
  using T = float;
  Var<T> w1 = Var<T>::parameter(test::random_tensor<T>({8, 4}, 1));
  Var<T> b1 = Var<T>::parameter(Tensor<T>::zeros({8}));
  Var<T> w2 = Var<T>::parameter(test::random_tensor<T>({1, 8}, 2));
  const Tensor<T> x = test::random_tensor<T>({16, 4}, 3);
  const Tensor<T> target = test::random_tensor<T>({16, 1}, 4);
  std::vector<Var<T>*> params = {&w1, &b1, &w2};
  auto step = [&] {
    Var<T> h = relu(linear(Var<T>(x), w1, b1));
    Var<T> err = linear(h, w2) - Var<T>(target);
    Var<T> loss = mean(err * err);
    loss.backward();
    for (Var<T>* p : params) {
      for (std::size_t k = 0; k < p->numel(); ++k) p->value()[k] -= T(0.01) * p->grad()[k];
      p->zero_grad();
    }
    return loss.item();
  };
  const float first = step();
  step();  // warm-up: gradient buffers and pooled blocks now exist
  const memory::Stats before = memory::stats();
  float last = 0;
  for (int i = 0; i < 10000; ++i) {
    last = step();
    REQUIRE(Tape<T>::current().size() == 0);
  }
  const memory::Stats after = memory::stats();
  CHECK(after.live_blocks == before.live_blocks);
  CHECK(after.live_bytes == before.live_bytes);
#ifndef TAPEGRAD_NO_POOL
  CHECK(after.system_allocations == before.system_allocations);  // every buffer was reused
#endif
  CHECK(last < first);
}

TEST_CASE("tape: no-grad mode and plain values record nothing") {
  Var<double> w = Var<double>::parameter(Tensor<double>({2}, {1, 2}));
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_enabled());
    Var<double> y = sum(exp(w) * w);
    CHECK_FALSE(y.requires_grad());
    CHECK(Tape<double>::current().size() == 0);
  }
  CHECK(grad_enabled());
  Var<double> c(Tensor<double>({2}, {3, 4}));  // a constant
  Var<double> z = sum(c * c);
  CHECK_FALSE(z.requires_grad());
  CHECK(Tape<double>::current().size() == 0);
  CHECK(z.item() == 25.0);
  CHECK(error_of([&] { z.backward(); }).find("does not require a gradient") != std::string::npos);
}

TEST_CASE("tape: backward after release, on a non-scalar, or with a wrong seed explains itself") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2}, {1, 2}));
  Var<double> y = x * x;
  CHECK(error_of([&] { y.backward(); }).find("[2]") != std::string::npos);
  CHECK(error_of([&] {
          y.backward(Tensor<double>::ones({3}));
        }).find("upstream gradient of shape [3] for an output of shape [2]") != std::string::npos);
  y.backward(Tensor<double>::ones({2}));
  CHECK(x.grad()[1] == 4.0);
  CHECK(error_of([&] { y.backward(Tensor<double>::ones({2})); }).find("already released") !=
        std::string::npos);
  CHECK_FALSE(y.requires_grad());  // a constant now
}

TEST_CASE("tape: retain_grad keeps an intermediate's gradient") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2}, {1, -1}));
  Var<double> h = x * 3.0;
  h.retain_grad();
  Var<double> other = x * 2.0;  // not retained
  sum(h * h + other).backward();
  test::check_close(h.grad(), Tensor<double>({2}, {6, -6}));
  CHECK_FALSE(other.has_grad());
}

TEST_CASE("tape: shape errors name the op and both shapes") {
  Var<float> a(Tensor<float>::zeros({2, 3})), b(Tensor<float>::zeros({4}));
  const std::string add_msg = error_of([&] { add(a, b); });
  CHECK(add_msg.find("add") != std::string::npos);
  CHECK(add_msg.find("[2, 3]") != std::string::npos);
  CHECK(add_msg.find("[4]") != std::string::npos);
  const std::string mm = error_of([&] { matmul(a, Var<float>(Tensor<float>::zeros({2, 3}))); });
  CHECK(mm.find("matmul") != std::string::npos);
  CHECK(mm.find("[2, 3]") != std::string::npos);
  const std::string lin = error_of([&] { linear(a, Var<float>(Tensor<float>::zeros({5, 4}))); });
  CHECK(lin.find("linear") != std::string::npos);
  CHECK(lin.find("[2, 3]") != std::string::npos);
  CHECK(lin.find("[5, 4]") != std::string::npos);
  const std::string rs = error_of([&] { reshape(a, Shape{4, 2}); });
  CHECK(rs.find("reshape") != std::string::npos);
  CHECK(rs.find("[4, 2]") != std::string::npos);
  CHECK(error_of([&] { sum(a, {2}); }).find("sum: axis 2 is out of range for shape [2, 3]") !=
        std::string::npos);
}

TEST_CASE("tape: a backward rule that returns a wrongly shaped gradient is named") {
  Var<double> x = Var<double>::parameter(Tensor<double>::zeros({2, 2}));
  Var<double> y = make_op<double>(
      "bad_op", {x}, Tensor<double>::zeros({2, 2}),
      [](const Tensor<double>&, Gradients<double>& g) { g.add(0, Tensor<double>::zeros({4})); });
  const std::string msg = error_of([&] { sum(y).backward(); });
  CHECK(msg.find("bad_op") != std::string::npos);
  CHECK(msg.find("[4]") != std::string::npos);
  CHECK(msg.find("[2, 2]") != std::string::npos);
  CHECK(Tape<double>::current().size() == 0);
}

TEST_CASE("tape: each thread has its own tape; a finished thread leaves no memory behind") {
  const memory::Stats before = memory::stats();
  double grad_in_thread = 0;
  std::thread worker([&] {
    Var<double> x = Var<double>::parameter(Tensor<double>({2}, {3, 4}));
    Var<double> y = sum(x * x);  // recorded on the worker's tape only
    CHECK(Tape<double>::current().size() == 2);
    y.backward();
    grad_in_thread = x.grad()[1];
    Var<double> pending = x * 2.0;  // left on the tape when the thread ends
  });
  worker.join();
  CHECK(grad_in_thread == 8.0);
  CHECK(Tape<double>::current().size() == 0);  // this thread's tape saw nothing
  const memory::Stats after = memory::stats();
  CHECK(after.live_blocks == before.live_blocks);
  CHECK(after.live_bytes == before.live_bytes);
}

TEST_CASE("tape: graphs dropped without backward are released, so memory stays flat") {
  using T = float;
  Var<T> w = Var<T>::parameter(test::random_tensor<T>({32, 16}, 1));
  Var<T> b = Var<T>::parameter(Tensor<T>::zeros({32}));
  const Tensor<T> x = test::random_tensor<T>({64, 16}, 2);
  // A validation pass that forgets NoGradGuard: its loss is read, then dropped.
  auto forgotten_pass = [&] { return mean(relu(linear(Var<T>(x), w, b))).item(); };
  for (int i = 0; i < 1000; ++i) forgotten_pass();
  std::size_t most_bytes = 0, most_records = 0;
  auto observe = [&] {
    most_bytes = std::max(most_bytes, memory::stats().live_bytes);
    most_records = std::max(most_records, Tape<T>::current().size());
  };
  for (int i = 0; i < 1000; ++i) {
    forgotten_pass();
    observe();
  }
  const std::size_t bound_bytes = most_bytes, bound_records = most_records;
  for (int i = 0; i < 10000; ++i) {
    forgotten_pass();
    observe();
  }
  CHECK(most_bytes == bound_bytes);
  CHECK(most_records == bound_records);
  CHECK(most_records <= Tape<T>::min_records_before_release * 2);
}

TEST_CASE("tape: a graph still held survives the release of dropped ones and backpropagates") {
  Var<double> w = Var<double>::parameter(Tensor<double>({3}, {1, 2, 3}));
  Var<double> kept = sum(w * w * 0.5);                // gradient w
  Var<double> also_kept = w * 3.0;                    // an intermediate the user holds
  for (int i = 0; i < 5000; ++i) sum(exp(w)).item();  // dropped graphs, released on the way
  CHECK(Tape<double>::current().size() < 3 * Tape<double>::min_records_before_release);
  (kept + sum(also_kept)).backward();
  test::check_close(w.grad(), Tensor<double>({3}, {4, 5, 6}));
}

TEST_CASE("tape: ops inside a backward rule record nothing, as in PyTorch without create_graph") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2}, {1, 2}));
  Var<double> scale = Var<double>::parameter(Tensor<double>({2}, {3, 4}));
  std::size_t tape_size_in_rule = 0;
  bool grad_mode_in_rule = true;
  // Many ops inside the rule: enough records to reallocate the tape's storage were they kept.
  Var<double> y = make_op<double>("scaled", {x}, x.value(),
                                  [&](const Tensor<double>& gy, Gradients<double>& g) {
                                    Var<double> factor = scale;
                                    for (int i = 0; i < 1000; ++i) factor = factor * 1.0;
                                    grad_mode_in_rule = grad_enabled();
                                    tape_size_in_rule = Tape<double>::current().size();
                                    const Tensor<double>& f = factor.value();
                                    g.accumulate(0, [&](std::size_t k) { return gy[k] * f[k]; });
                                  });
  Var<double> loss = sum(y);
  const std::size_t before = Tape<double>::current().size();
  loss.backward();
  CHECK_FALSE(grad_mode_in_rule);
  CHECK(tape_size_in_rule == before);
  test::check_close(x.grad(), Tensor<double>({2}, {3, 4}));
  CHECK_FALSE(scale.has_grad());
  CHECK(grad_enabled());
  CHECK(Tape<double>::current().size() == 0);
}

TEST_CASE("tape: backward called from inside a backward rule is refused, and the tape recovers") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2}, {1, 2}));
  Var<double> other = sum(x * 2.0);
  Var<double> y = make_op<double>("nested", {x}, x.value(),
                                  [&](const Tensor<double>& gy, Gradients<double>& g) {
                                    other.backward();
                                    g.add(0, gy);
                                  });
  const std::string msg = error_of([&] { sum(y).backward(); });
  CHECK(msg.find("inside a backward rule") != std::string::npos);
  CHECK(msg.find("nested") != std::string::npos);
  CHECK(Tape<double>::current().size() == 0);
  sum(x * x).backward();  // the tape works again
  CHECK(x.grad()[1] == 4.0);
}

TEST_CASE("tape: a gradient slot writes a fresh buffer and adds to earlier contributions") {
  // A custom op that writes each input's gradient through a different form of the slot; x feeds
  // it three times and also feeds x * 3, so the slot is fresh for one contribution and holds
  // earlier ones for the others.
  auto thrice = [](const Var<double>& a, const Var<double>& b, const Var<double>& c) {
    return make_op<double>(
        "thrice", {a, b, c}, a.value(), [](const Tensor<double>& gy, Gradients<double>& g) {
          const std::size_t n = gy.numel();
          const GradSlot<double> by_put = g.slot(0);
          for (std::size_t k = 0; k < n; ++k) by_put.put(k, gy[k]);
          double* by_adding = g.slot(1).zeroed();
          for (std::size_t k = 0; k < n; ++k) by_adding[k] += gy[k];
          const GradSlot<double> by_beta = g.slot(2);  // as BLAS: β = 0 reads no C
          double* c = by_beta.data();
          for (std::size_t k = 0; k < n; ++k) c[k] = by_beta.beta() == 0 ? gy[k] : gy[k] + c[k];
        });
  };
  Var<double> x = Var<double>::parameter(Tensor<double>({3}, {1, 2, 3}));
  sum(thrice(x, x, x) + x * 3.0).backward();
  test::check_close(x.grad(), Tensor<double>({3}, {6, 6, 6}));
  sum(thrice(x, x, x)).backward();  // a second pass adds to the leaf's gradient
  test::check_close(x.grad(), Tensor<double>({3}, {9, 9, 9}));
  Var<double> fresh = Var<double>::parameter(Tensor<double>({3}, {1, 2, 3}));
  Var<double> y = Var<double>::parameter(Tensor<double>({3}, {0, 0, 0}));
  sum(thrice(y, y, fresh)).backward();  // fresh's buffer is new: β = 0 ignores its contents
  test::check_close(fresh.grad(), Tensor<double>({3}, {1, 1, 1}));
}

TEST_CASE("tape: accumulate splits a large gradient among threads with identical results") {
  const Tensor<float> xv = test::random_tensor<float>({3, 50000}, 5);
  auto gradient = [&](std::size_t threads) {
    test::ThreadCount count(threads);
    Var<float> x = Var<float>::parameter(xv);
    sum(tanh(x) * x).backward();  // x reaches the product twice: fresh slot, then added to
    return x.grad();
  };
  const Tensor<float> one = gradient(1);
  CHECK(test::bit_identical(one, gradient(2)));
  for (std::size_t k = 0; k < xv.numel(); k += 997) {
    const double v = xv[k], t = std::tanh(v);
    CHECK(one[k] == doctest::Approx(t + v * (1 - t * t)).epsilon(1e-5));
  }
}
