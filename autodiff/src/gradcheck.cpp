#include "tapegrad/autodiff/gradcheck.hpp"

#include <cmath>
#include <random>
#include <sstream>

#include "tapegrad/autodiff/binary.hpp"
#include "tapegrad/autodiff/grad.hpp"
#include "tapegrad/autodiff/reduce.hpp"

namespace tapegrad {
namespace {

std::string index_string(const Shape& s, std::size_t flat) {
  std::vector<std::size_t> idx(s.rank());
  for (std::size_t i = s.rank(); i-- > 0;) {
    idx[i] = flat % s[i];
    flat /= s[i];
  }
  std::string out = "[";
  for (std::size_t i = 0; i < idx.size(); ++i) out += (i ? ", " : "") + std::to_string(idx[i]);
  return out + "]";
}

std::string input_name(const GradcheckOptions& o, std::size_t i) {
  std::string s = "input " + std::to_string(i);
  if (i < o.names.size() && !o.names[i].empty()) s += " (\"" + o.names[i] + "\")";
  return s;
}

double dot(const Tensor<double>& a, const Tensor<double>& b) {
  double acc = 0;
  for (std::size_t k = 0; k < a.numel(); ++k) acc += a[k] * b[k];
  return acc;
}

// ⟨v, f(inputs)⟩ without recording anything.
double probe(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
             const Tensor<double>& v) {
  NoGradGuard no_grad;
  std::vector<Var<double>> vars;
  for (const Tensor<double>& t : inputs) vars.emplace_back(t);
  return dot(f(vars).value(), v);
}

// Analytic gradients Jᵀv (zeros for inputs backward did not reach); empty on a shape error,
// which is then described in `error`.
std::vector<Tensor<double>> analytic(const GradcheckFunction& f,
                                     const std::vector<Tensor<double>>& inputs,
                                     const Tensor<double>& v, const GradcheckOptions& o,
                                     std::string& error) {
  std::vector<Var<double>> vars;
  for (const Tensor<double>& t : inputs) vars.push_back(Var<double>::parameter(t));
  Var<double> y = f(vars);
  std::vector<Tensor<double>> grads;
  if (y.requires_grad()) y.backward(v);
  for (std::size_t i = 0; i < vars.size(); ++i) {
    if (!vars[i].has_grad()) {
      grads.push_back(Tensor<double>::zeros(inputs[i].shape()));
      continue;
    }
    if (vars[i].grad().shape() != inputs[i].shape()) {
      error = "gradcheck failed: the gradient of " + input_name(o, i) + " has shape " +
              vars[i].grad().shape().to_string() + " but the input has shape " +
              inputs[i].shape().to_string();
      return {};
    }
    grads.push_back(vars[i].grad());
  }
  return grads;
}

std::string rule(const GradcheckOptions& o) {
  std::ostringstream s;
  s << "rule |a - n| <= atol + rtol*|n| with eps = " << o.eps << ", atol = " << o.atol
    << ", rtol = " << o.rtol;
  return s.str();
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                          const GradcheckOptions& o) {
  GradcheckResult result;
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  Shape out_shape;
  {
    NoGradGuard no_grad;
    std::vector<Var<double>> vars(inputs.begin(), inputs.end());
    out_shape = f(vars).shape();
  }
  std::string error;
  auto random_upstream = [&] {
    Tensor<double> v(out_shape);
    for (double& x : v) x = uniform(rng);
    return v;
  };
  const Tensor<double> v = random_upstream();
  std::vector<Tensor<double>> g;
  try {
    g = analytic(f, inputs, v, o, error);
  } catch (const std::exception& e) {
    error = std::string("gradcheck failed: the backward pass threw: ") + e.what();
  }
  if (!error.empty()) {
    result.report = error;
    return result;
  }

  // Numeric gradient, element by element; remember the worst violation of the rule.
  std::vector<Tensor<double>> work = inputs;
  const double centre = probe(f, work, v);
  double worst_excess = -1;
  std::size_t compared = 0;
  std::ostringstream worst;
  for (std::size_t i = 0; i < work.size(); ++i) {
    for (std::size_t k = 0; k < work[i].numel(); ++k) {
      const double x0 = work[i][k];
      work[i][k] = x0 + o.eps;
      const double plus = probe(f, work, v);
      work[i][k] = x0 - o.eps;
      const double minus = probe(f, work, v);
      work[i][k] = x0;
      const double numeric = (plus - minus) / (2 * o.eps);
      const double a = g[i][k];
      const double err = std::abs(a - numeric);
      const double allowed = o.atol + o.rtol * std::abs(numeric);
      const double forward = (plus - centre) / o.eps, backward = (centre - minus) / o.eps;
      if (std::abs(forward - backward) > std::max(o.atol, 1e3 * o.eps * (1 + std::abs(numeric)))) {
        // A kink within eps: the central difference is not a derivative, so the element is
        // not compared (it cannot fail), only reported.
        std::ostringstream w;
        w << input_name(o, i) << " element " << index_string(work[i].shape(), k) << " = " << x0
          << " lies within eps of a kink (one-sided differences " << forward << " and " << backward
          << "; analytic " << a << "): not compared";
        result.warnings.push_back(w.str());
        continue;
      }
      ++compared;
      if (!(err <= allowed) && err - allowed > worst_excess) {
        worst_excess = std::isnan(err) ? 1e300 : err - allowed;
        worst.str("");
        worst << "gradcheck failed: " << input_name(o, i) << ", element "
              << index_string(work[i].shape(), k) << ": analytic " << a << ", numeric " << numeric
              << ", absolute error " << err << ", relative error "
              << err / std::max(std::abs(numeric), 1e-300) << " (" << rule(o) << ")";
      }
    }
  }
  // Appended to every report: how many elements were compared and how many skipped at kinks.
  std::ostringstream counts;
  counts << "; " << compared << " elements compared, " << result.warnings.size()
         << " skipped at kinks (see warnings)";
  if (worst_excess >= 0) {
    result.report = worst.str() + counts.str();
    return result;
  }

  if (o.check_linearity) {
    const double alpha = 0.75, beta = -1.25;
    const Tensor<double> v1 = random_upstream(), v2 = random_upstream();
    Tensor<double> v3(out_shape);
    for (std::size_t k = 0; k < v3.numel(); ++k) v3[k] = alpha * v1[k] + beta * v2[k];
    const auto g1 = analytic(f, inputs, v1, o, error);
    const auto g2 = analytic(f, inputs, v2, o, error);
    const auto g3 = analytic(f, inputs, v3, o, error);
    for (std::size_t i = 0; i < g3.size(); ++i) {
      for (std::size_t k = 0; k < g3[i].numel(); ++k) {
        const double expected = alpha * g1[i][k] + beta * g2[i][k];
        const double err = std::abs(g3[i][k] - expected);
        if (!(err <= o.atol + o.rtol * std::abs(expected))) {
          std::ostringstream s;
          s << "gradcheck failed: backward is not linear in the upstream gradient: "
            << input_name(o, i) << ", element " << index_string(inputs[i].shape(), k) << ": g("
            << alpha << " v1 + " << beta << " v2) = " << g3[i][k] << " but " << alpha << " g(v1) + "
            << beta << " g(v2) = " << expected << " (" << rule(o) << ")";
          result.report = s.str() + counts.str();
          return result;
        }
      }
    }
  }
  result.passed = true;
  result.report = "gradcheck passed" + counts.str();
  return result;
}

GradcheckResult gradgradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                              const std::vector<Tensor<double>>& grad_outputs,
                              const GradcheckOptions& o) {
  const std::size_t n = inputs.size();
  Shape out_shape;
  {
    NoGradGuard no_grad;
    std::vector<Var<double>> vars(inputs.begin(), inputs.end());
    out_shape = f(vars).shape();
  }
  std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ULL);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  auto random_tensor = [&](const Shape& shape) {
    Tensor<double> t(shape);
    for (double& x : t) x = uniform(rng);
    return t;
  };
  GradcheckResult result;
  if (grad_outputs.size() > 1 ||
      (grad_outputs.size() == 1 && grad_outputs[0].shape() != out_shape)) {
    result.report = "gradgradcheck: grad_outputs must hold one tensor of the output's shape " +
                    out_shape.to_string();
    return result;
  }
  const Tensor<double> v = grad_outputs.empty() ? random_tensor(out_shape) : grad_outputs[0];
  std::vector<Tensor<double>> weights;
  for (const Tensor<double>& x : inputs) weights.push_back(random_tensor(x.shape()));

