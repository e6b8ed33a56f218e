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
};

// The history as CSV: a header row, then one row per epoch.
std::string metrics_csv(const std::vector<EpochMetrics>& history);
// Parses what metrics_csv wrote (used to carry the history across a resumed run); throws
// std::invalid_argument naming the row on a field that is not a number.
std::vector<EpochMetrics> parse_metrics_csv(const std::string& text);

// A self-contained SVG (no scripts, no external files) with two panels — loss and accuracy
// per epoch, training and validation — that opens in any browser.
std::string curves_svg(const std::vector<EpochMetrics>& history);

}  // namespace tapegrad
