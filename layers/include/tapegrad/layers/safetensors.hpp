// Parameter files in the safetensors format (what PyTorch and Hugging Face users exchange):
//   8 bytes   N, the header length, little-endian u64
//   N bytes   JSON: {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [b, e]}}
//             padded with spaces to a multiple of 8
//   the data  each tensor's little-endian elements at [b, e) after the header
// Writes are atomic (temporary file, fsync, rename). Reads check the header against the file's
// size before reading or allocating anything, and name the file and the tensor in every error
// (names taken from the file are JSON-escaped, so they cannot forge lines or control codes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/autodiff/tensor.hpp"
#include "tapegrad/layers/module.hpp"

namespace tapegrad {

// One tensor of a file: F32 data in `f32`, F64 data in `f64`, or I64 data (counts such as
// BatchNorm's num_batches_tracked) in `i64` as exact doubles (|v| ≤ 2^53); the others undefined.
struct StoredTensor {
  Tensor<float> f32;
  Tensor<double> f64;
  Tensor<double> i64;
  std::string dtype() const { return f32.defined() ? "F32" : i64.defined() ? "I64" : "F64"; }
  const Shape& shape() const {
    return f32.defined() ? f32.shape() : i64.defined() ? i64.shape() : f64.shape();
  }
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
// Reads and validates a whole file: header length, JSON (no key given twice), dtypes (F32,
// F64, I64), shapes (element counts within 64 bits), offsets (inside the data, no overlaps, no
// gaps), and the data's length — all before the data are read.
TensorFile load_tensors(const std::string& path);

// `s` as a JSON string, for error messages that echo a name read from a file: quoted, with
// control characters (newlines, escape codes) escaped, so it cannot forge lines or codes.
std::string quote(const std::string& s);

// Writes `contents` to `path` atomically: a temporary file `path`.tmp-PID in the same folder,
// flushed and synced, then renamed over `path`. On failure the old file is untouched and the
// error names the path. Temporary files of `path` that a killed save left behind (named so,
// with the id of a process that no longer runs) are removed first.
void write_file_atomically(const std::string& path, const std::string& contents);

// A regular file open for reading, with its size, so that sizes read from it can be checked
// against that size before anything is allocated. Throws, naming the path, if it cannot be
// opened, is a directory, or is not a regular file (a device or a pipe has no size); `kind`
// completes that last message: "a parameter file" → "not a regular file (a parameter file must
// be one)".
class InputFile {
 public:
  InputFile(const std::string& path, const std::string& kind);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }
  // Reads up to `n` bytes at `offset`; returns how many (0 at the end of the file).
  std::size_t read_some(std::uint64_t offset, void* out, std::size_t n) const;
  // Reads exactly `n` bytes at `offset`; throws, naming the path, if the file ends first.
  void read(std::uint64_t offset, void* out, std::size_t n) const;

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

namespace nn {
// The module's state as stored tensors: every parameter and buffer (named as PyTorch's
// state_dict names them) with `prefix` before its name; F32 for float, F64 for double, and I64
// for count buffers (as PyTorch stores num_batches_tracked).
template <class T>
std::vector<std::pair<std::string, StoredTensor>> state_tensors(const Module<T>& module,
                                                                const std::string& prefix = "");
// The values of the tensors of `file` named `prefix` + each parameter's and buffer's name, in
// state_tensors' order, checked strictly: a missing tensor, one of the prefix the module does
// not have, a wrong shape or dtype throws, naming `path` and the tensor. Changes nothing.
template <class T>
std::vector<Tensor<T>> checked_state(const Module<T>& module, const TensorFile& file,
                                     const std::string& path, const std::string& prefix = "");
// Copies of the module's parameters and buffers, in state_tensors' order.
template <class T>
std::vector<Tensor<T>> state_values(const Module<T>& module);
// Sets the module's parameters and buffers, in state_tensors' order (values from
// checked_state or state_values of the same module).
template <class T>
void set_state(Module<T>& module, std::vector<Tensor<T>> values);
// checked_state, then set_state: on any error the module is left exactly as it was.
template <class T>
void load_state_tensors(Module<T>& module, const TensorFile& file, const std::string& path,
                        const std::string& prefix = "");
// Saves every parameter and buffer of `module` (state_tensors) to a safetensors file.
template <class T>
void save_parameters(const Module<T>& module, const std::string& path);
// Loads `path` into `module`'s parameters and buffers (load_state_tensors, strict).
template <class T>
void load_parameters(Module<T>& module, const std::string& path);
}  // namespace nn

}  // namespace tapegrad
