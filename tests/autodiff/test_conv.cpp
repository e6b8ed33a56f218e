// conv1d: worked examples and formulas, the fast path against the naive oracle,
// gradchecks over a table of cases; flip.
#include <cstring>

#include "autodiff/conv_reference.hpp"
#include "helpers.hpp"

using namespace tapegrad;
using test::check_gradients;

namespace {
Tensor<double> row(std::initializer_list<double> v) {
  return Tensor<double>(Shape{1, 1, v.size()}, v);
}
Tensor<double> conv_values(const Tensor<double>& x, const Tensor<double>& k, const Padding& p) {
  return conv1d(Var<double>(x), Var<double>(k), Var<double>(), 1, p).value();
}
}  // namespace

TEST_CASE("conv1d: a worked example: [1, 2, 3, 4] with kernel [2, 0, 1]") {
  const Tensor<double> x = row({1, 2, 3, 4}), k = row({2, 0, 1});
  // As a cross-correlation (what is often computed by hand while calling it convolution "with
  // kernel flipping"): full pads 2 zeros each side, same 1 each side.
  test::check_close(conv_values(x, k, "full"), row({1, 2, 5, 8, 6, 8}));
  test::check_close(conv_values(x, k, "same"), row({2, 5, 8, 6}));
  test::check_close(conv_values(x, k, "valid"), row({5, 8}));
  // The true convolution flips the kernel: [1, 0, 2].
  const Tensor<double> flipped = flip(Var<double>(k), -1).value();
  test::check_close(flipped, row({1, 0, 2}));
  test::check_close(conv_values(x, flipped, "full"), row({2, 4, 7, 10, 3, 4}));
}

TEST_CASE("conv1d: output lengths from the formula, including where hand arithmetic often slips") {
  struct Case {
    std::size_t length, kernel, stride;
    Padding padding;
    std::size_t dilation, expected;
  };
  // expected = ⌊(L + 2p − d(K − 1) − 1)/s⌋ + 1, computed here by hand.
  const Case cases[] = {
      {256, 8, 2, 0, 1, 125},  // (256 − 8)/2 + 1 = 125
      {25, 4, 1, 1, 1, 24},    // (25 + 2 − 4)/1 + 1 = 24
      {64, 8, 2, 3, 1, 32},    // (64 + 6 − 8)/2 + 1 = 32
      {64, 2, 2, 3, 7, 32},    // K_eff = 8: (64 + 6 − 8)/2 + 1 = 32
      {8, 2, 2, 0, 1, 4},      // (8 − 2)/2 + 1 = 4
      {8, 5, 1, 2, 2, 4},      // K_eff = 9, (8 + 4 − 9)/1 + 1 = 4
      {8, 3, 3, 1, 1, 3},      // (8 + 2 − 3)/3 + 1 = ⌊7/3⌋ + 1 = 3, not 4 (a common slip)
      {128, 8, 2, 3, 1, 64},   // 128 → 64 (then 2×2 pooling → 32)
      {10, 3, 1, "valid", 1, 8},
      {10, 4, 1, "same", 1, 10},  // even kernel: the extra zero goes right
      {10, 3, 1, "same", 2, 10},  // K_eff = 5
      {10, 3, 1, "full", 2, 14},  // L + K_eff − 1
      {7, 7, 1, 0, 1, 1},         // K = L
  };
  for (const Case& c : cases) {
    CAPTURE(c.length);
    CAPTURE(c.kernel);
    CHECK(conv1d_output_length(c.length, c.kernel, c.stride, c.padding, c.dilation) == c.expected);
  }
  CHECK(Padding("same").resolve(4, 1) == std::pair<std::size_t, std::size_t>{1, 2});
  CHECK(test::error_of([] {
          conv1d_output_length(3, 5, 1, 0, 1);
        }).find("shorter than the effective kernel") != std::string::npos);
  CHECK(test::error_of([] { conv1d_output_length(10, 3, 0, 0, 1); }).find("stride 0") !=
        std::string::npos);
  CHECK(test::error_of([] { conv1d_output_length(10, 3, 1, 0, 0); }).find("dilation 0") !=
        std::string::npos);
  CHECK(test::error_of([] {
          conv1d_output_length(10, 3, 2, "same", 1);
        }).find("\"same\" needs stride 1") != std::string::npos);
  CHECK(test::error_of([] { Padding("half"); }).find("unknown padding \"half\"") !=
        std::string::npos);
  Var<double> x(Tensor<double>::zeros({2, 3, 10})), w(Tensor<double>::zeros({4, 5, 3}));
  CHECK(test::error_of([&] {
          conv1d(x, w);
        }).find("[2, 3, 10] has 3 channels but weight [4, 5, 3]") != std::string::npos);
}

