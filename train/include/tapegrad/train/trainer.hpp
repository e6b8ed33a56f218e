// The training loop: forward → loss → backward → step → zero_grad, over epochs, with metrics,
// progress, early stopping, checkpoints and resumption; for classification and for regression.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "tapegrad/layers/module.hpp"
#include "tapegrad/train/augment.hpp"
#include "tapegrad/train/data_parallel.hpp"
#include "tapegrad/train/dataset.hpp"
#include "tapegrad/train/make_optimizer.hpp"
#include "tapegrad/train/metrics.hpp"
#include "tapegrad/train/schedule.hpp"

namespace tapegrad {

// Thrown when training cannot go on: a loss that became NaN or infinite, a bad checkpoint.
class TrainingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The loss of regression, on standardised targets, averaged over every element of the batch:
// mse_loss, l1_loss or huber_loss (with δ = huber_delta) of autodiff/losses.hpp.
struct RegressionLoss {
  enum class Kind { mse, l1, huber };
  Kind kind = Kind::mse;
  double huber_delta = 1.0;
  // "mse", "l1" or "huber"; throws std::invalid_argument naming the valid ones, or if
  // huber_delta is not a finite number > 0.
  static RegressionLoss parse(const std::string& name, double huber_delta = 1.0);
  const char* name() const;
};

struct TrainOptions {
  std::size_t epochs = 15;
  std::size_t batch_size = 64;
  OptimizerSpec optimizer;  // SGD at lr 0.05 unless set
  // Before each step, scale the gradients to this global 2-norm at most (0: never), as
  // torch.nn.utils.clip_grad_norm_.
  double clip_grad_norm = 0.0;
  // Each group's rate follows it from the group's initial rate. A plateau schedule watches the
  // validation loss, or the training loss when there is no validation set.
  LrSchedule schedule;
  std::uint64_t seed = 0;  // the shuffling stream (and the augmentation's, derived from it)
  bool shuffle = true;
  // Random flips and translations of the training batches' images (augment.hpp), drawn from a
  // stream seeded with augmentation_seed(seed), apart from the shuffling; validation and test
  // data are never augmented. The training metrics are those of the augmented batches. Its
  // stream is saved in checkpoints: a resumed run draws what the uninterrupted run draws.
  Augmentation augmentation;
  // Stop after this many epochs without a better validation loss (0: never).
  std::size_t patience = 0;
  // Stop after this many optimiser steps in all (0: no limit). A run stopped inside an epoch
  // does not count it in the history; its checkpoint resumes inside it.
  std::size_t max_steps = 0;
  std::string checkpoint_path;  // rewritten atomically after every epoch (empty: none)
  std::string metrics_path;     // metrics CSV, rewritten after every epoch (empty: none)
  std::string curves_path;      // SVG of the loss and accuracy (or RMSE) curves (empty: none)
  RegressionLoss loss;          // train_regressor's loss (classification: cross-entropy always)
  // Classification: label smoothing ε ∈ [0, 1] of the training loss, PyTorch's
  // cross_entropy(label_smoothing=ε); the validation and test losses are plain cross-entropy.
  double label_smoothing = 0.0;
  // Flush denormal floats to zero on tapegrad's threads while training (set_flush_denormal in
  // threads.hpp; the previous mode is restored when training ends). A departure from PyTorch's
  // default, on purpose: values below 1.18e-38 become 0, and an SGD momentum buffer that decays
  // into them (weights of always-zero pixels, without weight decay) no longer slows each step's
  // update several-fold: the Fashion-MNIST MLP 784-256-128-10 with weight decay 0 took 0.9 s an
  // epoch from its second epoch on without, 0.6–0.7 s with (one thread of a 2-core Xeon).
  // torch.set_flush_denormal(True) gives PyTorch the same.
  bool flush_denormal = true;
  // Evaluated after every epoch for the metrics and curves only (never to choose anything), so
  // over-fitting shows beside the training curve; may be null.
  const Dataset* watch = nullptr;
  enum class Progress { automatic, bar, lines, none };
  Progress progress = Progress::automatic;  // automatic: a bar when stderr is a terminal
  std::ostream* log = nullptr;              // epoch lines; nullptr: std::cout
  // Data-parallel training (data_parallel.hpp; e.g. tapegrad::Distributed), or null. With it,
  // every process calls the trainer with the same model, data and options: the processes check
  // that they agree (DistributedError otherwise), rank 0's initial weights are copied to all,
  // each process takes its share of every batch of batch_size (the global batch), the gradients
  // are averaged over the global batch, and the training metrics are summed over the processes.
  // Every process draws the augmentation of the whole global batch and applies its share's
  // draws (each sample is augmented as in one process).
  // BatchNorm normalises with each process's own share; its running statistics are rank 0's,
  // copied to every process before each evaluation. For classification each process evaluates
  // its share of the validation and test sets and the sums are reduced; regression evaluates
  // them whole on every process (equal weights, equal results). Only rank 0 logs and writes
  // the metrics, curves and checkpoints; a checkpoint resumes on any number of processes (every
  // process reads it).
  DataParallel* parallel = nullptr;
};

struct TrainResult {
  std::vector<EpochMetrics> history;
  std::size_t best_epoch = 0;  // with validation: the epoch whose weights the model ends with
  double best_val_loss = std::numeric_limits<double>::infinity();
  bool stopped_early = false;
  std::size_t steps = 0;
  // Regression: the μ and σ of each target column of the training set, with which the model
  // learned standardised targets (what evaluate_regressor needs); empty for classification.
  Standardizer target_scaler;
};

// Trains `model` with softmax cross-entropy on `train` (inputs already shaped for the model),
// evaluating `validation` (may be null) after each epoch. With validation, the model ends with
// its best weights (lowest validation loss). With `resume_from`, continues the run saved in that
// checkpoint: the final weights are bit-identical to an uninterrupted run's (same options, one
// BLAS thread).
TrainResult train_classifier(nn::Module<float>& model, const Dataset& train,
                             const Dataset* validation, const TrainOptions& options,
                             const std::string& resume_from = "");

// Trains `model` to predict `train`'s regression targets [N, K] (its output must be [B, K]):
// the targets are standardised per column with the μ and σ of `train`'s own targets
// (result.target_scaler; a constant column gets σ = 1), the model learns the standardised
// targets with options.loss, and the metrics (MAE, RMSE, R² of EpochMetrics) are in the
// targets' units. The validation loss (early stopping, the best model, the plateau schedule) is
// options.loss on the standardised targets. Otherwise as train_classifier: resuming from a
// checkpoint gives bit-identical weights; the checkpoint holds the targets' μ and σ, and a
// resumed run refuses a training set whose differ.
TrainResult train_regressor(nn::Module<float>& model, const Dataset& train,
                            const Dataset* validation, const TrainOptions& options,
                            const std::string& resume_from = "");

// Throws TrainingError naming `source`, the parameter and the element if a parameter of `model`
// holds NaN or an infinity.
void require_finite_parameters(const nn::Module<float>& model, const std::string& source);

struct Evaluation {
  double loss = 0;      // mean softmax cross-entropy
  double accuracy = 0;  // fraction of argmax predictions equal to the label
  std::vector<double> per_class_accuracy;
  std::vector<std::vector<std::size_t>> confusion;  // [true class][predicted class]
};

// Evaluates `model` (in eval mode, recording nothing) on `data`, batch by batch. Refuses
// non-finite parameters or inputs, and a model whose output is not [B, data.classes] (checked
// before the confusion matrix is sized by the classes).
Evaluation evaluate_classifier(nn::Module<float>& model, const Dataset& data,
                               std::size_t batch_size = 500);

struct RegressionEvaluation {
  double loss = 0;            // `loss` on the standardised targets, averaged over every element
  RegressionMetrics metrics;  // in the targets' units (metrics.hpp defines them)
};

// Evaluates a regression `model` (in eval mode, recording nothing) on `data`'s targets: its
// outputs are standardised predictions, un-standardised with `target_scaler` (μ and σ of the
// training targets, as TrainResult::target_scaler) before the metrics. Refuses non-finite
// parameters, inputs or targets, a scaler of another width than the targets, and a model whose
// output is not [B, K].
RegressionEvaluation evaluate_regressor(nn::Module<float>& model, const Dataset& data,
                                        const Standardizer& target_scaler,
                                        const RegressionLoss& loss = {},
                                        std::size_t batch_size = 500);

}  // namespace tapegrad
