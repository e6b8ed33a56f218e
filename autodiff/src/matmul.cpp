#include "tapegrad/autodiff/matmul.hpp"

#include <algorithm>
#include <string>

#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/reduce.hpp"

namespace tapegrad {
namespace {

Transpose flip(Transpose t) {
  return t == Transpose::yes ? Transpose::no : Transpose::yes;
}
bool is_t(Transpose t) {
  return t == Transpose::yes;
}

// An empty product (m, n or k is 0): no BLAS call, whose leading dimensions would be 0 where BLAS
// requires at least 1. The output is `out` (zeros, or the broadcast bias of linear: sums of no
// products), inputs 0 and 1 get zero gradients (every one a sum of no products, or empty), and a
// bias (input 2, linear) gets gb = Σ_n gy[n, :] over the `out`-shaped [N, out] gy.
template <class T>
Var<T> empty_product(const char* name, const Var<T>& a, const Var<T>& b, const Var<T>& bias,
                     Tensor<T> out) {
  auto backward = [](const Tensor<T>& gy, Gradients<T>& g) {
    for (std::size_t i = 0; i < 2; ++i)
      if (g.needed(i)) g.accumulate(i, [](std::size_t) { return T(0); });
    if (g.size() == 3 && g.needed(2)) {
      const GradSlot<T> s = g.slot(2);
      T* gb = s.zeroed();
      for (std::size_t k = 0; k < gy.numel(); ++k) gb[k % s.size()] += gy[k];
    }
  };
  auto graph = [](const Var<T>& gy, GraphGradients<T>& g) {
    for (std::size_t i = 0; i < 2; ++i)
      if (g.needed(i)) g.add(i, Var<T>(Tensor<T>::zeros(g.input(i).shape())));
    if (g.size() == 3 && g.needed(2)) g.add(2, sum(gy, {0}));
  };
  if (bias.defined())
    return make_op<T>(name, {a, b, bias}, std::move(out), std::move(backward), std::move(graph));
  return make_op<T>(name, {a, b}, std::move(out), std::move(backward), std::move(graph));
}

}  // namespace

template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b, Transpose ta, Transpose tb) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  require_matrix("matmul", "a", sa);
  require_matrix("matmul", "b", sb);
  const std::size_t m = is_t(ta) ? sa[1] : sa[0], k = is_t(ta) ? sa[0] : sa[1];
  const std::size_t kb = is_t(tb) ? sb[1] : sb[0], n = is_t(tb) ? sb[0] : sb[1];
  if (k != kb)
    throw ShapeError("matmul: inner dimensions differ: a " + sa.to_string() +
                     (is_t(ta) ? " (transposed)" : "") + " and b " + sb.to_string() +
                     (is_t(tb) ? " (transposed)" : ""));
  if (m == 0 || n == 0 || k == 0)
    return empty_product<T>("matmul", a, b, Var<T>(), Tensor<T>::zeros(Shape{m, n}));
  Tensor<T> c(Shape{m, n});
  blas::gemm(ta, tb, m, n, k, T(1), a.value().data(), b.value().data(), T(0), c.data());
  auto graph = [ta, tb](const Var<T>& gc, GraphGradients<T>& g) {
    const Var<T> a = g.input(0), b = g.input(1);
    if (g.needed(0))
      g.add(0,
            is_t(ta) ? matmul(b, gc, tb, Transpose::yes) : matmul(gc, b, Transpose::no, flip(tb)));
    if (g.needed(1))
      g.add(1,
            is_t(tb) ? matmul(gc, a, Transpose::yes, ta) : matmul(a, gc, flip(ta), Transpose::no));
  };
  auto raw = [=](const Tensor<T>& gc, Gradients<T>& g) {
    const T* pa = g.input(0).data();
    const T* pb = g.input(1).data();
    if (g.needed(0)) {
      const GradSlot<T> s = g.slot(0);
      if (!is_t(ta))  // gA[M,K] = gC · op(B)ᵀ
        blas::gemm(Transpose::no, flip(tb), m, k, n, T(1), gc.data(), pb, s.beta(), s.data());
      else  // A is [K,M]: gA = op(B) · gCᵀ
        blas::gemm(tb, Transpose::yes, k, m, n, T(1), pb, gc.data(), s.beta(), s.data());
    }
    if (g.needed(1)) {
      const GradSlot<T> s = g.slot(1);
      if (!is_t(tb))  // gB[K,N] = op(A)ᵀ · gC
        blas::gemm(flip(ta), Transpose::no, k, n, m, T(1), pa, gc.data(), s.beta(), s.data());
      else  // B is [N,K]: gB = gCᵀ · op(A)
        blas::gemm(Transpose::yes, ta, n, k, m, T(1), gc.data(), pa, s.beta(), s.data());
    }
  };
  return make_op<T>("matmul", {a, b}, std::move(c), std::move(raw), std::move(graph));
}

