#include "conv_grad.hpp"

#include <algorithm>

#include "conv_direct.hpp"
#include "conv_im2col.hpp"
#include "tapegrad/autodiff/op.hpp"

namespace tapegrad::detail {
namespace {

// No samples or no input channels: no products at all (the kernels' blocking would divide by
// zero); every result below is then zero.
bool without_products(const ConvGeometry& g) {
  return g.n == 0 || g.c_in == 0;
}

// y = C(x, w), y [N, C_out, L_out].
template <class T>
Tensor<T> correlate(const ConvGeometry& g, const T* x, const T* w) {
  Tensor<T> y(Shape{g.n, g.c_out, g.l_out});
  if (without_products(g))
    std::fill(y.data(), y.data() + y.numel(), T(0));
  else if (direct_pays<T>(g.stride, g.l_out, g.dilation * (g.kernel - 1)))
    forward_direct(g, x, w, static_cast<const T*>(nullptr), y.data());
  else
    forward_im2col(g, x, w, static_cast<const T*>(nullptr), y.data());
  return y;
}

// gx (+)= Dx(gy, w), as conv1d's backward computes it.
template <class T>
void input_gradient(const ConvGeometry& g, const T* gy, const T* w, const GradSlot<T>& gx) {
  if (without_products(g))
    gx.put_range(0, gx.size(), [](std::size_t) { return T(0); });
  else if (direct_pays<T>(g.stride, g.length, g.dilation * (g.kernel - 1)))
    input_gradient_direct(g, gy, w, gx);
  else
    input_gradient_im2col(g, w, gemm_layout(g, gy), gx);
}

// gw (+)= Dw(gy, x), as conv1d's backward computes it.
template <class T>
void weight_gradient(const ConvGeometry& g, const T* x, const T* gy, const GradSlot<T>& gw) {
  if (without_products(g))
    gw.put_range(0, gw.size(), [](std::size_t) { return T(0); });
  else if (direct_pays<T>(g.stride, g.l_out, g.dilation * (g.kernel - 1)))
    weight_gradient_direct(g, x, gy, gw, static_cast<const GradSlot<T>*>(nullptr));
  else
    weight_gradient_im2col(g, x, gemm_layout(g, gy), gw);
}

// C(x, w) with gradient gy: gx = Dx(gy, w), gw = Dw(gy, x).
template <class T>
struct CorrelateRule {
  ConvGeometry g;
  void operator()(const Tensor<T>& gy, Gradients<T>& gr) {
    if (gr.needed(0)) input_gradient(g, gy.data(), gr.input(1).data(), gr.slot(0));
    if (gr.needed(1)) weight_gradient(g, gr.input(0).data(), gy.data(), gr.slot(1));
  }
  void operator()(const Var<T>& gy, GraphGradients<T>& gr) {
    if (gr.needed(0)) gr.add(0, conv1d_input_grad(gy, gr.input(1), g));
    if (gr.needed(1)) gr.add(1, conv1d_weight_grad(gy, gr.input(0), g));
  }
};

// Dx(gy, w) with gradient u: g_gy = C(u, w), gw = Dw(gy, u).
template <class T>
struct InputGradRule {
  ConvGeometry g;
  void operator()(const Tensor<T>& u, Gradients<T>& gr) {
    if (gr.needed(0)) gr.add(0, correlate(g, u.data(), gr.input(1).data()));
    if (gr.needed(1)) weight_gradient(g, u.data(), gr.input(0).data(), gr.slot(1));
  }
  void operator()(const Var<T>& u, GraphGradients<T>& gr) {
    if (gr.needed(0)) gr.add(0, conv1d_correlate(u, gr.input(1), g));
    if (gr.needed(1)) gr.add(1, conv1d_weight_grad(gr.input(0), u, g));
  }
};

// Dw(gy, x) with gradient v: g_gy = C(x, v), gx = Dx(gy, v).
template <class T>
struct WeightGradRule {
  ConvGeometry g;
  void operator()(const Tensor<T>& v, Gradients<T>& gr) {
    if (gr.needed(0)) gr.add(0, correlate(g, gr.input(1).data(), v.data()));
    if (gr.needed(1)) input_gradient(g, gr.input(0).data(), v.data(), gr.slot(1));
  }
  void operator()(const Var<T>& v, GraphGradients<T>& gr) {
    if (gr.needed(0)) gr.add(0, conv1d_correlate(gr.input(1), v, g));
    if (gr.needed(1)) gr.add(1, conv1d_input_grad(gr.input(0), v, g));
  }
};

}  // namespace

template <class T>
Var<T> conv1d_correlate(const Var<T>& x, const Var<T>& w, const ConvGeometry& g) {
  return make_op<T>("conv1d_correlate", {x, w}, correlate(g, x.value().data(), w.value().data()),
                    CorrelateRule<T>{g});
}

template <class T>
Var<T> conv1d_input_grad(const Var<T>& gy, const Var<T>& w, const ConvGeometry& g) {
  Tensor<T> gx(Shape{g.n, g.c_in, g.length});
  input_gradient(g, gy.value().data(), w.value().data(), GradSlot<T>(gx.data(), gx.numel(), false));
  return make_op<T>("conv1d_input_grad", {gy, w}, std::move(gx), InputGradRule<T>{g});
}

template <class T>
Var<T> conv1d_weight_grad(const Var<T>& gy, const Var<T>& x, const ConvGeometry& g) {
  Tensor<T> gw(Shape{g.c_out, g.c_in, g.kernel});
  weight_gradient(g, x.value().data(), gy.value().data(),
                  GradSlot<T>(gw.data(), gw.numel(), false));
  return make_op<T>("conv1d_weight_grad", {gy, x}, std::move(gw), WeightGradRule<T>{g});
}

#define TAPEGRAD_INSTANTIATE(T)                                                         \
  template Var<T> conv1d_correlate(const Var<T>&, const Var<T>&, const ConvGeometry&);  \
  template Var<T> conv1d_input_grad(const Var<T>&, const Var<T>&, const ConvGeometry&); \
  template Var<T> conv1d_weight_grad(const Var<T>&, const Var<T>&, const ConvGeometry&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad::detail
