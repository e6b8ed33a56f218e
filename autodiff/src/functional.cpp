#include "tapegrad/autodiff/functional.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "tapegrad/autodiff/binary.hpp"
#include "tapegrad/autodiff/grad.hpp"
#include "tapegrad/autodiff/reduce.hpp"
#include "tapegrad/autodiff/reshape.hpp"

namespace tapegrad::functional {
namespace {

// The inputs f is evaluated at: the caller's tracked values under create_graph, fresh leaves
// holding their values otherwise.
template <class T>
std::vector<Var<T>> prepare(const char* fn, const std::vector<Var<T>>& inputs, bool create_graph) {
  std::vector<Var<T>> xs;
  xs.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined())
      throw std::invalid_argument(std::string(fn) + ": input " + std::to_string(i) +
                                  " is undefined");
    xs.push_back(create_graph && inputs[i].requires_grad() ? inputs[i]
                                                           : Var<T>::parameter(inputs[i].value()));
  }
  return xs;
}

template <class T>
Var<T> zeros_like(const Var<T>& x) {
  return Var<T>(Tensor<T>::zeros(x.shape()));
}

// grad() keeping the tape; inputs that do not reach the output get zeros.
template <class T>
std::vector<Var<T>> gradients(const Var<T>& y, const std::vector<Var<T>>& xs, const Var<T>& seed,
                              bool create_graph) {
  if (!y.requires_grad()) {
    std::vector<Var<T>> zeros;
    for (const Var<T>& x : xs) zeros.push_back(zeros_like(x));
    return zeros;
  }
  GradOptions options;
  options.retain_graph = true;
  options.create_graph = create_graph;
  options.allow_unused = true;
  std::vector<Var<T>> g =
      grad(std::vector<Var<T>>{y}, xs,
           seed.defined() ? std::vector<Var<T>>{seed} : std::vector<Var<T>>{}, options);
  for (std::size_t i = 0; i < g.size(); ++i)
    if (!g[i].defined()) g[i] = zeros_like(xs[i]);
  return g;
}

template <class T>
void check_shapes(const char* fn, const char* what, const std::vector<Var<T>>& v,
                  const std::vector<Var<T>>& xs) {
  if (v.size() != xs.size())
    throw std::invalid_argument(std::string(fn) + ": " + std::to_string(xs.size()) +
                                " inputs but " + std::to_string(v.size()) + " tensors in " + what);
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!v[i].defined() || v[i].shape() != xs[i].shape())
      throw ShapeError(std::string(fn) + ": " + what + " " + std::to_string(i) + " has shape " +
                       (v[i].defined() ? v[i].shape().to_string() : std::string("(undefined)")) +
                       ", input " + std::to_string(i) + " has shape " + xs[i].shape().to_string());
}

// 1 at flat index k, 0 elsewhere.
template <class T>
Var<T> one_hot(const Shape& shape, std::size_t k) {
  Tensor<T> t = Tensor<T>::zeros(shape);
  t[k] = T(1);
  return Var<T>(std::move(t));
}

template <class T>
void require_scalar(const char* fn, const Var<T>& y) {
  if (y.numel() != 1)
    throw ShapeError(std::string(fn) + ": the function's output has shape " +
                     y.shape().to_string() + ", not a single element");
}

// Σ_i ⟨a_i, b_i⟩ as a rank-0 Var.
template <class T>
Var<T> inner_product(const std::vector<Var<T>>& a, const std::vector<Var<T>>& b) {
  Var<T> total = sum(a[0] * b[0]);
  for (std::size_t i = 1; i < a.size(); ++i) total = total + sum(a[i] * b[i]);
  return total;
}

template <class T>
Derivatives<T> finish(Var<T> y, std::vector<Var<T>> d, bool create_graph) {
  if (!create_graph) {
    y = y.detach();
    for (Var<T>& v : d) v = Var<T>(v.value());
  }
  return {std::move(y), std::move(d)};
}

template <class T>
Shape joined(const Shape& a, const Shape& b) {
  if (a.rank() + b.rank() > max_rank)
    throw ShapeError("jacobian: shapes " + a.to_string() + " and " + b.to_string() +
                     " together have more than " + std::to_string(max_rank) + " dims");
  Shape out = a;
  for (std::size_t d = 0; d < b.rank(); ++d) out.push_back(b[d]);
  return out;
}

// Rows `rows[k]` (each of shape `row_shape`) stacked into shape `stacked` = [rows.size()] ++
// row_shape, as a constant or, under create_graph, as a tracked sum of rows placed by one-hot
// columns.
template <class T>
Var<T> stack_rows(const std::vector<Var<T>>& rows, const Shape& row_shape, const Shape& stacked,
                  bool create_graph) {
  const std::size_t m = rows.size(), n = row_shape.numel();
  if (!create_graph) {
    Tensor<T> out(stacked);
    for (std::size_t k = 0; k < m; ++k)
      std::copy(rows[k].value().data(), rows[k].value().data() + n, out.data() + k * n);
    return Var<T>(std::move(out));
  }
  Var<T> out(Tensor<T>::zeros(Shape{m, n}));
  for (std::size_t k = 0; k < m; ++k) {
    out = out + one_hot<T>(Shape{m, 1}, k) * reshape(rows[k], Shape{1, n});
  }
  return reshape(out, stacked);
}

}  // namespace

