// Branch-free float versions of exp, σ and tanh that the compiler vectorises (libm's are
// scalar calls). Accurate to a few ulp; double keeps libm, so gradchecks see libm's values.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace tapegrad::detail {

// e^x for float: x = n ln2 + r with |r| ≤ ln2/2, e^r from Cephes' degree-6 polynomial, 2^n
// applied in two halves so that every intermediate power stays a normal float. Exact limits:
// 0 below ln(min normal) (where the true value is denormal or below), +inf above ln(max).
inline float exp_vec(float x) {
  const float hi = 88.72283935546875f, lo = -87.33654022216797f;
  const float xc = x < lo ? lo : (x > hi ? hi : (x == x ? x : 0.0f));  // NaN: patched below
  const float n = std::floor(xc * 1.44269504088896341f + 0.5f);
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const std::int32_t ni = static_cast<std::int32_t>(n);
  const std::int32_t n1 = ni / 2, n2 = ni - n1;
  const std::uint32_t b1 = static_cast<std::uint32_t>(n1 + 127) << 23;
  const std::uint32_t b2 = static_cast<std::uint32_t>(n2 + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, 4);
  std::memcpy(&s2, &b2, 4);
  const float y = er * s1 * s2;
  return x != x ? x : (x < lo ? 0.0f : (x > hi ? HUGE_VALF : y));
}
inline double exp_vec(double x) {
  return std::exp(x);
}

// σ(x) = 1/(1 + e^-x) for x ≥ 0, e^x/(1 + e^x) for x < 0: both from e = e^-|x| ≤ 1.
template <class T>
T sigmoid_vec(T x) {
  const T e = exp_vec(-std::abs(x));
  const T inv = T(1) / (T(1) + e);
  return x >= 0 ? inv : e * inv;
}

// tanh x = sign(x)(1 − e)/(1 + e), e = e^-2|x|; below |x| = 0.125, where 1 − e would cancel,
// the odd Taylor series to x⁹ (error < 1e-12 there).
inline float tanh_vec(float x) {
  const float a = std::abs(x);
  const float e = exp_vec(-2.0f * a);
  const float big = (1.0f - e) / (1.0f + e);
  const float x2 = x * x;
  const float small =
      x * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315 + x2 * (62.0f / 2835)))));
  return a < 0.125f ? small : std::copysign(big, x);
}
inline double tanh_vec(double x) {
  return std::tanh(x);
}

}  // namespace tapegrad::detail
