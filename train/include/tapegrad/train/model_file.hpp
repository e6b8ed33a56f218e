// The file of a trained regression model: model.safetensors with the model's parameters and
// buffers under its own names (as every model file; PyTorch loads it with strict
// load_state_dict) and, in the safetensors metadata (text, never tensors), what evaluation needs
// to feed the model and to read its outputs in the targets' units:
//   tapegrad.task            "regression"
//   tapegrad.target_columns  the target columns' names, joined by ","
//   tapegrad.target_mean     μ of each target on the training set  } exact numbers
//   tapegrad.target_std      σ of each target on the training set  } (C's "%a"), joined by ","
//   tapegrad.input_mean      μ and σ of each input feature, when the inputs were standardised
//   tapegrad.input_std       (absent otherwise)
//   tapegrad.loss            mse, l1 or huber; tapegrad.huber_delta its δ (exact number)
// Classification models are written without metadata, as before.
#pragma once

#include <string>
#include <vector>

#include "tapegrad/layers/module.hpp"
#include "tapegrad/train/dataset.hpp"
#include "tapegrad/train/metrics.hpp"
#include "tapegrad/train/trainer.hpp"

namespace tapegrad {

struct RegressionModelInfo {
  std::vector<std::string> target_names;
  Standardizer targets;  // μ, σ of the training targets, shape [K]
  Standardizer inputs;   // μ, σ of the input features; undefined tensors: not standardised
  RegressionLoss loss;
};

// Writes `model` and `info` to `path` (atomically).
void save_regression_model(const std::string& path, const nn::Module<float>& model,
                           const RegressionModelInfo& info);

// The task a model file was written for: regression if its metadata says so, else
// classification.
Task model_file_task(const std::string& path);

// Loads a regression model file into `model` (strictly, as nn::load_parameters: on error the
// model is unchanged) and returns its metadata. Throws naming the file and the key if the file
// is not a regression model's or a key is missing or malformed.
RegressionModelInfo load_regression_model(const std::string& path, nn::Module<float>& model);

}  // namespace tapegrad
