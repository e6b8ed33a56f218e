// Checkpoints: everything a training run needs to continue exactly where it stopped — the
// model's parameters, the optimiser's momentum and step count, the shuffling stream's state (and
// the augmentation stream's), the epoch and step (and, for a run stopped inside an epoch, the
// batches of it already taken), the early-stopping bookkeeping and the metrics so far — in one
// safetensors file (tensors plus text metadata), written atomically. Format
// "tapegrad-checkpoint-3"; files of formats 1 (which always stop at an epoch's end) and 2 still
// load.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "tapegrad/layers/module.hpp"
#include "tapegrad/train/dataset.hpp"
#include "tapegrad/train/metrics.hpp"
#include "tapegrad/train/optimizer.hpp"
#include "tapegrad/train/schedule.hpp"

namespace tapegrad {

struct TrainingState {
  std::size_t epoch = 0;  // epochs completed
  std::size_t step = 0;   // optimiser steps taken
  std::size_t best_epoch = 0;
  double best_val_loss = std::numeric_limits<double>::infinity();
  std::size_t epochs_without_improvement = 0;
  std::vector<EpochMetrics> history;
  // The model's parameters and buffers at the best epoch, in nn::state_values' order; empty
  // when there is no validation set.
  std::vector<Tensor<float>> best_weights;
  // Inside epoch `epoch + 1`: the batches already taken (0 at an epoch's end) and the training
  // loss sum, correct predictions and samples over them.
  std::size_t epoch_batches = 0;
  double epoch_loss_sum = 0;
  std::size_t epoch_correct = 0, epoch_seen = 0;
  PlateauState plateau;  // the plateau schedule's memory (unused by other schedules)
  // Regression (metadata "task" = "regression"; absent: classification): the μ and σ of the
  // training targets, and inside epoch `epoch + 1` the per-target sums of |error| and error² (in
  // the targets' units) over the batches taken (empty at an epoch's end).
  Task task = Task::classification;
  std::vector<float> target_mean, target_std;
  std::vector<double> epoch_abs_error, epoch_squared_error;
  // The run's augmentation (Augmentation::text(); metadata "augmentation", absent for "none")
  // and its stream's state after the batches taken (metadata "augmentation_rng"; empty without
  // augmentation).
  std::string augmentation = "none";
  std::string augmentation_rng;
};

// `rng` is the shuffling stream as it stood at the start of epoch `state.epoch + 1`, before
// that epoch's shuffle.
// The optimiser is saved by its name and its state (tensors "optimizer.<i>.<name>", counts in
// the metadata), whichever optimiser it is.
void save_checkpoint(const std::string& path, const nn::Module<float>& model,
                     const Optimizer<float>& optimizer, const ShuffleRng& rng,
                     const TrainingState& state);

// Restores model, optimiser and shuffling stream from `path` and returns the rest. Checks the
// file first (format, every field, every tensor's presence and shape): on error nothing is
// changed, and the error names the file and the field or tensor. The optimiser must be of the
// kind that wrote the checkpoint. Checkpoints of formats 1 and 2 (SGD's momentum buffers as
// "momentum.<parameter name>") still load into SGD.
TrainingState load_checkpoint(const std::string& path, nn::Module<float>& model,
                              Optimizer<float>& optimizer, ShuffleRng& rng);

}  // namespace tapegrad
