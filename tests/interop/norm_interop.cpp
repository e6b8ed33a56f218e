// Half of the normalisation comparison with PyTorch (norm_interop.py is the other half).
//   write DIR: saves the cases below with random inputs x, weights γ, biases β, running
//              statistics and upstream gradients gy (float64).
//   read DIR:  runs each case in float and in double and compares y, the gradients of x, γ and
//              β, and (batch_norm in training) the batch mean and unbiased variance with what
//              torch.nn.functional computed (batch_norm with momentum 1, so its running
//              statistics become the batch's).
// Error measure: |ours − reference| / (1 + |reference|), the worst over every compared value.
// Double: within 1e-12 of torch's float64. Float: within 1e-5 of the exact answer for the float
// inputs (torch in float64 on the inputs rounded to float, "F32X"), and within 1e-5 of torch's
// float32 plus torch's own distance from that exact answer. That allowance matters only in the
// two ill-conditioned cases (two close values per channel; rows of one element, where x − μ is
// rounding noise): 1/√(σ² + ε), up to 1/√ε ≈ 316, magnifies float32's roundings, and torch's
// float32 lands 1.4e-5 and 3.1e-5 from the exact answer, while batch_norm and layer_norm compute
// the statistics and x − μ in double.
// Measured: double at most 5.9e-14 and 1.7e-15 in those two cases (torch's float64 roundings,
// magnified the same way), 3.7e-16 elsewhere; float at most 9.3e-8 from the exact answer, and
// from torch's float32 3.1e-5 and 1.4e-5 in those two cases, 2.4e-7 elsewhere.
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "interop_io.hpp"
#include "tapegrad/layers/init.hpp"
#include "tapegrad/layers/safetensors.hpp"
#include "tapegrad/tapegrad.hpp"

using namespace tapegrad;

