// Training metrics: per-epoch records, the CSV file and the SVG picture of the curves, and the
// regression metrics MAE, RMSE and R².
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "tapegrad/autodiff/tensor.hpp"
#include "tapegrad/layers/safetensors.hpp"  // write_file_atomically

namespace tapegrad {

// What a model is trained for: class labels (softmax cross-entropy, accuracy) or real-valued
// targets (a regression loss, MAE, RMSE and R²).
enum class Task { classification, regression };

struct EpochMetrics {
  static constexpr double none = std::numeric_limits<double>::quiet_NaN();
  std::size_t epoch = 0;  // 1-based
  double train_loss = 0, train_accuracy = 0;
  double val_loss = 0, val_accuracy = 0;  // NaN when there is no validation set
  double lr = 0;
  double seconds = 0;
  double samples_per_second = 0;
  double test_loss = 0, test_accuracy = 0;  // NaN when no test set is watched
  // Regression only (NaN otherwise; accuracies are NaN in regression), in the targets' units.
  // The training values are measured over the epoch's batches as they were trained.
  double train_mae = none, train_rmse = none, train_r2 = none;
  double val_mae = none, val_rmse = none, val_r2 = none;
  double test_mae = none, test_rmse = none, test_r2 = none;
};

// The history as CSV: a header row, then one row per epoch. Classification's columns:
//   epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,samples_per_second,
//   test_loss,test_accuracy
// Regression's, the accuracies replaced by MAE, RMSE and R²:
//   epoch,train_loss,train_mae,train_rmse,train_r2,val_loss,val_mae,val_rmse,val_r2,lr,seconds,
//   samples_per_second,test_loss,test_mae,test_rmse,test_r2
std::string metrics_csv(const std::vector<EpochMetrics>& history, Task task = Task::classification);
// Parses what metrics_csv wrote, of either task, by the names in its header (used to carry the
// history across a resumed run); columns the header lacks (the test columns of earlier versions)
// give NaN. Throws std::invalid_argument naming the row or column on a field that is not a
// number, a row of another width than the header, or a column name it does not know.
std::vector<EpochMetrics> parse_metrics_csv(const std::string& text);

// A self-contained SVG (no scripts, no external files) with two panels — the loss and, for
// classification, the accuracy or, for regression, the RMSE per epoch, training, validation and
// test, each where it was measured — that opens in any browser. The value axes are ticked at
// round values (1, 2 or 5 times a power of ten).
std::string curves_svg(const std::vector<EpochMetrics>& history, Task task = Task::classification);

// Regression metrics over N samples of K targets, errors e = prediction − target, per target
// column k and then averaged over the columns with equal weights (scikit-learn's
// multioutput="uniform_average"):
//   MAE_k  = Σ|e| / N
//   RMSE_k = √(Σe² / N)
//   R²_k   = 1 − SS_res / SS_tot, SS_res = Σe², SS_tot = Σ(y − ȳ_k)² with ȳ_k the mean of the
//            evaluated set's own column k; where SS_tot = 0 (a constant column) R²_k is 1 if
//            SS_res = 0 and 0 otherwise (scikit-learn's r2_score, force_finite=True).
struct RegressionMetrics {
  double mae = 0, rmse = 0, r2 = 0;
  std::vector<double> mae_per_target, rmse_per_target, r2_per_target;
};

// The metrics from per-column sums over `n` samples: Σ|e|, Σe² and SS_tot.
RegressionMetrics regression_metrics(const std::vector<double>& abs_error_sum,
                                     const std::vector<double>& squared_error_sum,
                                     const std::vector<double>& total_sum_of_squares,
                                     std::size_t n);
// The metrics of `predictions` against `targets`, both [N, K] (ShapeError otherwise).
RegressionMetrics regression_metrics(const Tensor<float>& predictions,
                                     const Tensor<float>& targets);
// SS_tot of each column of `targets` [N, K]: Σ(y − ȳ)² about the column's mean (in double, two
// passes).
std::vector<double> total_sum_of_squares(const Tensor<float>& targets);

}  // namespace tapegrad
