// Half of the higher-order comparison with PyTorch (higher_order_interop.py is the other half).
//   write DIR: saves the inputs and parameters of three cases, in double;
//   read DIR:  computes each case with tapegrad in double and in float and compares every
//              result with what torch.autograd computed (same dtype).
// The cases:
//   penalty  a gradient-penalty step: f(x) = linear(tanh(linear(x, W1, b1)), W2, b2), loss =
//            mean(f²) + ½ mean(Σ_j (∂Σf/∂x)²) + mean(log_softmax(f)); the parameters' gradients.
//   hvp      H v of mean(logsumexp(f)) − mean(f³) with respect to all parameters (v random).
//   pinn     u(x) = linear(tanh(linear(x, W1, b1)), W3, b3) on x of shape [n, 1]; loss =
//            mean((u″ − g)²) with u″ from two create_graph passes; the parameters' gradients
//            (third derivatives of the network).
// Difference of a value a from PyTorch's e: |a − e| / (1 + |e|). Tolerances: double 1e-12,
// float 1e-5. Measured: at most 7.0e-16 (double) and 6.0e-7 (float).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "interop_io.hpp"
#include "tapegrad/layers/init.hpp"
#include "tapegrad/layers/safetensors.hpp"
#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;

namespace {

const char* const parameter_names[] = {"w1", "b1", "w2", "b2"};
const char* const pinn_names[] = {"w1p", "b1p", "w3", "b3"};

template <class T>
Var<T> network(const Var<T>& x, const std::vector<Var<T>>& p) {
  return linear(tanh(linear(x, p[0], p[1])), p[2], p[3]);
}

template <class T>
std::vector<Var<T>> leaves(const TensorFile& in, const char* const* names) {
  std::vector<Var<T>> p;
  for (int i = 0; i < 4; ++i)
    p.push_back(Var<T>::parameter(interop::as<T>(in.find(names[i])->f64)));
  return p;
}

// Each case's results, named as the Python half names them.
template <class T>
std::vector<std::pair<std::string, Tensor<T>>> compute(const TensorFile& in) {
  std::vector<std::pair<std::string, Tensor<T>>> out;
  GradOptions keep;
  keep.create_graph = true;
  {
    const std::vector<Var<T>> p = leaves<T>(in, parameter_names);
    Var<T> x = Var<T>::parameter(interop::as<T>(in.find("x")->f64));
    const Var<T> f = network(x, p);
    const Var<T> gx = grad(sum(f), {x}, {}, keep)[0];
    const Var<T> loss = mean(f * f) + mean(sum(gx * gx, {1})) * T(0.5) + mean(log_softmax(f, -1));
    const std::vector<Var<T>> g = grad(loss, p);
    for (int i = 0; i < 4; ++i)
      out.emplace_back(std::string("penalty.") + parameter_names[i], g[i].value());
    out.emplace_back("penalty.loss", loss.value());
  }
  {
    const std::vector<Var<T>> p = leaves<T>(in, parameter_names);
    const Tensor<T> x = interop::as<T>(in.find("x")->f64);
    std::vector<Var<T>> v;
    for (const char* name : parameter_names)
      v.emplace_back(interop::as<T>(in.find(std::string("v_") + name)->f64));
    const functional::Function<T> loss = [&x](const std::vector<Var<T>>& q) {
      const Var<T> f = network(Var<T>(x), q);
      return mean(logsumexp(f, -1)) - mean(f * f * f);
    };
    const auto hv = functional::hvp<T>(loss, p, v);
    for (int i = 0; i < 4; ++i)
      out.emplace_back(std::string("hvp.") + parameter_names[i], hv.derivatives[i].value());
  }
  {
    const std::vector<Var<T>> p = leaves<T>(in, pinn_names);
    Var<T> x = Var<T>::parameter(interop::as<T>(in.find("xp")->f64));
    const Var<T> u = network(x, p);
    const Var<T> du = grad(sum(u), {x}, {}, keep)[0];
    const Var<T> d2u = grad(sum(du), {x}, {}, keep)[0];
    const Var<T> r = d2u - Var<T>(interop::as<T>(in.find("gp")->f64));
    const Var<T> loss = mean(r * r);
    // b3 does not reach u″: no gradient (an undefined Var), compared as zeros.
    GradOptions allow_unused;
    allow_unused.allow_unused = true;
    const std::vector<Var<T>> g = grad(loss, p, {}, allow_unused);
    for (int i = 0; i < 4; ++i)
      out.emplace_back(std::string("pinn.") + pinn_names[i],
                       g[i].defined() ? g[i].value() : Tensor<T>::zeros(p[i].shape()));
    out.emplace_back("pinn.loss", loss.value());
  }
  return out;
}

template <class T>
int compare(const TensorFile& in, const TensorFile& torch, const char* dtype, double tol,
            double& worst) {
  int failures = 0;
  for (const auto& [name, value] : compute<T>(in)) {
    const StoredTensor* want = torch.find(name + "." + dtype);
    if (want == nullptr) {
      std::printf("FAIL %s.%s: missing from PyTorch's results\n", name.c_str(), dtype);
      ++failures;
      continue;
    }
    const Tensor<T>& e = interop::stored<T>(*want);
    double d = e.shape() == value.shape() ? 0.0 : INFINITY;
    for (std::size_t k = 0; k < value.numel() && d < INFINITY; ++k)
      d = std::max(d, std::abs(static_cast<double>(value[k]) - static_cast<double>(e[k])) /
                          (1 + std::abs(static_cast<double>(e[k]))));
    const bool ok = d <= tol;
    std::printf("%-4s %-14s %s  %.1e\n", ok ? "ok" : "FAIL", name.c_str(), dtype, d);
    failures += !ok;
    worst = std::max(worst, d);
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string mode = argv[1], dir = argv[2];
  if (mode == "write") {
    nn::Generator g(17);
    TensorFile f;
    auto add = [&](const std::string& name, const Shape& shape, double sd) {
      Tensor<double> t(shape);
      nn::normal(t, g, 0.0, sd);
      interop::add_f64(f, name, t);
    };
    add("x", {6, 4}, 1.0);
    add("w1", {5, 4}, 0.6), add("b1", {5}, 0.3), add("w2", {3, 5}, 0.6), add("b2", {3}, 0.3);
    for (const char* name : parameter_names) {
      const Shape shape = f.find(name)->f64.shape();
      add(std::string("v_") + name, shape, 1.0);
    }
    add("xp", {8, 1}, 0.5), add("gp", {8, 1}, 1.0);
    add("w1p", {6, 1}, 1.0), add("b1p", {6}, 0.3), add("w3", {1, 6}, 0.6), add("b3", {1}, 0.3);
    save_tensors(dir + "/inputs.safetensors", f);
    return 0;
  }
  const TensorFile inputs = load_tensors(dir + "/inputs.safetensors");
  const TensorFile torch = load_tensors(dir + "/torch_higher_order.safetensors");
  double worst64 = 0, worst32 = 0;
  const int failures = compare<double>(inputs, torch, "F64", 1e-12, worst64) +
                       compare<float>(inputs, torch, "F32", 1e-5, worst32);
  std::printf("worst: double %.1e, float %.1e\n", worst64, worst32);
  return failures == 0 ? 0 : 1;
}
