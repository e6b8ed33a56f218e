// Checkpoints: everything a training run needs to continue exactly where it stopped — the
// model's parameters, the optimiser's momentum and step count, the shuffling stream's state,
// the epoch and step, the early-stopping bookkeeping and the metrics so far — in one
// safetensors file (tensors plus text metadata), written atomically.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "tapegrad/layers/module.hpp"
#include "tapegrad/train/dataset.hpp"
#include "tapegrad/train/metrics.hpp"
#include "tapegrad/train/sgd.hpp"

namespace tapegrad {

struct TrainingState {
  std::size_t epoch = 0;  // epochs completed
  std::size_t step = 0;   // optimiser steps taken
  std::size_t best_epoch = 0;
  double best_val_loss = std::numeric_limits<double>::infinity();
  std::size_t epochs_without_improvement = 0;
  std::vector<EpochMetrics> history;
  std::vector<Tensor<float>> best_weights;  // empty when there is no validation set
};

void save_checkpoint(const std::string& path, const nn::Module<float>& model,
                     const SGD<float>& optimizer, const ShuffleRng& rng,
                     const TrainingState& state);

// Restores model, optimiser and shuffling stream from `path` and returns the rest. Checks the
// file first (format, every tensor's presence and shape): on error nothing is changed.
TrainingState load_checkpoint(const std::string& path, nn::Module<float>& model,
                              SGD<float>& optimizer, ShuffleRng& rng);

}  // namespace tapegrad
