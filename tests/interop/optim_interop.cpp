// Half of the optimiser comparison with PyTorch (optim_interop.py is the other half).
//   write DIR: saves a linear regression problem (initial W [3, 5], b [3]; 100 batches X, Y) and
//              the list of optimiser settings to run.
//   read DIR:  runs each setting for 100 steps in float and in double, and compares W and b
//              (and the norms clip_grad_norm returned) with what torch.optim computed.
// Tolerances: double within 1e-12 relative (the rules must agree up to the last bits of a few
// roundings); float within 1e-6 relative (float rounding, compounded over 100 steps). Measured:
// at most 3.2e-16 and 1.7e-7.
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "interop_io.hpp"
#include "tapegrad/layers/init.hpp"
#include "tapegrad/layers/safetensors.hpp"
#include "tapegrad/tapegrad.hpp"
#include "tapegrad/train/adagrad.hpp"
#include "tapegrad/train/adam.hpp"
#include "tapegrad/train/clip_grad.hpp"
#include "tapegrad/train/rmsprop.hpp"
#include "tapegrad/train/sgd.hpp"

using namespace tapegrad;

namespace {

constexpr std::size_t steps = 100, batch = 8, in = 5, out = 3;

// Each line: an optimiser, then key=value settings (the names of torch.optim's arguments), and
// optionally clip_norm=N with clip_type=2|inf, or clip_value=V.
const char* const settings[] = {
    "SGD lr=0.05",
    "SGD lr=0.05 momentum=0.9 dampening=0.1 weight_decay=0.01",
    "SGD lr=0.05 momentum=0.9 nesterov=1 weight_decay=0.001 clip_norm=0.5 clip_type=2",
    "Adam lr=0.01",
    "Adam lr=0.02 beta1=0.8 beta2=0.95 eps=1e-6 weight_decay=0.1",
    "Adam lr=0.01 amsgrad=1 clip_norm=1 clip_type=inf",
    "AdamW lr=0.01",
    "AdamW lr=0.02 weight_decay=0.5 amsgrad=1 clip_value=0.3",
    "RMSprop lr=0.01",
    "RMSprop lr=0.005 alpha=0.9 eps=1e-6 weight_decay=0.01 momentum=0.8 centered=1",
    "RMSprop lr=0.003 centered=1",
    "Adagrad lr=0.1",
    "Adagrad lr=0.2 lr_decay=0.01 weight_decay=0.05 initial_accumulator_value=0.3 eps=1e-8",
};

std::map<std::string, double> parse(const std::string& line, std::string& kind) {
  std::istringstream words(line);
  words >> kind;
  std::map<std::string, double> kv;
  for (std::string w; words >> w;) {
    const std::size_t eq = w.find('=');
    const std::string value = w.substr(eq + 1);
    kv[w.substr(0, eq)] = value == "inf" ? INFINITY : std::stod(value);
  }
  return kv;
}

template <class T>
std::unique_ptr<Optimizer<T>> make(const std::string& kind, std::map<std::string, double> kv,
                                   std::vector<Var<T>> params) {
  auto get = [&](const char* key, double fallback) {
    return kv.count(key) ? kv.at(key) : fallback;
  };
  if (kind == "SGD")
    return std::make_unique<SGD<T>>(
        params, SgdOptions{get("lr", 0), get("momentum", 0), get("dampening", 0),
                           get("nesterov", 0) != 0, get("weight_decay", 0)});
  if (kind == "Adam" || kind == "AdamW") {
    AdamOptions o = kind == "AdamW" ? AdamW<T>::defaults() : AdamOptions{};
    o.lr = get("lr", o.lr);
    o.beta1 = get("beta1", o.beta1);
    o.beta2 = get("beta2", o.beta2);
    o.eps = get("eps", o.eps);
    o.weight_decay = get("weight_decay", o.weight_decay);
    o.amsgrad = get("amsgrad", 0) != 0;
    if (kind == "AdamW") return std::make_unique<AdamW<T>>(params, o);
    return std::make_unique<Adam<T>>(params, o);
  }
  if (kind == "RMSprop") {
    RmspropOptions o;
    o.lr = get("lr", o.lr);
    o.alpha = get("alpha", o.alpha);
    o.eps = get("eps", o.eps);
    o.weight_decay = get("weight_decay", o.weight_decay);
    o.momentum = get("momentum", o.momentum);
    o.centered = get("centered", 0) != 0;
    return std::make_unique<RMSprop<T>>(params, o);
  }
  AdagradOptions o;
  o.lr = get("lr", o.lr);
  o.lr_decay = get("lr_decay", o.lr_decay);
  o.weight_decay = get("weight_decay", o.weight_decay);
  o.initial_accumulator_value = get("initial_accumulator_value", o.initial_accumulator_value);
  o.eps = get("eps", o.eps);
  return std::make_unique<Adagrad<T>>(params, o);
}

// Runs one setting; returns the largest relative difference from PyTorch's W, b and norms.
template <class T>
double compare(const TensorFile& problem, const TensorFile& torch, const std::string& line,
               std::size_t index, const char* dtype) {
  std::string kind;
  const auto kv = parse(line, kind);
  Var<T> w = Var<T>::parameter(interop::as<T>(problem.find("W")->f64));
  Var<T> b = Var<T>::parameter(interop::as<T>(problem.find("b")->f64));
  const Tensor<double>& xs = problem.find("X")->f64;
  const Tensor<double>& ys = problem.find("Y")->f64;
  auto opt = make<T>(kind, kv, {w, b});
  Tensor<T> norms(Shape{steps});
  for (std::size_t s = 0; s < steps; ++s) {
    Tensor<T> x(Shape{batch, in}), y(Shape{batch, out});
    for (std::size_t k = 0; k < x.numel(); ++k) x[k] = static_cast<T>(xs[s * x.numel() + k]);
    for (std::size_t k = 0; k < y.numel(); ++k) y[k] = static_cast<T>(ys[s * y.numel() + k]);
    opt->zero_grad();
    mse_loss(linear(Var<T>(x), w, b), Var<T>(y)).backward();
    norms[s] = 0;
    if (kv.count("clip_norm"))
      norms[s] = static_cast<T>(clip_grad_norm<T>({w, b}, kv.at("clip_norm"),
                                                  kv.count("clip_type") ? kv.at("clip_type") : 2));
    if (kv.count("clip_value")) clip_grad_value<T>({w, b}, kv.at("clip_value"));
    opt->step();
  }
  double worst = 0;
  auto check = [&](const char* what, const Tensor<T>& got) {
    const std::string name = std::to_string(index) + "." + dtype + "." + what;
    const StoredTensor* want = torch.find(name);
    if (!want) throw std::runtime_error("PyTorch's results lack " + name);
    const Tensor<T>& e = interop::stored<T>(*want);
    for (std::size_t k = 0; k < got.numel(); ++k)
      worst =
          std::max(worst, std::abs(double(got[k]) - double(e[k])) / (1 + std::abs(double(e[k]))));
  };
  check("W", w.value());
  check("b", b.value());
  check("norms", norms);
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string mode = argv[1], dir = argv[2];
  if (mode == "write") {
    nn::Generator g(7);
    TensorFile f;
    auto add = [&](const char* name, const Shape& shape, double scale) {
      Tensor<double> t(shape);
      nn::normal(t, g, 0.0, scale);
      interop::add_f64(f, name, t);
    };
    add("W", {out, in}, 0.5);
    add("b", {out}, 0.5);
    add("X", {steps, batch, in}, 1.0);
    add("Y", {steps, batch, out}, 1.0);
    interop::set_settings(f, settings);
    save_tensors(dir + "/problem.safetensors", f);
    return 0;
  }
  const TensorFile problem = load_tensors(dir + "/problem.safetensors");
  const TensorFile torch = load_tensors(dir + "/torch_optim.safetensors");
  interop::Tally tally;
  for (std::size_t i = 0; i < sizeof settings / sizeof settings[0]; ++i) {
    const double d64 = compare<double>(problem, torch, settings[i], i, "F64");
    const double d32 = compare<float>(problem, torch, settings[i], i, "F32");
    const bool ok = tally.add(d64, 1e-12, d32, 1e-6);
    std::printf("%-4s %-80s  double %.1e  float %.1e\n", ok ? "ok" : "FAIL", settings[i], d64, d32);
  }
  return tally.finish();
}
