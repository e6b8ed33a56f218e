#include "tapegrad/autodiff/elementwise.hpp"

#include <cmath>
#include <type_traits>

#include "parallel.hpp"
#include "select_grad.hpp"
#include "tapegrad/autodiff/binary.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "vector_math.hpp"

namespace tapegrad {
namespace {

using detail::factors;
using detail::scale_by_factors;

// gx for one element: gy · d(x, y), or d(gy, x, y) for a rule that selects rather than
// multiplies (so that a NaN or infinite gy where the derivative is 0 gives 0, as in PyTorch).
template <class T, class D>
T input_grad(const D& d, T gy, T x, T y) {
  if constexpr (std::is_invocable_v<const D&, T, T, T>)
    return d(gy, x, y);
  else
    return gy * d(x, y);
}

// An elementwise op y = f(x) whose derivative is expressed through x and y: gx = gy ⊙ d(x, y),
// with the same rule written with tapegrad's ops, graph(gy, x, y) -> gx, for create_graph.
// The backward closures capture only `d` and `graph` (usually empty): inputs and output come
// from the tape. Large tensors are split among threads (parallel_for_values), each taking the
// same part in the forward and the backward pass.
template <class T, class F, class D, class G>
Var<T> unary_op(const char* name, const Var<T>& x, F f, D d, G graph) {
  const Tensor<T>& xv = x.value();
  Tensor<T> y(xv.shape());
  const T* xs = xv.data();
  T* ys = y.data();
  detail::parallel_for_values(y.numel(), 2, [&](std::size_t begin, std::size_t end) {
    TAPEGRAD_VECTORIZE
    for (std::size_t k = begin; k < end; ++k) ys[k] = f(xs[k]);
  });
  return make_op<T>(
      name, {x}, std::move(y),
      [d](const Tensor<T>& gy, Gradients<T>& g) {
        const T* xs = g.input(0).data();
        const T* ys = g.output().data();
        const T* gs = gy.data();
        g.accumulate(0, [&](std::size_t k) { return input_grad(d, gs[k], xs[k], ys[k]); });
      },
      [graph](const Var<T>& gy, GraphGradients<T>& g) {
        g.add(0, graph(gy, g.input(0), g.output()));
      });
}

// Φ(x) = ½ erfc(−x/√2), the standard normal distribution function, as an op: dΦ/dx = φ(x) =
// e^(−x²/2)/√(2π), written with tapegrad's ops in the graph rule (any order).
template <class T>
Var<T> normal_pdf(const Var<T>& x) {
  return mul_scalar(exp(mul_scalar(x * x, Scalar<T>(-0.5))),
                    Scalar<T>(M_2_SQRTPI * M_SQRT1_2 * 0.5));
}
template <class T>
Var<T> normal_cdf(const Var<T>& x) {
  return unary_op(
      "normal_cdf", x, [](T v) { return T(0.5) * std::erfc(-v * T(M_SQRT1_2)); },
      [](T v, T) { return detail::exp_vec(T(-0.5) * v * v) * T(M_2_SQRTPI * M_SQRT1_2 * 0.5); },
      [](const Var<T>& gy, const Var<T>& x, const Var<T>&) { return gy * normal_pdf(x); });
}

// ln(1 + e^-|x|), the overflow-free tail shared by softplus and log-sigmoid.
template <class T>
T log1p_exp_neg_abs(T x) {
  return std::log1p(detail::exp_vec(-std::abs(x)));
}

}  // namespace

template <class T>
Var<T> neg(const Var<T>& x) {
  return unary_op(
      "neg", x, [](T v) { return -v; }, [](T, T) { return T(-1); },
      [](const Var<T>& gy, const Var<T>&, const Var<T>&) { return neg(gy); });
}

template <class T>
Var<T> exp(const Var<T>& x) {
  return unary_op(
      "exp", x, [](T v) { return detail::exp_vec(v); }, [](T, T y) { return y; },
      [](const Var<T>& gy, const Var<T>&, const Var<T>& y) { return gy * y; });
}

template <class T>
Var<T> log(const Var<T>& x) {
  return unary_op(
      "log", x, [](T v) { return std::log(v); }, [](T v, T) { return T(1) / v; },
      [](const Var<T>& gy, const Var<T>& x, const Var<T>&) { return gy / x; });
}

template <class T>
Var<T> sqrt(const Var<T>& x) {
  return unary_op(
      "sqrt", x, [](T v) { return std::sqrt(v); }, [](T, T y) { return T(0.5) / y; },
      [](const Var<T>& gy, const Var<T>&, const Var<T>& y) {
        return gy / mul_scalar(y, Scalar<T>(2));
      });
}

template <class T>
Var<T> abs(const Var<T>& x) {
  return unary_op(
      "abs", x, [](T v) { return std::abs(v); },
      [](T v, T) { return v > 0 ? T(1) : (v < 0 ? T(-1) : T(0)); },
      [](const Var<T>& gy, const Var<T>& x, const Var<T>& y) {
        return scale_by_factors(
            gy, factors(x, y, [](T v, T) { return v > 0 ? T(1) : (v < 0 ? T(-1) : T(0)); }));
      });
}

template <class T>
Var<T> sign(const Var<T>& x) {
  return unary_op(
      "sign", x, [](T v) { return v > 0 ? T(1) : (v < 0 ? T(-1) : T(0)); },
      [](T, T, T) { return T(0); },  // 0 even for a NaN gy, as PyTorch's zeros_like
      [](const Var<T>& gy, const Var<T>&, const Var<T>&) {
        return scale_by_factors(gy, Tensor<T>::zeros(gy.shape()));
      });
}

template <class T>
Var<T> relu(const Var<T>& x) {
  // Written so that NaN stays NaN (as in PyTorch): v > 0 ? v : 0 would turn it into 0. The
  // gradient is PyTorch's threshold_backward on the result: gy passes where y > 0 or y is NaN.
  return unary_op(
      "relu", x, [](T v) { return v <= 0 ? T(0) : v; },
      [](T g, T, T y) { return y <= 0 ? T(0) : g; },
      [](const Var<T>& gy, const Var<T>& x, const Var<T>& y) {
        return scale_by_factors(gy, factors(x, y, [](T, T out) { return out <= 0 ? T(0) : T(1); }));
      });
}

template <class T>
Var<T> sigmoid(const Var<T>& x) {
  return unary_op(
      "sigmoid", x, [](T v) { return detail::sigmoid_vec(v); },
      [](T, T y) { return y * (T(1) - y); },
      [](const Var<T>& gy, const Var<T>&, const Var<T>& y) {
        return gy * (y * rsub_scalar(Scalar<T>(1), y));
      });
}

template <class T>
Var<T> tanh(const Var<T>& x) {
  return unary_op(
      "tanh", x, [](T v) { return detail::tanh_vec(v); }, [](T, T y) { return T(1) - y * y; },
      [](const Var<T>& gy, const Var<T>&, const Var<T>& y) {
        return gy * rsub_scalar(Scalar<T>(1), y * y);
      });
}

template <class T>
Var<T> softplus(const Var<T>& x) {
  return unary_op(
      "softplus", x, [](T v) { return (v > 0 ? v : T(0)) + log1p_exp_neg_abs(v); },
      [](T v, T) { return detail::sigmoid_vec(v); },
      [](const Var<T>& gy, const Var<T>& x, const Var<T>&) { return gy * sigmoid(x); });
}

template <class T>
Var<T> log_sigmoid(const Var<T>& x) {
  return unary_op(
      "log_sigmoid", x, [](T v) { return (v < 0 ? v : T(0)) - log1p_exp_neg_abs(v); },
      [](T v, T) { return detail::sigmoid_vec(-v); },
      [](const Var<T>& gy, const Var<T>& x, const Var<T>&) { return gy * sigmoid(neg(x)); });
}

template <class T>
Var<T> leaky_relu(const Var<T>& x, Scalar<T> negative_slope) {
  const T s = negative_slope;
  return unary_op(
      "leaky_relu", x, [s](T v) { return v > 0 ? v : v * s; },
      [s](T v, T) { return v > 0 ? T(1) : s; },
      [s](const Var<T>& gy, const Var<T>& x, const Var<T>& y) {
        return scale_by_factors(gy, factors(x, y, [s](T v, T) { return v > 0 ? T(1) : s; }));
      });
}

template <class T>
Var<T> elu(const Var<T>& x, Scalar<T> alpha) {
  const T a = alpha;
  return unary_op(
      "elu", x, [a](T v) { return v > 0 ? v : a * std::expm1(v); },
      [a](T v, T) { return v > 0 ? T(1) : a * detail::exp_vec(v); },
      [a](const Var<T>& gy, const Var<T>& x, const Var<T>& y) {
        // x > 0: gy;  x <= 0: gy (y + α), since y = α(eˣ − 1) there.
        Tensor<T> positive = factors(x, y, [](T v, T) { return v > 0 ? T(1) : T(0); });
        Tensor<T> negative = factors(x, y, [](T v, T) { return v > 0 ? T(0) : T(1); });
        return scale_by_factors(gy, std::move(positive)) +
               scale_by_factors(gy * add_scalar(y, Scalar<T>(a)), std::move(negative));
      });
}

template <class T>
Var<T> gelu(const Var<T>& x, GeluApproximation approximate) {
  if (approximate == GeluApproximation::none) {
    // Φ(x) = ½ erfc(−x/√2); φ(x) = e^(−x²/2)/√(2π).
    return unary_op(
        "gelu", x, [](T v) { return v * (T(0.5) * std::erfc(-v * T(M_SQRT1_2))); },
        [](T v, T) {
          const T cdf = T(0.5) * std::erfc(-v * T(M_SQRT1_2));
          const T pdf = detail::exp_vec(T(-0.5) * v * v) * T(M_2_SQRTPI * M_SQRT1_2 * 0.5);
          return cdf + v * pdf;
        },
        [](const Var<T>& gy, const Var<T>& x, const Var<T>&) {
          return gy * (normal_cdf(x) + x * normal_pdf(x));
        });
  }
  // PyTorch's evaluation order, so that overflow of x³ gives the same NaN.
  constexpr T beta = T(M_SQRT2 * M_2_SQRTPI * 0.5), kappa = T(0.044715);
  return unary_op(
      "gelu", x,
      [](T v) { return T(0.5) * v * (T(1) + detail::tanh_vec(beta * (v + kappa * v * v * v))); },
      [](T v, T) {
        const T v2 = v * v;
        const T t = detail::tanh_vec(beta * (v + kappa * v2 * v));
        const T left = T(0.5) * v;
        const T right_derivative = left * (T(1) - t * t) * (beta * (T(1) + T(3) * kappa * v2));
        return T(0.5) * (T(1) + t) + right_derivative;
      },
      [](const Var<T>& gy, const Var<T>& x, const Var<T>&) {
        // y = ½x(1 + t), t = tanh(β(x + κx³)):  y' = ½(1 + t) + ½x(1 − t²)β(1 + 3κx²).
        const Var<T> x2 = x * x;
        const Var<T> t =
            tanh(mul_scalar(x + mul_scalar(x2 * x, Scalar<T>(kappa)), Scalar<T>(beta)));
        const Var<T> inner = mul_scalar(
            add_scalar(mul_scalar(x2, Scalar<T>(3 * kappa)), Scalar<T>(1)), Scalar<T>(beta));
        return gy * (mul_scalar(add_scalar(t, Scalar<T>(1)), Scalar<T>(0.5)) +
                     mul_scalar(x * rsub_scalar(Scalar<T>(1), t * t) * inner, Scalar<T>(0.5)));
      });
}

template <class T>
Var<T> silu(const Var<T>& x) {
  return unary_op(
      "silu", x, [](T v) { return v / (T(1) + detail::exp_vec(-v)); },
      [](T v, T) {
        const T s = T(1) / (T(1) + detail::exp_vec(-v));
        return s * (T(1) + v * (T(1) - s));
      },
      [](const Var<T>& gy, const Var<T>& x, const Var<T>&) {  // gy σ (1 + x(1 − σ))
        const Var<T> s = sigmoid(x);
        return gy * (s * add_scalar(x * rsub_scalar(Scalar<T>(1), s), Scalar<T>(1)));
      });
}

template <class T>
Var<T> add_scalar(const Var<T>& x, Scalar<T> s) {
  return unary_op(
      "add_scalar", x, [s](T v) { return v + s; }, [](T, T) { return T(1); },
      [](const Var<T>& gy, const Var<T>&, const Var<T>&) { return gy; });
}

template <class T>
Var<T> mul_scalar(const Var<T>& x, Scalar<T> s) {
  return unary_op(
      "mul_scalar", x, [s](T v) { return v * s; }, [s](T, T) { return s; },
      [s](const Var<T>& gy, const Var<T>&, const Var<T>&) { return mul_scalar(gy, Scalar<T>(s)); });
}

template <class T>
Var<T> rsub_scalar(Scalar<T> s, const Var<T>& x) {
  return unary_op(
      "rsub_scalar", x, [s](T v) { return s - v; }, [](T, T) { return T(-1); },
      [](const Var<T>& gy, const Var<T>&, const Var<T>&) { return neg(gy); });
}

template <class T>
Var<T> rdiv_scalar(Scalar<T> s, const Var<T>& x) {
  return unary_op(
      "rdiv_scalar", x, [s](T v) { return s / v; }, [](T v, T y) { return -y / v; },
      [](const Var<T>& gy, const Var<T>& x, const Var<T>& y) { return neg(gy * y / x); });
}

#define TAPEGRAD_INSTANTIATE(T)                           \
  template Var<T> neg(const Var<T>&);                     \
  template Var<T> exp(const Var<T>&);                     \
  template Var<T> log(const Var<T>&);                     \
  template Var<T> sqrt(const Var<T>&);                    \
  template Var<T> abs(const Var<T>&);                     \
  template Var<T> sign(const Var<T>&);                    \
  template Var<T> relu(const Var<T>&);                    \
  template Var<T> sigmoid(const Var<T>&);                 \
  template Var<T> tanh(const Var<T>&);                    \
  template Var<T> softplus(const Var<T>&);                \
  template Var<T> log_sigmoid(const Var<T>&);             \
  template Var<T> leaky_relu(const Var<T>&, Scalar<T>);   \
  template Var<T> elu(const Var<T>&, Scalar<T>);          \
  template Var<T> gelu(const Var<T>&, GeluApproximation); \
  template Var<T> silu(const Var<T>&);                    \
  template Var<T> add_scalar(const Var<T>&, Scalar<T>);   \
  template Var<T> mul_scalar(const Var<T>&, Scalar<T>);   \
  template Var<T> rsub_scalar(Scalar<T>, const Var<T>&);  \
  template Var<T> rdiv_scalar(Scalar<T>, const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