TEST_CASE("conv1d: gradcheck over strides, dilations, paddings, kernels, channels, batch, bias") {
  struct Case {
    std::size_t n, c_in, c_out, length, kernel, stride, dilation;
    Padding padding;
    bool bias;
  };
  const Case cases[] = {
      {2, 3, 4, 9, 3, 1, 1, 0, true},        {2, 3, 4, 9, 3, 2, 1, 1, true},
      {1, 2, 3, 10, 3, 1, 2, "same", false}, {2, 2, 2, 7, 2, 1, 1, "same", true},
      {1, 3, 2, 6, 3, 1, 2, "full", true},   {2, 2, 3, 8, 1, 1, 1, 0, false},
      {1, 2, 2, 5, 5, 1, 1, 0, true},        {2, 1, 1, 11, 3, 2, 2, 2, true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.kernel);
    CAPTURE(c.stride);
    CAPTURE(c.dilation);
    const Tensor<double> x = test::random_tensor({c.n, c.c_in, c.length}, 111);
    const Tensor<double> w = test::random_tensor({c.c_out, c.c_in, c.kernel}, 112);
    const Tensor<double> b = test::random_tensor({c.c_out}, 113);
    if (c.bias)
      check_gradients(
          [&](const auto& in) {
            return conv1d(in[0], in[1], in[2], c.stride, c.padding, c.dilation);
          },
          {x, w, b});
    else
      check_gradients(
          [&](const auto& in) {
            return conv1d(in[0], in[1], Var<double>(), c.stride, c.padding, c.dilation);
          },
          {x, w});
  }
}

TEST_CASE_TEMPLATE("conv1d: the fast path agrees with the naive oracle, forward and backward", T,
                   float, double) {
  std::uint64_t seed = 120;
  for (std::size_t stride : {1, 2, 3})
    for (std::size_t dilation : {1, 2})
      for (std::size_t pad : {0, 1, 3}) {
        const Tensor<T> x = test::random_tensor<T>({3, 4, 17}, ++seed);
        const Tensor<T> w = test::random_tensor<T>({5, 4, 3}, ++seed);
        const Tensor<T> b = test::random_tensor<T>({5}, ++seed);
        Var<T> xv = Var<T>::parameter(x), wv = Var<T>::parameter(w), bv = Var<T>::parameter(b);
        Var<T> y = conv1d(xv, wv, bv, stride, pad, dilation);
        const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
        test::check_close(y.value(), test::reference::conv1d(x, w, b, stride, pad, dilation), tol);
        const Tensor<T> gy = test::random_tensor<T>(y.shape(), ++seed);
        y.backward(gy);
        Tensor<T> gx, gw, gb;
        test::reference::conv1d_backward(x, w, gy, stride, pad, dilation, gx, gw, gb);
        test::check_close(xv.grad(), gx, tol);
        test::check_close(wv.grad(), gw, tol);
        test::check_close(bv.grad(), gb, tol);
      }
}

TEST_CASE(
    "conv1d: a valid 2-layer net, |a²| = d − k₁ − k₂ + 2, ∇h¹ = full conv of ∇a² "
    "with flip(w²)") {
  const std::size_t d = 12, k1 = 4, k2 = 3;
  Var<double> x(test::random_tensor({1, 1, d}, 130));
  Var<double> w1 = Var<double>::parameter(test::random_tensor({1, 1, k1}, 131));
  Var<double> w2 = Var<double>::parameter(test::random_tensor({1, 1, k2}, 132));
  Var<double> a1 = conv1d(x, w1);
  Var<double> h1 = relu(a1);
  h1.retain_grad();
  Var<double> a2 = conv1d(h1, w2);
  a2.retain_grad();
  CHECK(a2.shape()[2] == d - k1 - k2 + 2);
  sum(relu(a2) * Var<double>(test::random_tensor(a2.shape(), 133))).backward();
  // Computed the second way: the full (cross-correlation) of ∇a² with the flipped kernel.
  const Tensor<double> via_full =
      conv1d(Var<double>(a2.grad()), flip(w2, -1), Var<double>(), 1, Padding::full()).value();
  test::check_close(h1.grad(), via_full, 1e-12);
  // With full convolutions instead: |a²| = d + k₁ + k₂ − 2, not − 1 (a common slip): each
  // full convolution adds k − 1.
  Var<double> f2 = conv1d(conv1d(x, w1, Var<double>(), 1, "full"), w2, Var<double>(), 1, "full");
  CHECK(f2.shape()[2] == d + k1 + k2 - 2);
}

