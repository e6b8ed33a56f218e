#include "tapegrad/train/checkpoint.hpp"

#include <cstdio>
#include <stdexcept>

#include "tapegrad/layers/safetensors.hpp"

namespace tapegrad {
namespace {

constexpr const char* format_tag = "tapegrad-checkpoint-1";

// Doubles as exact text (hexadecimal floating point), so a resumed run compares bit for bit.
std::string exact(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}
double parse_exact(const std::string& path, const std::string& key, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0')
    throw std::runtime_error(path + ": checkpoint field " + key + " is malformed");
  return v;
}
std::size_t parse_count(const std::string& path, const std::string& key, const std::string& text) {
  const double v = parse_exact(path, key, text);
  if (v < 0 || v != static_cast<double>(static_cast<std::size_t>(v)))
    throw std::runtime_error(path + ": checkpoint field " + key + " is not a count");
  return static_cast<std::size_t>(v);
}

const std::string& field(const TensorFile& f, const std::string& path, const std::string& key) {
  const auto it = f.metadata.find(key);
  if (it == f.metadata.end())
    throw std::runtime_error(path + ": checkpoint field " + key + " is missing");
  return it->second;
}

const Tensor<float>& f32(const TensorFile& f, const std::string& path, const std::string& name,
                         const Shape& shape) {
  const StoredTensor* t = f.find(name);
  if (!t)
    throw std::runtime_error(path + ": tensor \"" + name + "\" is missing from the checkpoint");
  if (t->dtype() != "F32" || t->shape() != shape)
    throw std::runtime_error(path + ": tensor \"" + name + "\" is " + t->dtype() + " " +
                             t->shape().to_string() + ", the model needs F32 " + shape.to_string());
  return t->f32;
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module<float>& model,
                     const SGD<float>& optimizer, const ShuffleRng& rng,
                     const TrainingState& state) {
  TensorFile file;
  const auto params = model.named_parameters();
  const auto& buffers = optimizer.momentum_buffers();
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& [name, p] = params[i];
    StoredTensor t;
    t.f32 = p.value();
    file.tensors.emplace_back("model." + name, t);
    if (i < buffers.size() && buffers[i].defined()) {
      StoredTensor m;
      m.f32 = buffers[i];
      file.tensors.emplace_back("momentum." + name, m);
    }
    if (i < state.best_weights.size()) {
      StoredTensor b;
      b.f32 = state.best_weights[i];
      file.tensors.emplace_back("best." + name, b);
    }
  }
  file.metadata = {{"format", format_tag},
                   {"epoch", std::to_string(state.epoch)},
                   {"step", std::to_string(state.step)},
                   {"optimizer_steps", std::to_string(optimizer.steps())},
                   {"best_epoch", std::to_string(state.best_epoch)},
                   {"best_val_loss", exact(state.best_val_loss)},
                   {"epochs_without_improvement", std::to_string(state.epochs_without_improvement)},
                   {"shuffle_rng", rng.state()},
                   {"metrics_csv", metrics_csv(state.history)}};
  save_tensors(path, file);
}

TrainingState load_checkpoint(const std::string& path, nn::Module<float>& model,
                              SGD<float>& optimizer, ShuffleRng& rng) {
  const TensorFile file = load_tensors(path);
  if (file.metadata.count("format") == 0 || file.metadata.at("format") != format_tag)
    throw std::runtime_error(path + ": not a tapegrad checkpoint (no format tag " +
                             std::string(format_tag) + ")");
  TrainingState s;
  s.epoch = parse_count(path, "epoch", field(file, path, "epoch"));
  s.step = parse_count(path, "step", field(file, path, "step"));
  const std::size_t optimizer_steps =
      parse_count(path, "optimizer_steps", field(file, path, "optimizer_steps"));
  s.best_epoch = parse_count(path, "best_epoch", field(file, path, "best_epoch"));
  s.best_val_loss = parse_exact(path, "best_val_loss", field(file, path, "best_val_loss"));
  s.epochs_without_improvement = parse_count(path, "epochs_without_improvement",
                                             field(file, path, "epochs_without_improvement"));
  s.history = parse_metrics_csv(field(file, path, "metrics_csv"));
  const std::string& rng_state = field(file, path, "shuffle_rng");

  // Check and gather everything before changing anything.
  auto params = model.named_parameters();
  std::vector<Tensor<float>> values, momentum;
  for (const auto& [name, p] : params) {
    values.push_back(f32(file, path, "model." + name, p.shape()));
    momentum.push_back(file.find("momentum." + name)
                           ? f32(file, path, "momentum." + name, p.shape())
                           : Tensor<float>());
    if (file.find("best." + name))
      s.best_weights.push_back(f32(file, path, "best." + name, p.shape()));
  }
  if (!s.best_weights.empty() && s.best_weights.size() != params.size())
    throw std::runtime_error(path + ": the checkpoint's best weights are incomplete");
  ShuffleRng restored;
  restored.set_state(rng_state);
  optimizer.set_state(std::move(momentum), optimizer_steps);
  for (std::size_t i = 0; i < params.size(); ++i) params[i].second.value() = values[i];
  rng = restored;
  return s;
}

}  // namespace tapegrad
