#include "tapegrad/train/model_file.hpp"

#include <cmath>
#include <stdexcept>

#include "tapegrad/layers/safetensors.hpp"
#include "text.hpp"

namespace tapegrad {
namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + names[i];
  return out;
}

template <class Range>
std::vector<double> values_of(const Range& t) {
  return std::vector<double>(t.begin(), t.end());
}

const std::string& key_of(const TensorFile& f, const std::string& path, const std::string& key) {
  const auto it = f.metadata.find(key);
  if (it == f.metadata.end())
    throw std::runtime_error(path + ": metadata " + key +
                             " is missing (was the file written by tapegrad train --task "
                             "regression?)");
  return it->second;
}

// A [K] tensor from the list under `key`; throws naming the key if malformed or of another count.
Tensor<float> tensor_of(const TensorFile& f, const std::string& path, const std::string& key,
                        std::size_t count) {
  std::vector<double> v;
  const std::string& text = key_of(f, path, key);
  if (!detail::parse_number_list(text, v) || v.size() != count)
    throw std::runtime_error(path + ": metadata " + key + ": \"" + text + "\" is not " +
                             std::to_string(count) + " numbers separated by commas");
  Tensor<float> t(Shape{count});
  for (std::size_t i = 0; i < count; ++i) t[i] = static_cast<float>(v[i]);
  return t;
}

}  // namespace

void save_regression_model(const std::string& path, const nn::Module<float>& model,
                           const RegressionModelInfo& info) {
  TensorFile file;
  file.tensors = nn::state_tensors(model);
  file.metadata = {{"tapegrad.task", "regression"},
                   {"tapegrad.target_columns", join(info.target_names)},
                   {"tapegrad.target_mean", detail::exact_list(values_of(info.targets.mean))},
                   {"tapegrad.target_std", detail::exact_list(values_of(info.targets.stddev))},
                   {"tapegrad.loss", info.loss.name()},
                   {"tapegrad.huber_delta", detail::exact_text(info.loss.huber_delta)}};
  if (info.inputs.mean.defined()) {
    file.metadata["tapegrad.input_mean"] = detail::exact_list(values_of(info.inputs.mean));
    file.metadata["tapegrad.input_std"] = detail::exact_list(values_of(info.inputs.stddev));
  }
  save_tensors(path, file);
}

Task model_file_task(const std::string& path) {
  const TensorFile file = load_tensors(path);
  const auto it = file.metadata.find("tapegrad.task");
  return it != file.metadata.end() && it->second == "regression" ? Task::regression
                                                                 : Task::classification;
}

RegressionModelInfo load_regression_model(const std::string& path, nn::Module<float>& model) {
  const TensorFile file = load_tensors(path);
  const std::string& task = key_of(file, path, "tapegrad.task");
  if (task != "regression")
    throw std::runtime_error(path + ": metadata tapegrad.task: " + quote(task) +
                             " is not \"regression\"");
  RegressionModelInfo info;
  info.target_names = detail::split(key_of(file, path, "tapegrad.target_columns"), ',');
  const std::size_t k = info.target_names.size();
  info.targets.mean = tensor_of(file, path, "tapegrad.target_mean", k);
  info.targets.stddev = tensor_of(file, path, "tapegrad.target_std", k);
  for (std::size_t i = 0; i < k; ++i)
    if (!std::isfinite(info.targets.mean[i]) || !(info.targets.stddev[i] > 0) ||
        !std::isfinite(info.targets.stddev[i]))
      throw std::runtime_error(path + ": metadata tapegrad.target_mean/target_std: target \"" +
                               info.target_names[i] + "\" has no finite μ and σ > 0");
  if (file.metadata.count("tapegrad.input_mean")) {
    const std::size_t f = detail::split(file.metadata.at("tapegrad.input_mean"), ',').size();
    info.inputs.mean = tensor_of(file, path, "tapegrad.input_mean", f);
    info.inputs.stddev = tensor_of(file, path, "tapegrad.input_std", f);
  }
  std::vector<double> delta;
  const std::string& delta_text = key_of(file, path, "tapegrad.huber_delta");
  if (!detail::parse_number_list(delta_text, delta) || delta.size() != 1)
    throw std::runtime_error(path + ": metadata tapegrad.huber_delta: \"" + delta_text +
                             "\" is not a number");
  try {
    info.loss = RegressionLoss::parse(key_of(file, path, "tapegrad.loss"), delta[0]);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": metadata tapegrad.loss: " + e.what());
  }
  nn::load_state_tensors(model, file, path);
  return info;
}

}  // namespace tapegrad
