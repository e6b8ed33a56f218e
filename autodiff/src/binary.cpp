#include "tapegrad/autodiff/binary.hpp"

#include "strided.hpp"
#include "tapegrad/autodiff/elementwise.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/reduce.hpp"

namespace tapegrad {
namespace {

enum class BinaryKind { add, sub, mul, div };

template <BinaryKind K, class T>
T apply(T a, T b) {
  if constexpr (K == BinaryKind::add) return a + b;
  if constexpr (K == BinaryKind::sub) return a - b;
  if constexpr (K == BinaryKind::mul) return a * b;
  if constexpr (K == BinaryKind::div) return a / b;
}

// The gradient of input `which` (0 = a, 1 = b) at one output element, before summing back over
// broadcast axes:  add: gy, gy;  sub: gy, -gy;  mul: gy·b, gy·a;  div: gy/b, -gy·y/b.
template <BinaryKind K, class T>
T partial(int which, T gy, T a, T b, T y) {
  if constexpr (K == BinaryKind::add) return gy;
  if constexpr (K == BinaryKind::sub) return which == 0 ? gy : -gy;
  if constexpr (K == BinaryKind::mul) return which == 0 ? gy * b : gy * a;
  if constexpr (K == BinaryKind::div) return which == 0 ? gy / b : -gy * y / b;
}

// Adds input `which`'s gradient into its slot: directly when shapes match, else through an
// output-shaped buffer summed back over the broadcast axes.
template <BinaryKind K, class T>
void backward_input(int which, const Tensor<T>& gy, Gradients<T>& g) {
  const Tensor<T>& a = g.input(0);
  const Tensor<T>& b = g.input(1);
  const Tensor<T>& y = g.output();
  const Shape& in_shape = g.input(which).shape();
  const detail::Strides sa = detail::broadcast_strides(a.shape(), y.shape());
  const detail::Strides sb = detail::broadcast_strides(b.shape(), y.shape());
  const T *pa = a.data(), *pb = b.data(), *py = y.data(), *pg = gy.data();
  if (a.shape() == b.shape()) {
    g.accumulate(which,
                 [&](std::size_t k) { return partial<K>(which, pg[k], pa[k], pb[k], py[k]); });
    return;
  }
  if (in_shape == y.shape()) {  // this input was not broadcast: write its gradient directly
    const GradSlot<T> slot = g.slot(which);
    detail::for_each_row(y.shape(), sa, sb,
                         [&](std::size_t k, std::size_t ia, std::size_t ib, std::size_t n,
                             std::size_t step_a, std::size_t step_b) {
                           for (std::size_t j = 0; j < n; ++j)
                             slot.put(k + j, partial<K>(which, pg[k + j], pa[ia + j * step_a],
                                                        pb[ib + j * step_b], py[k + j]));
                         });
    return;
  }
  Tensor<T> full(y.shape());
  T* pf = full.data();
  detail::for_each_row(y.shape(), sa, sb,
                       [&](std::size_t k, std::size_t ia, std::size_t ib, std::size_t n,
                           std::size_t step_a, std::size_t step_b) {
                         for (std::size_t j = 0; j < n; ++j)
                           pf[k + j] = partial<K>(which, pg[k + j], pa[ia + j * step_a],
                                                  pb[ib + j * step_b], py[k + j]);
                       });
  detail::sum_into(pf, y.shape(), g.slot(which).zeroed(), in_shape);
}

template <BinaryKind K, class T>
Var<T> binary_op(const char* name, const Var<T>& a, const Var<T>& b) {
  const Tensor<T>& av = a.value();
  const Tensor<T>& bv = b.value();
  const Shape out_shape = detail::broadcast_shapes(name, av.shape(), bv.shape());
  Tensor<T> y(out_shape);
  const T *pa = av.data(), *pb = bv.data();
  T* py = y.data();
  if (av.shape() == bv.shape()) {
    for (std::size_t k = 0, n = y.numel(); k < n; ++k) py[k] = apply<K>(pa[k], pb[k]);
  } else {
    detail::for_each_row(out_shape, detail::broadcast_strides(av.shape(), out_shape),
                         detail::broadcast_strides(bv.shape(), out_shape),
                         [&](std::size_t k, std::size_t ia, std::size_t ib, std::size_t n,
                             std::size_t step_a, std::size_t step_b) {
                           for (std::size_t j = 0; j < n; ++j)
                             py[k + j] = apply<K>(pa[ia + j * step_a], pb[ib + j * step_b]);
                         });
  }
  return make_op<T>(
      name, {a, b}, std::move(y),
      [](const Tensor<T>& gy, Gradients<T>& g) {
        for (int which = 0; which < 2; ++which)
          if (g.needed(which)) backward_input<K>(which, gy, g);
      },
      [](const Var<T>& gy, GraphGradients<T>& g) {
        const Var<T> a = g.input(0), b = g.input(1);
        if (g.needed(0)) {
          Var<T> ga = gy;
          if constexpr (K == BinaryKind::mul) ga = gy * b;
          if constexpr (K == BinaryKind::div) ga = gy / b;
          g.add(0, sum_to(ga, a.shape()));
        }
        if (g.needed(1)) {
          Var<T> gb = gy;
          if constexpr (K == BinaryKind::sub) gb = neg(gy);
          if constexpr (K == BinaryKind::mul) gb = gy * a;
          if constexpr (K == BinaryKind::div) gb = neg(gy * g.output() / b);
          g.add(1, sum_to(gb, b.shape()));
        }
      });
}

}  // namespace

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  return detail::broadcast_shapes(op, a, b);
}

template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
  return binary_op<BinaryKind::add>("add", a, b);
}
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
  return binary_op<BinaryKind::sub>("sub", a, b);
}
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
  return binary_op<BinaryKind::mul>("mul", a, b);
}
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
  return binary_op<BinaryKind::div>("div", a, b);
}

#define TAPEGRAD_INSTANTIATE(T)                      \
  template Var<T> add(const Var<T>&, const Var<T>&); \
  template Var<T> sub(const Var<T>&, const Var<T>&); \
  template Var<T> mul(const Var<T>&, const Var<T>&); \
  template Var<T> div(const Var<T>&, const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