template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b) {
  const Shape& sx = x.shape();
  const Shape& sw = w.shape();
  require_matrix("linear", "input", sx);
  require_matrix("linear", "weight", sw);
  const std::size_t batch = sx[0], in = sx[1], out = sw[0];
  if (sw[1] != in)
    throw ShapeError("linear: input " + sx.to_string() + " has " + std::to_string(in) +
                     " features but weight " + sw.to_string() + " expects " +
                     std::to_string(sw[1]));
  const bool has_bias = b.defined();
  if (has_bias && (b.shape().rank() != 1 || b.shape()[0] != out))
    throw ShapeError("linear: bias of shape " + b.shape().to_string() + " for weight " +
                     sw.to_string() + " (expected [" + std::to_string(out) + "])");
  if (batch == 0 || out == 0 || in == 0) {  // y = b in every row (0 without a bias)
    Tensor<T> y = Tensor<T>::zeros(Shape{batch, out});
    for (std::size_t r = 0; r < batch && has_bias; ++r)
      std::copy_n(b.value().data(), out, y.data() + r * out);
    return empty_product<T>("linear", x, w, b, std::move(y));
  }
  Tensor<T> y(Shape{batch, out});
  T beta = T(0);
  if (has_bias) {
    const T* pb = b.value().data();
    for (std::size_t r = 0; r < batch; ++r) std::copy(pb, pb + out, y.data() + r * out);
    beta = T(1);
  }
  blas::gemm(Transpose::no, Transpose::yes, batch, out, in, T(1), x.value().data(),
             w.value().data(), beta, y.data());
  auto backward = [=](const Tensor<T>& gy, Gradients<T>& g) {
    if (g.needed(0)) {  // gx[N,in] = gy[N,out] · W[out,in]
      const GradSlot<T> s = g.slot(0);
      blas::gemm(Transpose::no, Transpose::no, batch, in, out, T(1), gy.data(), g.input(1).data(),
                 s.beta(), s.data());
    }
    if (g.needed(1)) {  // gW[out,in] = gyᵀ · x
      const GradSlot<T> s = g.slot(1);
      blas::gemm(Transpose::yes, Transpose::no, out, in, batch, T(1), gy.data(), g.input(0).data(),
                 s.beta(), s.data());
    }
    if (has_bias && g.needed(2)) {  // gb[out] = Σ_n gy[n, :]
      T* gb = g.slot(2).zeroed();
      const T* pg = gy.data();
      for (std::size_t r = 0; r < batch; ++r)
        for (std::size_t j = 0; j < out; ++j) gb[j] += pg[r * out + j];
    }
  };
  auto graph = [](const Var<T>& gy, GraphGradients<T>& g) {
    if (g.needed(0)) g.add(0, matmul(gy, g.input(1)));
    if (g.needed(1)) g.add(1, matmul(gy, g.input(0), Transpose::yes, Transpose::no));
    if (g.size() == 3 && g.needed(2)) g.add(2, sum(gy, {0}));
  };
  if (has_bias)
    return make_op<T>("linear", {x, w, b}, std::move(y), std::move(backward), std::move(graph));
  return make_op<T>("linear", {x, w}, std::move(y), std::move(backward), std::move(graph));
}

#define TAPEGRAD_INSTANTIATE(T)                                               \
  template Var<T> matmul(const Var<T>&, const Var<T>&, Transpose, Transpose); \
  template Var<T> linear(const Var<T>&, const Var<T>&, const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
