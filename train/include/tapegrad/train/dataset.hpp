// In-memory datasets of (inputs, class labels) or (inputs, real-valued targets), the batch
// loader, and preprocessing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/autodiff/tensor.hpp"

namespace tapegrad {

// N samples: inputs [N, ...sample shape] and, for classification, one class label in
// [0, classes) per sample or, for regression (when `targets` is defined), K real targets per
// sample, targets [N, K], with labels empty and classes 0.
struct Dataset {
  Tensor<float> inputs;
  std::vector<std::int64_t> labels;
  std::size_t classes = 0;
  Tensor<float> targets;                  // regression: [N, K]; undefined for classification
  std::vector<std::string> target_names;  // regression: the K targets' names, or empty

  bool regression() const { return targets.defined(); }
  std::size_t size() const { return regression() ? targets.dim(0) : labels.size(); }
  // K: the targets per sample (0 for classification).
  std::size_t target_count() const { return regression() ? targets.dim(1) : 0; }
  // The shape of one sample (inputs' shape without the leading N).
  Shape sample_shape() const;
  // Throws naming `what` if inputs and labels (or targets) disagree in count, a label is out of
  // range, or regression targets are not [N, K] with K names or none.
  void validate(const std::string& what) const;
  // Throws naming `what` and the sample if an input or a target is NaN or infinite.
  void check_finite(const std::string& what) const;
  // The samples at `indices`, in that order.
  Dataset subset(const std::vector<std::size_t>& indices) const;
};

// Splits off a validation set: a seeded random `fraction` of the samples (at least one, if
// fraction > 0) goes to the second dataset, the rest (in their original order) to the first.
std::pair<Dataset, Dataset> split_validation(const Dataset& data, double fraction,
                                             std::uint64_t seed);

// inputs ← inputs · factor (e.g. 1/255 to scale pixels to [0, 1]).
void scale_inputs(Dataset& data, float factor);

// Per-feature standardisation x ← (x − μ) / σ with μ, σ fitted on a training set only and
// applied to every split (σ = 1 where a feature is constant). σ is the population deviation
// (divided by N); sums are in double, μ and σ rounded to float.
struct Standardizer {
  Tensor<float> mean, stddev;  // the sample shape
  // Fitted on the inputs of `train`.
  static Standardizer fit(const Dataset& train);
  // Fitted on `samples` [N, ...] (e.g. a dataset's regression targets).
  static Standardizer fit(const Tensor<float>& samples);
  // Standardises the inputs of `data`.
  void apply(Dataset& data) const;
  // samples [N, ...] ← (samples − μ) / σ, and its inverse samples · σ + μ.
  void standardize(Tensor<float>& samples) const;
  void unstandardize(Tensor<float>& samples) const;
};

// The seeded random stream the loader shuffles with: std::mt19937_64 (bit-identical on every
// standard library) and our own bounded draw, so a seed gives the same order everywhere.
// Its state is text, for checkpoints.
class ShuffleRng {
 public:
  explicit ShuffleRng(std::uint64_t seed = 0) : engine_(seed) {}
  // Uniform in [0, n), n > 0 (Lemire's multiply-shift; bias below 2⁻⁴⁷ for n ≤ 2¹⁷).
  std::size_t below(std::size_t n);
  // Fisher–Yates.
  void shuffle(std::vector<std::size_t>& v);
  // Passes over `n` draws (as many as n calls of below() take).
  void discard(unsigned long long n) { engine_.discard(n); }
  std::string state() const;
  void set_state(const std::string& state);

 private:
  std::mt19937_64 engine_;
};

// The share of `count` items that shard `shard` of `shards` takes: [first, last), consecutive
// shares in shard order, the first count % shards shares one item longer than the rest (so a
// share may be empty when count < shards).
std::pair<std::size_t, std::size_t> shard_range(std::size_t count, std::size_t shard,
                                                std::size_t shards);

struct LoaderOptions {
  std::size_t batch_size = 64;
  bool shuffle = true;
  std::uint64_t seed = 0;
  bool drop_last = false;
  // Data-parallel training: every process draws the same order and batches of batch_size (the
  // global batch); this loader yields share `shard` of `shards` of each (shard_range).
  std::size_t shard = 0;
  std::size_t shards = 1;
};

// A batch: inputs [B, ...sample shape] and B labels (classification) or targets [B, K]
// (regression). Reused from batch to batch.
struct Batch {
  Tensor<float> inputs;
  std::vector<std::int64_t> labels;
  Tensor<float> targets;
  // The samples of the whole batch of which this is one share (LoaderOptions::shards);
  // size() when the loader is not sharded.
  std::size_t global_size = 0;
  // The position of this share's first sample in the whole batch (0 when not sharded).
  std::size_t global_offset = 0;
  std::size_t size() const { return inputs.defined() && inputs.rank() ? inputs.dim(0) : 0; }
};

// Iterates a dataset in batches, reshuffled (from one seeded stream) at each epoch start; the
// last short batch is kept unless drop_last. Filling reuses the batch's buffers: no allocation
// once the first epoch has sized them.
//   loader.start_epoch();  while (loader.next(batch)) { ... }
class DataLoader {
 public:
  DataLoader(const Dataset& data, const LoaderOptions& options);

  // Batches per epoch.
  std::size_t batches() const;
  // Begins an epoch: draws the order (if shuffling) and rewinds.
  void start_epoch();
  // Fills `batch` with the next batch of this epoch (this shard's share of it, which may be
  // empty); false when the epoch is over.
  bool next(Batch& batch);
  // Passes over the next `batches` batches of this epoch (to resume inside it).
  void skip(std::size_t batches);

  const LoaderOptions& options() const { return options_; }
  ShuffleRng& rng() { return rng_; }
  const ShuffleRng& rng() const { return rng_; }

 private:
  const Dataset& data_;
  LoaderOptions options_;
  ShuffleRng rng_;
  std::vector<std::size_t> order_;
  std::size_t cursor_ = 0;
};

}  // namespace tapegrad