namespace {

// Each line: the op (batch_norm, batch_norm_eval, layer_norm), x's shape, the normalised shape
// (layer_norm; "-" otherwise), the affine parameters (none, weight, both) and ε.
const char* const cases[] = {
    "batch_norm 8,3 - both 1e-5",       "batch_norm 4,3,5 - both 1e-5",
    "batch_norm 4,3,5 - none 1e-5",     "batch_norm 2,4,7 - weight 0.1",
    "batch_norm 2,1,1 - both 1e-5",     "batch_norm 3,2,2,3 - both 1e-3",
    "batch_norm 0,3 - both 1e-5",       "batch_norm 0,3,4 - none 1e-5",
    "batch_norm_eval 8,3 - both 1e-5",  "batch_norm_eval 4,3,5 - none 1e-5",
    "batch_norm_eval 1,3 - weight 0.5", "layer_norm 6,5 5 both 1e-5",
    "layer_norm 2,3,4 3,4 both 1e-5",   "layer_norm 2,3,4 4 none 1e-5",
    "layer_norm 3,2,6 6 weight 0.01",   "layer_norm 5,1 1 both 1e-5",
    "layer_norm 7 7 both 1e-5",         "layer_norm 0,4 4 both 1e-5",
};

struct Case {
  std::string op, affine;
  Shape x, normalized;
  double eps = 0;
};

Shape parse_shape(const std::string& text) {
  Shape s;
  if (text == "-") return s;
  std::istringstream parts(text);
  for (std::string d; std::getline(parts, d, ',');) s.push_back(std::stoul(d));
  return s;
}

Case parse(const std::string& line) {
  std::istringstream words(line);
  std::string x, normalized, eps;
  Case c;
  words >> c.op >> x >> normalized >> c.affine >> eps;
  c.x = parse_shape(x);
  c.normalized = parse_shape(normalized);
  c.eps = std::stod(eps);
  return c;
}

// The shape of γ, β and the running statistics.
Shape parameter_shape(const Case& c) {
  return c.op == "layer_norm" ? c.normalized : Shape{c.x[1]};
}

using Results = std::map<std::string, Tensor<double>>;  // y, gx, gw, gb, mean, var

// Runs case `index` in T: the output, the gradients, and (batch_norm) the batch statistics.
template <class T>
Results run(const TensorFile& problem, const Case& c, std::size_t index) {
  const std::string prefix = std::to_string(index) + ".";
  auto input = [&](const char* name) { return interop::as<T>(problem.find(prefix + name)->f64); };
  Var<T> x = Var<T>::parameter(input("x"));
  Var<T> w, b;
  if (c.affine != "none") w = Var<T>::parameter(input("w"));
  if (c.affine == "both") b = Var<T>::parameter(input("b"));
  Tensor<T> mean, var;
  Var<T> y;
  if (c.op == "batch_norm")
    y = batch_norm(x, w, b, c.eps, &mean, &var);
  else if (c.op == "batch_norm_eval")
    y = batch_norm_eval(x, input("running_mean"), input("running_var"), w, b, c.eps);
  else
    y = layer_norm(x, c.normalized, w, b, c.eps);
  y.backward(input("gy"));
  Results r{{"y", interop::as<double>(y.value())}, {"gx", interop::as<double>(x.grad())}};
  if (w.defined()) r["gw"] = interop::as<double>(w.grad());
  if (b.defined()) r["gb"] = interop::as<double>(b.grad());
  if (mean.defined()) r["mean"] = interop::as<double>(mean);
  if (var.defined()) r["var"] = interop::as<double>(var);
  return r;
}

// PyTorch's results named "<prefix><name>".
Results torch_results(const TensorFile& torch, const std::string& prefix) {
  Results r;
  for (const auto& [name, t] : torch.tensors)
    if (name.compare(0, prefix.size(), prefix) == 0)
      r[name.substr(prefix.size())] = t.f64.defined() ? t.f64 : interop::as<double>(t.f32);
  return r;
}

// The largest |a − e| / (1 + |e|) over every value; the two must hold the same tensors (PyTorch
// leaves the running statistics of an empty batch alone, and batch_norm hands back none).
double distance(const Results& a, const Results& e, const std::string& what) {
  if (a.size() != e.size()) throw std::runtime_error(what + ": different sets of results");
  double worst = 0;
  for (const auto& [name, got] : a) {
    const auto want = e.find(name);
    if (want == e.end()) throw std::runtime_error(what + ": PyTorch's results lack " + name);
    if (got.shape() != want->second.shape())
      throw std::runtime_error(what + "." + name + ": shape " + got.shape().to_string() +
                               ", PyTorch's " + want->second.shape().to_string());
    for (std::size_t k = 0; k < got.numel(); ++k)
      worst = std::max(worst, std::abs(got[k] - want->second[k]) / (1 + std::abs(want->second[k])));
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string mode = argv[1], dir = argv[2];
  if (mode == "write") {
    nn::Generator g(11);
    TensorFile f;
    std::string lines;
    for (std::size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
      const Case c = parse(cases[i]);
      auto add = [&](const char* name, const Shape& shape, double mean, double scale) {
        Tensor<double> t(shape);
        nn::normal(t, g, mean, scale);
        f.tensors.emplace_back(std::to_string(i) + "." + name, StoredTensor{{}, t, {}});
      };
      add("x", c.x, 0.7, 2.0);  // away from mean 0 and variance 1
      add("gy", c.x, 0.0, 1.0);
      const Shape p = parameter_shape(c);
      add("w", p, 1.0, 0.5);
      add("b", p, 0.0, 1.0);
      add("running_mean", p, 0.5, 1.0);
      Tensor<double> rv(p);
      for (double& v : rv) v = 0.2 + std::abs(g.normal()) * 3;
      f.tensors.emplace_back(std::to_string(i) + ".running_var", StoredTensor{{}, rv, {}});
      lines += std::string(cases[i]) + "\n";
    }
    f.metadata["cases"] = lines;
    save_tensors(dir + "/problem.safetensors", f);
    return 0;
  }
  const TensorFile problem = load_tensors(dir + "/problem.safetensors");
  const TensorFile torch = load_tensors(dir + "/torch_norm.safetensors");
  int failures = 0;
  double worst64 = 0, worst32 = 0, worst32_exact = 0;
  for (std::size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    const Case c = parse(cases[i]);
    const std::string prefix = std::to_string(i) + ".";
    const Results torch32 = torch_results(torch, prefix + "F32."),
                  exact32 = torch_results(torch, prefix + "F32X.");
    const Results ours32 = run<float>(problem, c, i);
    const double d64 =
        distance(run<double>(problem, c, i), torch_results(torch, prefix + "F64."), prefix + "F64");
    const double d32 = distance(ours32, torch32, prefix + "F32");
    const double d32_exact = distance(ours32, exact32, prefix + "F32X");
    const double torch_error = distance(torch32, exact32, prefix + "F32 (PyTorch)");
    const bool ok = d64 <= 1e-12 && d32_exact <= 1e-5 && d32 <= 1e-5 + torch_error;
    std::printf("%-4s %-34s  double %.1e  float %.1e (exact %.1e, PyTorch's float %.1e)\n",
                ok ? "ok" : "FAIL", cases[i], d64, d32, d32_exact, torch_error);
    failures += !ok;
    worst64 = std::max(worst64, d64);
    worst32 = std::max(worst32, d32);
    worst32_exact = std::max(worst32_exact, d32_exact);
  }
  std::printf("worst: double %.1e  float %.1e (exact %.1e)\n", worst64, worst32, worst32_exact);
  return failures == 0 ? 0 : 1;
}
