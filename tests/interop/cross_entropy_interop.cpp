// Half of the cross-entropy comparison with PyTorch (cross_entropy_interop.py is the other half).
//   write DIR: saves logits x [6, 5] (one row far out, ±60), labels, probability targets p,
//              class weights w and upstream gradients, and the list of settings: class labels or
//              probabilities, with or without weights, label smoothing 0, 0.1, 0.37 and 1, and
//              every reduction.
//   read DIR:  runs softmax_cross_entropy on each setting in float and in double, and compares
//              the loss and the logits' gradient with torch.nn.functional.cross_entropy's.
// Difference of a value a from PyTorch's e: |a − e| / (1 + |e|). Tolerances: double 1e-12, float
// 5e-6 (the far-out row's loss is logsumexp ≈ 60 minus a logit, and floats near 60 are 3.8e-6
// apart). Measured: at most 1.6e-15 (double) and 1.2e-6 (float).
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

constexpr std::size_t rows = 6, classes = 5;

// Each line: "cross_entropy" and key=value options (target, weight, label_smoothing, reduction).
std::vector<std::string> settings() {
  std::vector<std::string> s;
  for (const char* target : {"labels", "probs"})
    for (const char* weight : {"0", "1"})
      for (const char* eps : {"0", "0.1", "0.37", "1"})
        for (const char* r : {"none", "mean", "sum"})
          s.push_back(std::string("cross_entropy target=") + target + " weight=" + weight +
                      " label_smoothing=" + eps + " reduction=" + r);
  return s;
}

std::map<std::string, std::string> parse(const std::string& line) {
  std::istringstream words(line);
  std::string op;
  words >> op;
  std::map<std::string, std::string> kv;
  for (std::string w; words >> w;) {
    const std::size_t eq = w.find('=');
    kv[w.substr(0, eq)] = w.substr(eq + 1);
  }
  return kv;
}

// Runs setting `index`; returns the largest difference from PyTorch's loss and gradient, and
// names where it is in `where`.
template <class T>
double compare(const TensorFile& inputs, const TensorFile& torch, const std::string& line,
               std::size_t index, const char* dtype, std::string& where) {
  const auto kv = parse(line);
  const auto input = [&](const std::string& name) { return inputs.find(name)->f64; };
  CrossEntropyOptions<T> o;
  const std::string red = kv.at("reduction");
  o.reduction = red == "none" ? Reduction::none : red == "sum" ? Reduction::sum : Reduction::mean;
  if (kv.at("weight") == "1") o.class_weights = interop::as<T>(input("w"));
  o.label_smoothing = std::stod(kv.at("label_smoothing"));
  Var<T> x = Var<T>::parameter(interop::as<T>(input("x")));
  Var<T> y;
  if (kv.at("target") == "labels") {
    std::vector<std::int64_t> labels;
    for (double v : input("labels")) labels.push_back(static_cast<std::int64_t>(std::lround(v)));
    y = softmax_cross_entropy(x, labels, o);
  } else {
    y = softmax_cross_entropy(x, interop::as<T>(input("p")), o);
  }
  y.backward(y.shape().rank() ? interop::as<T>(input("gy")) : interop::as<T>(input("gs")));
  double worst = 0;
  auto check = [&](const char* what, const Tensor<T>& got) {
    const std::string name = std::to_string(index) + "." + dtype + "." + what;
    const StoredTensor* want = torch.find(name);
    if (!want) throw std::runtime_error("PyTorch's results lack " + name);
    const Tensor<T>& e = interop::stored<T>(*want);
    if (e.shape() != got.shape()) throw std::runtime_error(name + ": shapes differ");
    for (std::size_t k = 0; k < got.numel(); ++k) {
      const double d = std::abs(static_cast<double>(got[k]) - e[k]) / (1 + std::abs(e[k]));
      if (!(d <= worst)) {
        worst = std::isnan(d) ? INFINITY : d;
        where = std::string(what) + "[" + std::to_string(k) + "] " + std::to_string(got[k]) +
                " vs " + std::to_string(e[k]);
      }
    }
  };
  check("y", y.value());
  check("gx", x.grad());
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string mode = argv[1], dir = argv[2];
  const std::vector<std::string> lines = settings();
  if (mode == "write") {
    nn::Generator g(29);
    TensorFile f;
    auto add = [&](const std::string& name, const Tensor<double>& t) {
      interop::add_f64(f, name, t);
    };
    Tensor<double> x({rows, classes});
    nn::uniform(x, g, -3.0, 3.0);
    for (std::size_t j = 0; j < classes; ++j) x[j] = j % 2 ? 60.0 : -60.0;  // far-out logits
    add("x", x);
    add("labels", Tensor<double>({rows}, {1, 0, 4, 4, 2, 3}));
    Tensor<double> p({rows, classes});
    nn::uniform(p, g, 0.05, 1.0);
    for (std::size_t i = 0; i < rows; ++i) {  // rows of probabilities
      double s = 0;
      for (std::size_t j = 0; j < classes; ++j) s += p[i * classes + j];
      for (std::size_t j = 0; j < classes; ++j) p[i * classes + j] /= s;
    }
    add("p", p);
    add("w", Tensor<double>({classes}, {0.5, 2.0, 1.0, 0.25, 3.0}));
    Tensor<double> gy({rows});
    nn::normal(gy, g, 0.0, 1.0);
    add("gy", gy);
    add("gs", Tensor<double>::scalar(0.7));
    interop::set_settings(f, lines);
    save_tensors(dir + "/inputs.safetensors", f);
    return 0;
  }
  const TensorFile inputs = load_tensors(dir + "/inputs.safetensors");
  const TensorFile torch = load_tensors(dir + "/torch_ce.safetensors");
  interop::Tally tally;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string where64, where32;
    const double d64 = compare<double>(inputs, torch, lines[i], i, "F64", where64);
    const double d32 = compare<float>(inputs, torch, lines[i], i, "F32", where32);
    const bool ok = tally.add(d64, 1e-12, d32, 5e-6);
    std::printf("%-4s %-80s double %.1e (%s)  float %.1e (%s)\n", ok ? "ok" : "FAIL",
                lines[i].c_str(), d64, where64.c_str(), d32, where32.c_str());
  }
  return tally.finish();
}
