#include "tapegrad/train/checkpoint.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "tapegrad/layers/safetensors.hpp"
#include "tapegrad/train/augment.hpp"
#include "text.hpp"

namespace tapegrad {
namespace {

constexpr const char* format_tag = "tapegrad-checkpoint-3";
// Format 2 saved only SGD's momentum buffers ("momentum.<parameter name>", and the count
// "optimizer_steps"); format 1 also has no fields for a position inside an epoch: its runs
// stopped at an epoch's end.
constexpr const char* format_2_tag = "tapegrad-checkpoint-2";
constexpr const char* format_1_tag = "tapegrad-checkpoint-1";

std::runtime_error field_error(const std::string& path, const std::string& key,
                               const std::string& what) {
  return std::runtime_error(path + ": checkpoint field " + key + ": " + what);
}

// Doubles as exact text (hexadecimal floating point), so a resumed run compares bit for bit.
std::string exact(double v) {
  return detail::exact_text(v);
}
double parse_exact(const std::string& path, const std::string& key, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') throw field_error(path, key, "\"" + text + "\" is malformed");
  return v;
}
// A count is written as decimal digits; anything else, or a value beyond 64 bits, is refused.
std::size_t parse_count(const std::string& path, const std::string& key, const std::string& text) {
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
  if (text.empty() || text.size() > 20 ||
      text.find_first_not_of("0123456789") != std::string::npos || errno == ERANGE)
    throw field_error(path, key, "\"" + text + "\" is not a count");
  return static_cast<std::size_t>(v);
}

// The numbers of a comma-separated list field.
std::vector<double> parse_list(const std::string& path, const std::string& key,
                               const std::string& text) {
  std::vector<double> out;
  if (!detail::parse_number_list(text, out))
    throw field_error(path, key, "\"" + text + "\" is malformed");
  return out;
}

const std::string& field(const TensorFile& f, const std::string& path, const std::string& key) {
  const auto it = f.metadata.find(key);
  if (it == f.metadata.end()) throw field_error(path, key, "missing");
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
                     const Optimizer<float>& optimizer, const ShuffleRng& rng,
                     const TrainingState& state) {
  TensorFile file;
  file.tensors = nn::state_tensors(model, "model.");
  const auto best = nn::state_tensors(model, "best.");  // the names and kinds
  if (best.size() == state.best_weights.size())         // else: no best weights yet
    for (std::size_t i = 0; i < best.size(); ++i) {
      const Tensor<float>& v = state.best_weights[i];
      StoredTensor t;
      if (best[i].second.i64.defined())
        t.i64 = Tensor<double>::from(v.shape(), v);
      else
        t.f32 = v;
      file.tensors.emplace_back(best[i].first, std::move(t));
    }
  file.metadata = {{"format", format_tag},
                   {"epoch", std::to_string(state.epoch)},
                   {"step", std::to_string(state.step)},
                   {"optimizer", optimizer.name()},
                   {"best_epoch", std::to_string(state.best_epoch)},
                   {"best_val_loss", exact(state.best_val_loss)},
                   {"epochs_without_improvement", std::to_string(state.epochs_without_improvement)},
                   {"shuffle_rng", rng.state()},
                   {"metrics_csv", metrics_csv(state.history, state.task)},
                   {"epoch_batches", std::to_string(state.epoch_batches)},
                   {"epoch_loss_sum", exact(state.epoch_loss_sum)},
                   {"epoch_correct", std::to_string(state.epoch_correct)},
                   {"epoch_seen", std::to_string(state.epoch_seen)},
                   {"plateau_best", exact(state.plateau.best)},
                   {"plateau_bad_epochs", std::to_string(state.plateau.bad_epochs)},
                   {"plateau_cooldown_left", std::to_string(state.plateau.cooldown_left)},
                   {"plateau_reductions", std::to_string(state.plateau.reductions)}};
  if (state.task == Task::regression) {
    file.metadata["task"] = "regression";
    file.metadata["target_mean"] = detail::exact_list(state.target_mean);
    file.metadata["target_std"] = detail::exact_list(state.target_std);
    file.metadata["epoch_abs_error"] = detail::exact_list(state.epoch_abs_error);
    file.metadata["epoch_squared_error"] = detail::exact_list(state.epoch_squared_error);
  }
  if (state.augmentation != "none") {
    file.metadata["augmentation"] = state.augmentation;
    file.metadata["augmentation_rng"] = state.augmentation_rng;
  }
  for (const auto& [name, generator] : model.named_generators())
    file.metadata["rng." + name] = generator->state();
  const OptimizerState<float> optimizer_state = optimizer.state();
  for (const auto& [name, tensor] : optimizer_state.tensors) {
    StoredTensor t;
    t.f32 = tensor;
    file.tensors.emplace_back("optimizer." + name, t);
  }
  for (const auto& [name, count] : optimizer_state.counts)
    file.metadata["optimizer." + name] = std::to_string(count);
  save_tensors(path, file);
}

TrainingState load_checkpoint(const std::string& path, nn::Module<float>& model,
                              Optimizer<float>& optimizer, ShuffleRng& rng) {
  const TensorFile file = load_tensors(path);
  const auto format = file.metadata.find("format");
  const bool format_1 = format != file.metadata.end() && format->second == format_1_tag;
  const bool format_2 = format != file.metadata.end() && format->second == format_2_tag;
  if (format == file.metadata.end() || (format->second != format_tag && !format_1 && !format_2))
    throw std::runtime_error(path + ": not a tapegrad checkpoint (no format tag " +
                             std::string(format_tag) + ")");
  const auto count = [&](const char* key) {
    return parse_count(path, key, field(file, path, key));
  };
  TrainingState s;
  s.epoch = count("epoch");
  s.step = count("step");
  s.best_epoch = count("best_epoch");
  s.best_val_loss = parse_exact(path, "best_val_loss", field(file, path, "best_val_loss"));
  s.epochs_without_improvement = count("epochs_without_improvement");
  if (!format_1) {
    s.epoch_batches = count("epoch_batches");
    s.epoch_loss_sum = parse_exact(path, "epoch_loss_sum", field(file, path, "epoch_loss_sum"));
    s.epoch_correct = count("epoch_correct");
    s.epoch_seen = count("epoch_seen");
  }
  if (!format_1 && !format_2) {
    s.plateau.best = parse_exact(path, "plateau_best", field(file, path, "plateau_best"));
    s.plateau.bad_epochs = count("plateau_bad_epochs");
    s.plateau.cooldown_left = count("plateau_cooldown_left");
    s.plateau.reductions = count("plateau_reductions");
  }
  const auto task = file.metadata.find("task");
  if (task != file.metadata.end()) {
    if (task->second != "regression")
      throw field_error(path, "task", quote(task->second) + " is not \"regression\"");
    s.task = Task::regression;
    const auto list = [&](const char* key) {
      return parse_list(path, key, field(file, path, key));
    };
    for (double v : list("target_mean")) s.target_mean.push_back(static_cast<float>(v));
    for (double v : list("target_std")) s.target_std.push_back(static_cast<float>(v));
    s.epoch_abs_error = list("epoch_abs_error");
    s.epoch_squared_error = list("epoch_squared_error");
    if (s.target_mean.empty() || s.target_std.size() != s.target_mean.size())
      throw field_error(path, "target_std",
                        std::to_string(s.target_std.size()) + " values for " +
                            std::to_string(s.target_mean.size()) + " targets");
  }
  try {
    s.history = parse_metrics_csv(field(file, path, "metrics_csv"));
  } catch (const std::invalid_argument& e) {
    throw field_error(path, "metrics_csv", e.what());
  }
  ShuffleRng restored;
  try {
    restored.set_state(field(file, path, "shuffle_rng"));
  } catch (const std::invalid_argument&) {
    throw field_error(path, "shuffle_rng", "malformed generator state");
  }
  const auto augmentation = file.metadata.find("augmentation");
  if (augmentation != file.metadata.end()) {
    try {
      s.augmentation = Augmentation::parse(augmentation->second).text();
    } catch (const std::invalid_argument& e) {
      throw field_error(path, "augmentation", e.what());
    }
    s.augmentation_rng = field(file, path, "augmentation_rng");
    try {
      ShuffleRng().set_state(s.augmentation_rng);
    } catch (const std::invalid_argument&) {
      throw field_error(path, "augmentation_rng", "malformed generator state");
    }
  }

  // Check and gather everything before changing anything.
  auto params = model.named_parameters();
  std::vector<Tensor<float>> values = nn::checked_state(model, file, path, "model.");
  bool has_best = false;
  for (const auto& [name, t] : file.tensors) has_best = has_best || name.rfind("best.", 0) == 0;
  if (has_best) s.best_weights = nn::checked_state(model, file, path, "best.");
  OptimizerState<float> optimizer_state;
  const bool old_format = format_1 || format_2;
  const std::string written_by = old_format ? "SGD" : field(file, path, "optimizer");
  if (written_by != optimizer.name())
    throw field_error(path, "optimizer",
                      "the checkpoint holds the state of " + quote(written_by) +
                          ", but this run uses " + optimizer.name());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& [name, p] = params[i];
    if (old_format && file.find("momentum." + name)) {
      optimizer_state.tensors.emplace_back(std::to_string(i) + ".momentum_buffer",
                                           f32(file, path, "momentum." + name, p.shape()));
      optimizer_state.counts.emplace_back(std::to_string(i) + ".step", count("optimizer_steps"));
    }
  }
  for (const auto& [name, stored] : file.tensors)
    if (name.rfind("optimizer.", 0) == 0) {
      if (stored.dtype() != "F32")
        throw std::runtime_error(path + ": tensor " + quote(name) + " is " + stored.dtype() +
                                 ", the optimiser needs F32");
      optimizer_state.tensors.emplace_back(name.substr(10), stored.f32);
    }
  for (const auto& [key, text] : file.metadata)
    if (key.rfind("optimizer.", 0) == 0)
      optimizer_state.counts.emplace_back(key.substr(10), parse_count(path, key, text));
  std::vector<std::pair<nn::Generator*, nn::Generator>> streams;
  for (const auto& [name, generator] : model.named_generators()) {
    nn::Generator restored_stream;
    const std::string key = "rng." + name;
    try {
      restored_stream.set_state(field(file, path, key));
    } catch (const std::invalid_argument&) {
      throw field_error(path, key, "malformed generator state");
    }
    streams.emplace_back(generator, restored_stream);
  }
  try {
    optimizer.load_state(optimizer_state);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": the optimiser's state does not fit: " + e.what());
  }
  nn::set_state(model, std::move(values));
  for (auto& [generator, restored_stream] : streams) *generator = restored_stream;
  rng = restored;
  return s;
}

}  // namespace tapegrad
