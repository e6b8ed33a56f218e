// Half of the activation and loss comparison with PyTorch (ops_interop.py is the other half).
//   write DIR: saves inputs, targets and upstream gradients, two sets of each: "f", random finite
//              values with exact kinks (x = ±0, d = 0, |d| = β), and "s", 0, ±inf, NaN and
//              values far out; and the list of settings (an op of torch.nn.functional and its
//              options).
//   read DIR:  runs each setting on each set in float and in double, and compares the output and
//              the gradients of input and target with what PyTorch computed.
// Difference of a value a from PyTorch's e: 0 when both are NaN or the same infinity, else
// |a − e| / (1 + |e|) (infinite when only one is NaN). Tolerances: double 1e-12, float 1e-6.
// Measured: at most 3.2e-16 (double) and 4.4e-7 (float).
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

constexpr std::size_t rows = 6, cols = 8;  // the "f" set; "s" has 2 × 8

// Each line: an op of torch.nn.functional and key=value options, by their PyTorch names.
std::vector<std::string> settings() {
  std::vector<std::string> s = {
      "leaky_relu",
      "leaky_relu negative_slope=0.2",
      "leaky_relu negative_slope=-0.5",
      "elu",
      "elu alpha=0.5",
      "elu alpha=2",
      "gelu",
      "gelu approximate=tanh",
      "silu",
  };
  for (const char* r : {"none", "mean", "sum"}) {
    const std::string red = std::string(" reduction=") + r;
    for (const char* options : {"l1_loss", "smooth_l1_loss", "smooth_l1_loss beta=0.5",
                                "smooth_l1_loss beta=0", "huber_loss", "huber_loss delta=0.3"})
      s.push_back(options + red);
  }
  for (const char* r : {"none", "mean", "sum", "batchmean"})
    for (const char* log_target : {"0", "1"})
      s.push_back(std::string("kl_div reduction=") + r + " log_target=" + log_target);
  return s;
}

std::map<std::string, std::string> parse(const std::string& line, std::string& op) {
  std::istringstream words(line);
  words >> op;
  std::map<std::string, std::string> kv;
  for (std::string w; words >> w;) {
    const std::size_t eq = w.find('=');
    kv[w.substr(0, eq)] = w.substr(eq + 1);
  }
  return kv;
}

bool is_loss(const std::string& op) {
  return op.find("loss") != std::string::npos || op == "kl_div";
}

// The target a setting uses: probabilities or log-probabilities for kl_div, else "t".
std::string target_of(const std::string& op, const std::map<std::string, std::string>& kv) {
  if (op != "kl_div") return "t";
  return kv.count("log_target") && kv.at("log_target") == "1" ? "logp" : "p";
}

template <class T>
Var<T> apply(const std::string& op, const std::map<std::string, std::string>& kv, const Var<T>& x,
             const Var<T>& t) {
  auto number = [&](const char* key, double fallback) {
    return kv.count(key) ? std::stod(kv.at(key)) : fallback;
  };
  const std::string red = kv.count("reduction") ? kv.at("reduction") : "mean";
  const Reduction r = red == "none"  ? Reduction::none
                      : red == "sum" ? Reduction::sum
                                     : Reduction::mean;
  if (op == "leaky_relu") return leaky_relu(x, static_cast<T>(number("negative_slope", 0.01)));
  if (op == "elu") return elu(x, static_cast<T>(number("alpha", 1)));
  if (op == "gelu")
    return gelu(x, kv.count("approximate") && kv.at("approximate") == "tanh"
                       ? GeluApproximation::tanh
                       : GeluApproximation::none);
  if (op == "silu") return silu(x);
  if (op == "l1_loss") return l1_loss(x, t, r);
  if (op == "smooth_l1_loss") return smooth_l1_loss(x, t, r, number("beta", 1));
  if (op == "huber_loss") return huber_loss(x, t, r, number("delta", 1));
  if (op == "kl_div")
    return kl_div(x, t, red == "batchmean" ? KlDivReduction::batchmean : KlDivReduction(r),
                  number("log_target", 0) != 0);
  throw std::invalid_argument("unknown op " + op);
}

double difference(double a, double e) {
  if (std::isnan(e) || std::isnan(a)) return std::isnan(e) && std::isnan(a) ? 0 : INFINITY;
  if (std::isinf(e) || std::isinf(a)) return a == e ? 0 : INFINITY;
  return std::abs(a - e) / (1 + std::abs(e));
}