template <class T>
Derivatives<T> vjp(const Function<T>& f, const std::vector<Var<T>>& inputs, const Var<T>& v,
                   bool create_graph) {
  EnableGradGuard grad_on;
  const std::vector<Var<T>> xs = prepare("vjp", inputs, create_graph);
  Var<T> y = f(xs);
  if (v.defined() && v.shape() != y.shape())
    throw ShapeError("vjp: v has shape " + v.shape().to_string() + ", the output " +
                     y.shape().to_string());
  if (!v.defined()) require_scalar("vjp", y);
  return finish(y, gradients(y, xs, v, create_graph), create_graph);
}

template <class T>
Derivatives<T> jvp(const Function<T>& f, const std::vector<Var<T>>& inputs,
                   const std::vector<Var<T>>& u, bool create_graph) {
  EnableGradGuard grad_on;
  const std::vector<Var<T>> xs = prepare("jvp", inputs, create_graph);
  check_shapes("jvp", "u", u, xs);
  Var<T> y = f(xs);
  // g(w) = Jᵀw for a tracked seed w; J u = ∂⟨g(w), u⟩/∂w (w's value does not matter: g is
  // linear in it).
  const Var<T> w = Var<T>::parameter(Tensor<T>::zeros(y.shape()));
  const std::vector<Var<T>> g = gradients(y, xs, w, true);
  const Var<T> inner = inner_product(g, u);
  std::vector<Var<T>> ju = gradients(inner, {w}, Var<T>(), create_graph);
  return finish(y, std::move(ju), create_graph);
}

template <class T>
Derivatives<T> vhp(const Function<T>& f, const std::vector<Var<T>>& inputs,
                   const std::vector<Var<T>>& v, bool create_graph) {
  EnableGradGuard grad_on;
  const std::vector<Var<T>> xs = prepare("vhp", inputs, create_graph);
  check_shapes("vhp", "v", v, xs);
  Var<T> y = f(xs);
  require_scalar("vhp", y);
  const std::vector<Var<T>> g = gradients(y, xs, Var<T>(), true);
  return finish(y, gradients(inner_product(g, v), xs, Var<T>(), create_graph), create_graph);
}

template <class T>
Derivatives<T> hvp(const Function<T>& f, const std::vector<Var<T>>& inputs,
                   const std::vector<Var<T>>& v, bool create_graph) {
  return vhp(f, inputs, v, create_graph);
}

template <class T>
std::vector<Var<T>> jacobian(const Function<T>& f, const std::vector<Var<T>>& inputs,
                             bool create_graph) {
  EnableGradGuard grad_on;
  const std::vector<Var<T>> xs = prepare("jacobian", inputs, create_graph);
  const Var<T> y = f(xs);
  std::vector<std::vector<Var<T>>> rows(xs.size());
  for (std::size_t k = 0; k < y.numel(); ++k) {
    std::vector<Var<T>> g = gradients(y, xs, one_hot<T>(y.shape(), k), create_graph);
    for (std::size_t i = 0; i < xs.size(); ++i) rows[i].push_back(std::move(g[i]));
  }
  std::vector<Var<T>> result;
  for (std::size_t i = 0; i < xs.size(); ++i)
    result.push_back(
        stack_rows(rows[i], xs[i].shape(), joined<T>(y.shape(), xs[i].shape()), create_graph));
  return result;
}

template <class T>
std::vector<std::vector<Var<T>>> hessian(const Function<T>& f, const std::vector<Var<T>>& inputs,
                                         bool create_graph) {
  EnableGradGuard grad_on;
  const std::vector<Var<T>> xs = prepare("hessian", inputs, create_graph);
  const Var<T> y = f(xs);
  require_scalar("hessian", y);
  const std::vector<Var<T>> g = gradients(y, xs, Var<T>(), true);
  std::vector<std::vector<Var<T>>> result(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    std::vector<std::vector<Var<T>>> rows(xs.size());
    for (std::size_t k = 0; k < g[i].numel(); ++k) {
      std::vector<Var<T>> h = gradients(g[i], xs, one_hot<T>(g[i].shape(), k), create_graph);
      for (std::size_t j = 0; j < xs.size(); ++j) rows[j].push_back(std::move(h[j]));
    }
    for (std::size_t j = 0; j < xs.size(); ++j)
      result[i].push_back(stack_rows(rows[j], xs[j].shape(),
                                     joined<T>(xs[i].shape(), xs[j].shape()), create_graph));
  }
  return result;
}

#define TAPEGRAD_INSTANTIATE(T)                                                                \
  template Derivatives<T> vjp(const Function<T>&, const std::vector<Var<T>>&, const Var<T>&,   \
                              bool);                                                           \
  template Derivatives<T> jvp(const Function<T>&, const std::vector<Var<T>>&,                  \
                              const std::vector<Var<T>>&, bool);                               \
  template Derivatives<T> vhp(const Function<T>&, const std::vector<Var<T>>&,                  \
                              const std::vector<Var<T>>&, bool);                               \
  template Derivatives<T> hvp(const Function<T>&, const std::vector<Var<T>>&,                  \
                              const std::vector<Var<T>>&, bool);                               \
  template std::vector<Var<T>> jacobian(const Function<T>&, const std::vector<Var<T>>&, bool); \
  template std::vector<std::vector<Var<T>>> hessian(const Function<T>&,                        \
                                                    const std::vector<Var<T>>&, bool);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad::functional