TEST_CASE("flip: values along any axis, and gradcheck") {
  const Tensor<double> x = test::random_tensor({2, 3, 4}, 140);
  const Tensor<double> f = flip(Var<double>(x), 1).value();
  CHECK(f.at({1, 0, 2}) == x.at({1, 2, 2}));
  test::check_close(flip(flip(Var<double>(x), -1), -1).value(), x);
  for (long axis : {0L, 1L, -1L})
    check_gradients([axis](const auto& in) { return flip(in[0], axis); }, {x});
}

namespace {
// The index of the first element where a and b differ in any bit, or a.numel() when none does.
template <class T>
std::size_t first_difference(const Tensor<T>& a, const Tensor<T>& b) {
  REQUIRE(a.shape() == b.shape());
  for (std::size_t k = 0; k < a.numel(); ++k)
    if (std::memcmp(&a[k], &b[k], sizeof(T)) != 0) return k;
  return a.numel();
}

}  // namespace

TEST_CASE_TEMPLATE(
    "conv1d: the direct kernels agree with the oracle on shapes spanning many blocks, and give "
    "bit-identical results on 1 and 2 threads",
    T, float, double) {
  struct Case {
    std::size_t n, c_in, c_out, length, kernel, dilation;
    Padding padding;
  };
  // Channel counts off the kernels' register blocks, several tiles per sample and samples per
  // tile, an even kernel with "same", padding beyond the kernel (the input gradient's packing
  // then starts inside the sample), K = L (the im2col path: most columns would be wasted). The
  // first two cases are large enough (> 4 MFLOP per pass) to be split between two threads: the
  // first has several slices of columns in the weight gradient, the second one slice whose
  // rows two threads share. The last two have output channels in whole register blocks and
  // samples of several tiles: the forward pass writes the tiles inside a sample straight into
  // the output and the others through its buffer (the first of them split between threads).
  // In the last three the forward's tiles are laid per sample: outputs of 256, every tile inside
  // a sample (split between threads, its ranges crossing samples); outputs of 120, each
  // sample's last tile partly past its outputs; 64 input channels, whose short ranges of tiles
  // start inside samples.
  const Case cases[] = {
      {8, 16, 21, 400, 5, 1, 2},    {2, 32, 70, 200, 3, 1, 1}, {9, 3, 6, 37, 4, 2, "same"},
      {2, 17, 5, 90, 3, 3, "full"}, {4, 6, 9, 41, 3, 1, 5},    {3, 8, 10, 23, 23, 1, 0},
      {1, 1, 1, 1, 1, 1, 0},        {4, 16, 32, 260, 5, 1, 2}, {3, 5, 8, 150, 3, 2, 1},
      {8, 16, 32, 256, 5, 1, 2},    {8, 8, 16, 120, 9, 1, 4},  {4, 64, 8, 320, 3, 1, 1}};
  std::uint64_t seed = 900;
  for (const Case& c : cases) {
    CAPTURE(c.length);
    CAPTURE(c.kernel);
    CAPTURE(c.padding.to_string());
    const Tensor<T> x = test::random_tensor<T>({c.n, c.c_in, c.length}, ++seed);
    const Tensor<T> w = test::random_tensor<T>({c.c_out, c.c_in, c.kernel}, ++seed);
    const Tensor<T> b = test::random_tensor<T>({c.c_out}, ++seed);
    Tensor<T> y[2], gx[2], gw[2], gb[2];
    for (std::size_t threads : {1, 2}) {
      test::ThreadCount count(threads);
      Var<T> xv = Var<T>::parameter(x), wv = Var<T>::parameter(w), bv = Var<T>::parameter(b);
      Var<T> out = conv1d(xv, wv, bv, 1, c.padding, c.dilation);
      const Tensor<T> gy = test::random_tensor<T>(out.shape(), 77);
      out.backward(gy);
      y[threads - 1] = out.value();
      gx[threads - 1] = xv.grad();
      gw[threads - 1] = wv.grad();
      gb[threads - 1] = bv.grad();
      if (threads == 1) {
        // Float: the weight gradient sums N·L_out = 3200 products of values in [−1, 1].
        const double tol = std::is_same_v<T, float> ? 2e-4 : 1e-12;
        test::check_close(y[0], test::reference::conv1d(x, w, b, 1, c.padding, c.dilation), tol);
        Tensor<T> rx, rw, rb;
        test::reference::conv1d_backward(x, w, gy, 1, c.padding, c.dilation, rx, rw, rb);
        test::check_close(gx[0], rx, tol);
        test::check_close(gw[0], rw, tol);
        test::check_close(gb[0], rb, tol);
      }
    }
    CHECK(first_difference(y[0], y[1]) == y[0].numel());
    CHECK(first_difference(gx[0], gx[1]) == gx[0].numel());
    CHECK(first_difference(gw[0], gw[1]) == gw[0].numel());
    CHECK(first_difference(gb[0], gb[1]) == gb[0].numel());
  }
}