// Runs setting `index` on one set; returns the largest difference from PyTorch's output and
// gradients, and names where it is in `where`.
template <class T>
double compare(const TensorFile& inputs, const TensorFile& torch, const std::string& line,
               std::size_t index, const std::string& set, const char* dtype, std::string& where) {
  std::string op;
  const auto kv = parse(line, op);
  const auto input = [&](const std::string& name) { return inputs.find(name + set)->f64; };
  Var<T> x = Var<T>::parameter(interop::as<T>(input("x")));
  Var<T> t = Var<T>::parameter(interop::as<T>(input(target_of(op, kv))));
  Var<T> y = apply(op, kv, x, t);
  y.backward(y.shape().rank() ? interop::as<T>(input("gy")) : interop::as<T>(input("gs")));
  double worst = 0;
  auto check = [&](const char* what, const Tensor<T>& got) {
    const std::string name = std::to_string(index) + "." + set + "." + dtype + "." + what;
    const StoredTensor* want = torch.find(name);
    if (!want) throw std::runtime_error("PyTorch's results lack " + name);
    const Tensor<T>& e = interop::stored<T>(*want);
    if (e.shape() != got.shape()) throw std::runtime_error(name + ": shapes differ");
    for (std::size_t k = 0; k < got.numel(); ++k) {
      const double d = difference(got[k], e[k]);
      if (d > worst || (d == worst && where.empty())) {
        worst = d;
        where = std::string(what) + "[" + std::to_string(k) + "] " + std::to_string(got[k]) +
                " vs " + std::to_string(e[k]);
      }
    }
  };
  check("y", y.value());
  check("gx", x.grad());
  if (is_loss(op)) check("gt", t.grad());
  return worst;
}

// Uniform values in [lo, hi).
Tensor<double> uniform(nn::Generator& g, const Shape& shape, double lo, double hi) {
  Tensor<double> t(shape);
  nn::uniform(t, g, lo, hi);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string mode = argv[1], dir = argv[2];
  const std::vector<std::string> lines = settings();
  if (mode == "write") {
    nn::Generator g(13);
    TensorFile f;
    auto add = [&](const std::string& name, const Tensor<double>& t) {
      interop::add_f64(f, name, t);
    };
    const Shape shape{rows, cols};
    Tensor<double> x = uniform(g, shape, -3, 3), t = uniform(g, shape, -3, 3);
    // Exact kinks: x = ±0; d = 0; |d| = 0.5 and 1 (β and δ used above), exactly representable.
    x[0] = 0.0, x[1] = -0.0;
    t[2] = x[2], t[3] = x[3];
    x[4] = 1.75, t[4] = 1.25;
    x[5] = -1.0, t[5] = 0.0;
    Tensor<double> p = uniform(g, shape, 0, 1);
    p[6] = p[7] = 0;  // kl_div's t = 0
    add("xf", x);
    add("tf", t);
    add("pf", p);
    add("logpf", uniform(g, shape, -4, 0));
    Tensor<double> gy(shape);
    nn::normal(gy, g, 0.0, 1.0);
    add("gyf", gy);
    add("gsf", Tensor<double>::scalar(0.7));
    const double nan = NAN, inf = INFINITY;
    const Shape special{2, cols};
    add("xs", Tensor<double>(special, {nan, inf, -inf, 0, -0.0, 1, -1, 40, -40, 800, -800, 1e-300,
                                       -20, 0.5, nan, -inf}));
    add("ts", Tensor<double>(special,
                             {0, inf, -inf, nan, 0, 1, 2, -inf, inf, 800, 0, 0, -20, nan, 1, 3}));
    add("ps", Tensor<double>(special, {0, 0.5, 0.5, nan, inf, 0, -0.3, 0.2, 1, 0, 0.1, 0, 0.25, inf,
                                       nan, 0.5}));
    add("logps", Tensor<double>(special, {-inf, -1, 0, nan, inf, -inf, -2, -0.5, inf, -1, -inf,
                                          -800, -3, 1, nan, -0.1}));
    Tensor<double> gys(special);
    nn::normal(gys, g, 0.0, 1.0);
    add("gys", gys);
    add("gss", Tensor<double>::scalar(-1.3));
    interop::set_settings(f, lines);
    save_tensors(dir + "/inputs.safetensors", f);
    return 0;
  }
  const TensorFile inputs = load_tensors(dir + "/inputs.safetensors");
  const TensorFile torch = load_tensors(dir + "/torch_ops.safetensors");
  interop::Tally tally;
  for (std::size_t i = 0; i < lines.size(); ++i)
    for (const char* set : {"f", "s"}) {
      std::string where64, where32;
      const double d64 = compare<double>(inputs, torch, lines[i], i, set, "F64", where64);
      const double d32 = compare<float>(inputs, torch, lines[i], i, set, "F32", where32);
      const bool ok = tally.add(d64, 1e-12, d32, 1e-6);
      std::printf("%-4s %-45s %s  double %.1e (%s)  float %.1e (%s)\n", ok ? "ok" : "FAIL",
                  lines[i].c_str(), set, d64, where64.c_str(), d32, where32.c_str());
    }
  return tally.finish();
}