  // Σ_i ⟨w_i, (∂f/∂x_i)ᵀ v⟩ as a function of (x_0, ..., x_{n-1}, v).
  auto first_order = [&f, &weights, n](const std::vector<Var<double>>& vars) -> Var<double> {
    const bool outer_tracks = grad_enabled();
    EnableGradGuard grad_on;
    std::vector<Var<double>> xs;
    for (std::size_t i = 0; i < n; ++i)
      xs.push_back(outer_tracks ? vars[i] : Var<double>::parameter(vars[i].value()));
    Var<double> y = f(xs);
    Var<double> total(Tensor<double>::zeros({}));
    if (!y.requires_grad()) return total;
    GradOptions options;
    options.create_graph = outer_tracks;
    options.retain_graph = outer_tracks;
    options.allow_unused = true;
    const std::vector<Var<double>> g = grad(y, xs, {vars[n]}, options);
    for (std::size_t i = 0; i < n; ++i)
      if (g[i].defined()) total = total + sum(g[i] * Var<double>(weights[i]));
    if (!outer_tracks) return Var<double>(total.value());
    return total;
  };
  std::vector<Tensor<double>> all = inputs;
  all.push_back(v);
  GradcheckOptions options = o;
  options.names.resize(n);
  options.names.push_back("grad_output");
  result = gradcheck(first_order, all, options);
  const std::string prefix = "gradcheck";
  if (result.report.compare(0, prefix.size(), prefix) == 0)
    result.report = "gradgradcheck" + result.report.substr(prefix.size());
  return result;
}

}  // namespace tapegrad