TEST_CASE_TEMPLATE("conv1d: gradients accumulate into existing ones, on every path", T, float,
                   double) {
  // 3 input channels: every input gradient of the direct path goes through the kernels'
  // buffer. 8 (whole register blocks) and inputs of 200 and 192 (6 tiles and more a sample in
  // double): the kernels add most of it into x's gradient themselves, from the segments' tiles
  // and from tiles laid per sample. Inputs of 28 in float: the im2col path where products run
  // on oneDNN, whose col2im adds each piece of a row in a register.
  for (std::size_t c_in : {3, 8})
    for (std::size_t length : {28, 40, 200, 192}) {
      CAPTURE(c_in);
      CAPTURE(length);
      const Tensor<T> x = test::random_tensor<T>({2, c_in, length}, 5),
                      w = test::random_tensor<T>({4, c_in, 3}, 6),
                      b = test::random_tensor<T>({4}, 7);
      Var<T> xv = Var<T>::parameter(x), wv = Var<T>::parameter(w), bv = Var<T>::parameter(b);
      sum(conv1d(xv, wv, bv, 1, 1)).backward();
      const Tensor<T> gx = xv.grad(), gw = wv.grad(), gb = bv.grad();
      CHECK(gb[0] == doctest::Approx(2.0 * length));  // each bias reaches all N·L_out outputs
      sum(conv1d(xv, wv, bv, 1, 1)).backward();
      for (std::size_t k = 0; k < gx.numel(); ++k)
        CHECK(xv.grad()[k] == doctest::Approx(2 * gx[k]));
      for (std::size_t k = 0; k < gw.numel(); ++k)
        CHECK(wv.grad()[k] == doctest::Approx(2 * gw[k]));
      for (std::size_t k = 0; k < gb.numel(); ++k)
        CHECK(bv.grad()[k] == doctest::Approx(2 * gb[k]));
    }
}

TEST_CASE("conv1d: the bias gradient without the weight's, and the weight's without the bias's") {
  const Tensor<double> x = test::random_tensor({2, 3, 40}, 8),
                       w = test::random_tensor({4, 3, 3}, 9), b = test::random_tensor({4}, 10);
  for (bool weight_trained : {false, true}) {
    CAPTURE(weight_trained);
    Var<double> wv = weight_trained ? Var<double>::parameter(w) : Var<double>(w);
    Var<double> bv = weight_trained ? Var<double>(b) : Var<double>::parameter(b);
    Var<double> y = conv1d(Var<double>(x), wv, bv, 1, 1);
    const Tensor<double> gy = test::random_tensor(y.shape(), 11);
    y.backward(gy);
    Tensor<double> rx, rw, rb;
    test::reference::conv1d_backward(x, w, gy, 1, 1, 1, rx, rw, rb);
    if (weight_trained)
      test::check_close(wv.grad(), rw, 1e-12);
    else
      test::check_close(bv.grad(), rb, 1e-12);
  }
}
