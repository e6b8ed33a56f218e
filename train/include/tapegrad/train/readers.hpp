// Readers for datasets on disk: the IDX format of MNIST / Fashion-MNIST (raw or gzip) and CSV.
// Every error names the file and what is wrong (with the line number, for CSV).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/train/dataset.hpp"

namespace tapegrad {

// An IDX array: its dimensions and its values (any IDX element type, converted to float).
struct IdxArray {
  std::vector<std::size_t> dims;
  std::vector<float> values;
};

// Reads an IDX file, gzip-compressed or not (magic 0x00 0x00 type rank, big-endian dims,
// big-endian values). Throws on a wrong magic, an unknown type, truncated or trailing data.
IdxArray read_idx(const std::string& path);

// Images [N, d1, ...] (pixel values as stored, e.g. 0–255) and their N labels in [0, classes).
Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         std::size_t classes = 10);

// The "train" or "test" split of an MNIST-layout folder (train-images-idx3-ubyte[.gz], …),
// pixels scaled to [0, 1].
Dataset load_mnist_folder(const std::string& folder, const std::string& split);

// Where Debian's dataset-fashion-mnist package puts the files.
inline const char* fashion_mnist_folder = "/usr/share/datasets/fashion-mnist";

struct CsvOptions {
  std::string label_column;  // header name of the label column; empty: the last column
  char delimiter = ',';
  std::size_t classes = 0;  // labels must lie in [0, classes); 0: max label + 1
  // Regression: real-valued targets instead of a label, from the header columns named in
  // target_columns (in that order; empty: the last column). label_column and classes must then
  // be unset.
  bool regression = false;
  std::vector<std::string> target_columns{};
};

// A CSV file with a header row: one integer class label column (or, for regression, one or more
// target columns, each value a finite number within float's range), every other column a
// number. Inputs are [N, F] with the features in file order; regression targets are [N, K] and
// named after their columns. Errors name the file, the line and the column.
Dataset read_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace tapegrad
