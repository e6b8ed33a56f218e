// Choosing an optimiser by name, as the trainer and the `tapegrad` command do: one spec with
// every setting any of them takes (each optimiser reads its own, with PyTorch's defaults where
// a setting is left unset), and the parameter groups of the common recipe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tapegrad/layers/module.hpp"
#include "tapegrad/train/optimizer.hpp"

namespace tapegrad {

struct OptimizerSpec {
  enum class Kind { sgd, adam, adamw, rmsprop, adagrad };
  Kind kind = Kind::sgd;
  double lr = 0.05;
  std::optional<double> weight_decay;      // unset: 0, or AdamW's 1e-2
  double momentum = 0.0;                   // SGD, RMSprop
  double dampening = 0.0;                  // SGD
  bool nesterov = false;                   // SGD
  double beta1 = 0.9, beta2 = 0.999;       // Adam, AdamW
  bool amsgrad = false;                    // Adam, AdamW
  std::optional<double> eps;               // unset: 1e-8 (Adam, AdamW, RMSprop), 1e-10 (Adagrad)
  double alpha = 0.99;                     // RMSprop
  bool centered = false;                   // RMSprop
  double lr_decay = 0.0;                   // Adagrad
  double initial_accumulator_value = 0.0;  // Adagrad
  // Two groups: the weights with decay, and without it every bias and every parameter of
  // rank 1 (normalisation weights) — the usual recipe for decoupled or L2 weight decay.
  bool no_decay_bias_norm = false;

  // "sgd", "adam", "adamw", "rmsprop", "adagrad"; throws naming the valid ones otherwise.
  static Kind parse_kind(const std::string& name);
  static const char* name_of(Kind kind);
};

// The optimiser `spec` names, over `model`'s parameters (one group, or two with
// no_decay_bias_norm). Throws on invalid settings, naming the optimiser.
std::unique_ptr<Optimizer<float>> make_optimizer(const OptimizerSpec& spec,
                                                 const nn::Module<float>& model);

}  // namespace tapegrad
