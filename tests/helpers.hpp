// Shared test helpers: random tensors, closeness checks, and a gradcheck assertion.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tapegrad/tapegrad.hpp"

namespace test {

using tapegrad::Shape;
using tapegrad::Tensor;
using tapegrad::Var;

// Sets tapegrad's thread count for a scope, then restores it.
struct ThreadCount {
  explicit ThreadCount(std::size_t n) : saved(tapegrad::num_threads()) {
    tapegrad::set_num_threads(n);
  }
  ~ThreadCount() { tapegrad::set_num_threads(saved); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;
  std::size_t saved;
};

// Whether a and b hold the same values bit for bit (results must not depend on thread counts).
template <class T>
bool bit_identical(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(T)) == 0;
}

// Uniform values in [lo, hi), seeded so every run sees the same numbers.
template <class T = double>
Tensor<T> random_tensor(const Shape& shape, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  Tensor<T> t(shape);
  for (T& v : t) v = static_cast<T>(u(rng));
  return t;
}

// Values bounded away from zero (|v| in [0.2, 1]), for ops with a kink or pole at 0.
inline Tensor<double> away_from_zero(const Shape& shape, std::uint64_t seed) {
  Tensor<double> t = random_tensor(shape, seed, 0.2, 1.0);
  for (std::size_t k = 0; k < t.numel(); k += 2) t[k] = -t[k];
  return t;
}

// Elementwise |a − e| ≤ tol·(1 + max(|a|, |e|)); tol = 0 demands bit-for-bit equality.
template <class T>
void check_close(const Tensor<T>& actual, const Tensor<T>& expected, double tol = 1e-9) {
  REQUIRE(actual.shape() == expected.shape());
  for (std::size_t k = 0; k < actual.numel(); ++k) {
    INFO("element " << k);
    if (tol == 0)
      CHECK(actual[k] == expected[k]);
    else
      CHECK(static_cast<double>(actual[k]) ==
            doctest::Approx(static_cast<double>(expected[k])).epsilon(tol).scale(1.0));
  }
}

// Runs gradcheck and fails the test with its report when it does not pass.
inline void check_gradients(const tapegrad::GradcheckFunction& f,
                            const std::vector<Tensor<double>>& inputs,
                            const tapegrad::GradcheckOptions& options = {}) {
  const tapegrad::GradcheckResult r = tapegrad::gradcheck(f, inputs, options);
  INFO(r.report);
  CHECK(r.passed);
}

// Runs gradgradcheck (the second derivative, through the ops' graph rules) and fails the test
// with its report when it does not pass.
inline void check_second_derivatives(const tapegrad::GradcheckFunction& f,
                                     const std::vector<Tensor<double>>& inputs,
                                     const tapegrad::GradcheckOptions& options = {}) {
  const tapegrad::GradcheckResult r = tapegrad::gradgradcheck(f, inputs, {}, options);
  INFO(r.report);
  CHECK(r.passed);
}

// The whole contents of a file (empty if it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The message of the exception `f` throws (empty if it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace test
