// Training metrics: per-epoch records, the CSV file and the SVG picture of the curves.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/layers/safetensors.hpp"  // write_file_atomically

namespace tapegrad {

struct EpochMetrics {
  std::size_t epoch = 0;  // 1-based
  double train_loss = 0, train_accuracy = 0;
  double val_loss = 0, val_accuracy = 0;  // NaN when there is no validation set
  double lr = 0;
  double seconds = 0;
  double samples_per_second = 0;
  double test_loss = 0, test_accuracy = 0;  // NaN when no test set is watched
};

// The history as CSV: a header row, then one row per epoch.
std::string metrics_csv(const std::vector<EpochMetrics>& history);
// Parses what metrics_csv wrote (used to carry the history across a resumed run; rows without
// the test columns, from earlier versions, give NaN there); throws std::invalid_argument naming
// the row on a field that is not a number.
std::vector<EpochMetrics> parse_metrics_csv(const std::string& text);

// A self-contained SVG (no scripts, no external files) with two panels — loss and accuracy
// per epoch, training, validation and test, each where it was measured — that opens in any
// browser. The value axes are ticked at round values (1, 2 or 5 times a power of ten).
std::string curves_svg(const std::vector<EpochMetrics>& history);

}  // namespace tapegrad
