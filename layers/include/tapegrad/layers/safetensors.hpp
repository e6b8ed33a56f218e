// Parameter files in the safetensors format (what PyTorch and Hugging Face users exchange):
//   8 bytes   N, the header length, little-endian u64
//   N bytes   JSON: {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [b, e]}}
//             padded with spaces to a multiple of 8
//   the data  each tensor's little-endian elements at [b, e) after the header
// Writes are atomic (temporary file, fsync, rename). Reads check everything and name the file
// and the tensor in every error.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/autodiff/tensor.hpp"
#include "tapegrad/layers/module.hpp"

namespace tapegrad {

// One tensor of a file: F32 data in `f32` or F64 data in `f64` (the other undefined).
struct StoredTensor {
  Tensor<float> f32;
  Tensor<double> f64;
  std::string dtype() const { return f32.defined() ? "F32" : "F64"; }
  const Shape& shape() const { return f32.defined() ? f32.shape() : f64.shape(); }
};

struct TensorFile {
  std::vector<std::pair<std::string, StoredTensor>> tensors;  // in the file's order
  std::map<std::string, std::string> metadata;
  const StoredTensor* find(const std::string& name) const;
};

// Largest header accepted on reading (as the reference implementation: 100 MB).
inline constexpr std::size_t max_safetensors_header = 100'000'000;

// Writes the tensors (sorted by name, data packed in that order) and the metadata.
void save_tensors(const std::string& path, const TensorFile& file);
// Reads and validates a whole file: header length, JSON, dtypes (F32, F64), shapes, offsets
// (inside the data, no overlaps, no gaps), and the data's length.
TensorFile load_tensors(const std::string& path);

// Writes `contents` to `path` atomically: a temporary file in the same folder, flushed and
// synced, then renamed over `path`. On failure the old file is untouched and the error names
// the path.
void write_file_atomically(const std::string& path, const std::string& contents);

namespace nn {
// Saves every named parameter of `module` (dtype F32 for float, F64 for double).
template <class T>
void save_parameters(const Module<T>& module, const std::string& path);
// Loads `path` into `module`'s parameters. Throws, naming the file and the tensor, on a missing
// or extra tensor, a shape or dtype mismatch, or a malformed file; on any error the module's
// parameters are left exactly as they were.
template <class T>
void load_parameters(Module<T>& module, const std::string& path);
}  // namespace nn

}  // namespace tapegrad
