#include "tapegrad/train/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "text.hpp"

namespace tapegrad {

Shape Dataset::sample_shape() const {
  const Shape& s = inputs.shape();
  return Shape(s.begin() + 1, s.end());
}

void Dataset::validate(const std::string& what) const {
  if (!inputs.defined() || inputs.rank() < 1)
    throw std::invalid_argument(what + ": inputs must have a leading sample axis");
  if (regression()) {
    if (targets.rank() != 2)
      throw std::invalid_argument(what + ": targets of shape " + targets.shape().to_string() +
                                  " are not [N, K]");
    if (!labels.empty())
      throw std::invalid_argument(what +
                                  ": both targets and labels (a dataset has one or the "
                                  "other)");
    if (inputs.dim(0) != targets.dim(0))
      throw std::invalid_argument(what + ": " + std::to_string(inputs.dim(0)) + " inputs but " +
                                  std::to_string(targets.dim(0)) + " targets");
    if (!target_names.empty() && target_names.size() != targets.dim(1))
      throw std::invalid_argument(what + ": " + std::to_string(target_names.size()) +
                                  " target names for " + std::to_string(targets.dim(1)) +
                                  " targets");
    return;
  }
  if (inputs.dim(0) != labels.size())
    throw std::invalid_argument(what + ": " + std::to_string(inputs.dim(0)) + " inputs but " +
                                std::to_string(labels.size()) + " labels");
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= classes)
      throw std::invalid_argument(what + ": label " + std::to_string(labels[i]) + " of sample " +
                                  std::to_string(i) + " is outside [0, " + std::to_string(classes) +
                                  ")");
}

void Dataset::check_finite(const std::string& what) const {
  const std::size_t per = size() ? inputs.numel() / size() : 0;
  for (std::size_t k = 0; k < inputs.numel(); ++k)
    if (!std::isfinite(inputs[k]))
      throw std::invalid_argument(what + ": sample " + std::to_string(k / per) +
                                  " has a non-finite input (" + detail::non_finite_text(inputs[k]) +
                                  ")");
  const std::size_t k = target_count();
  for (std::size_t j = 0; regression() && j < targets.numel(); ++j)
    if (!std::isfinite(targets[j]))
      throw std::invalid_argument(
          what + ": sample " + std::to_string(j / k) + " has a non-finite target (" +
          detail::non_finite_text(targets[j]) + ")" +
          (target_names.empty() ? "" : " in column \"" + target_names[j % k] + "\""));
}

Dataset Dataset::subset(const std::vector<std::size_t>& indices) const {
  const std::size_t per = size() ? inputs.numel() / size() : 0;
  Shape shape = inputs.shape();
  shape[0] = indices.size();
  Dataset out;
  out.inputs = Tensor<float>(shape);
  out.classes = classes;
  out.target_names = target_names;
  const std::size_t k = target_count();
  if (regression())
    out.targets = Tensor<float>(Shape{indices.size(), k});
  else
    out.labels.resize(indices.size());
  for (std::size_t i = 0; i < indices.size(); ++i) {
    std::memcpy(out.inputs.data() + i * per, inputs.data() + indices[i] * per, per * sizeof(float));
    if (regression())
      std::memcpy(out.targets.data() + i * k, targets.data() + indices[i] * k, k * sizeof(float));
    else
      out.labels[i] = labels[indices[i]];
  }
  return out;
}

std::pair<Dataset, Dataset> split_validation(const Dataset& data, double fraction,
                                             std::uint64_t seed) {
  if (!(fraction >= 0 && fraction < 1))
    throw std::invalid_argument("validation split " + std::to_string(fraction) +
                                " is not in [0, 1)");
  std::size_t n_val = static_cast<std::size_t>(std::round(fraction * data.size()));
  if (fraction > 0 && n_val == 0) n_val = 1;
  std::vector<std::size_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  ShuffleRng rng(seed);
  rng.shuffle(order);
  std::vector<std::size_t> val(order.begin(), order.begin() + n_val);
  std::vector<std::size_t> train(order.begin() + n_val, order.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return {data.subset(train), data.subset(val)};
}

void scale_inputs(Dataset& data, float factor) {
  for (float& v : data.inputs) v *= factor;
}

Standardizer Standardizer::fit(const Dataset& train) {
  if (train.size() == 0) throw std::invalid_argument("Standardizer: empty training set");
  return fit(train.inputs);
}

Standardizer Standardizer::fit(const Tensor<float>& samples) {
  if (!samples.defined() || samples.rank() < 1 || samples.dim(0) == 0)
    throw std::invalid_argument("Standardizer: empty training set");
  const Shape shape(samples.shape().begin() + 1, samples.shape().end());
  const std::size_t per = shape.numel(), n = samples.dim(0);
  std::vector<double> sum(per, 0.0), sq(per, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t f = 0; f < per; ++f) {
      const double v = samples[i * per + f];
      sum[f] += v;
      sq[f] += v * v;
    }
  Standardizer s{Tensor<float>(shape), Tensor<float>(shape)};
  for (std::size_t f = 0; f < per; ++f) {
    const double mu = sum[f] / n;
    const double var = std::max(0.0, sq[f] / n - mu * mu);
    s.mean[f] = static_cast<float>(mu);
    s.stddev[f] = var > 1e-12 ? static_cast<float>(std::sqrt(var)) : 1.0f;
  }
  return s;
}

namespace {
void check_fits(const Standardizer& s, const Tensor<float>& samples) {
  const Shape have(samples.shape().begin() + std::min<std::size_t>(1, samples.rank()),
                   samples.shape().end());
  if (samples.rank() < 1 || have != s.mean.shape())
    throw ShapeError("Standardizer: fitted on samples of shape " + s.mean.shape().to_string() +
                     ", applied to samples of shape " + have.to_string());
}
}  // namespace

void Standardizer::apply(Dataset& data) const {
  standardize(data.inputs);
}

void Standardizer::standardize(Tensor<float>& samples) const {
  check_fits(*this, samples);
  const std::size_t per = mean.numel();
  for (std::size_t j = 0; j < samples.numel(); ++j) {
    float& v = samples[j];
    v = (v - mean[j % per]) / stddev[j % per];
  }
}

void Standardizer::unstandardize(Tensor<float>& samples) const {
  check_fits(*this, samples);
  const std::size_t per = mean.numel();
  for (std::size_t j = 0; j < samples.numel(); ++j) {
    float& v = samples[j];
    v = v * stddev[j % per] + mean[j % per];
  }
}

std::size_t ShuffleRng::below(std::size_t n) {
  const unsigned __int128 product = static_cast<unsigned __int128>(engine_()) * n;
  return static_cast<std::size_t>(product >> 64);
}

void ShuffleRng::shuffle(std::vector<std::size_t>& v) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
}

std::string ShuffleRng::state() const {
  std::ostringstream s;
  s << engine_;
  return s.str();
}

void ShuffleRng::set_state(const std::string& state) {
  std::istringstream s(state);
  std::mt19937_64 engine;
  s >> engine;
  if (!s) throw std::invalid_argument("ShuffleRng: malformed generator state");
  engine_ = engine;
}

std::pair<std::size_t, std::size_t> shard_range(std::size_t count, std::size_t shard,
                                                std::size_t shards) {
  if (shards == 0 || shard >= shards)
    throw std::invalid_argument("shard_range: shard " + std::to_string(shard) + " of " +
                                std::to_string(shards));
  const std::size_t base = count / shards, extra = count % shards;
  const std::size_t first = shard * base + std::min(shard, extra);
  return {first, first + base + (shard < extra ? 1 : 0)};
}

DataLoader::DataLoader(const Dataset& data, const LoaderOptions& options)
    : data_(data), options_(options), rng_(options.seed), order_(data.size()) {
  if (options.batch_size == 0) throw std::invalid_argument("DataLoader: batch size must be > 0");
  if (options.shards == 0 || options.shard >= options.shards)
    throw std::invalid_argument("DataLoader: shard " + std::to_string(options.shard) + " of " +
                                std::to_string(options.shards));
  if (!data.inputs.defined() || data.inputs.rank() < 1 || data.inputs.dim(0) != data.size())
    throw std::invalid_argument("DataLoader: inputs and labels disagree in count");
  if (data.regression() && data.targets.rank() != 2)
    throw std::invalid_argument("DataLoader: targets of shape " + data.targets.shape().to_string() +
                                " are not [N, K]");
  std::iota(order_.begin(), order_.end(), 0);
  cursor_ = order_.size();  // nothing until start_epoch()
}

std::size_t DataLoader::batches() const {
  const std::size_t n = data_.size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::start_epoch() {
  std::iota(order_.begin(), order_.end(), 0);
  if (options_.shuffle) rng_.shuffle(order_);
  cursor_ = 0;
}

void DataLoader::skip(std::size_t batches) {
  const std::size_t remaining_batches =
      (order_.size() - cursor_ + options_.batch_size - 1) / options_.batch_size;
  cursor_ = batches >= remaining_batches ? order_.size() : cursor_ + batches * options_.batch_size;
}

bool DataLoader::next(Batch& batch) {
  const std::size_t remaining = order_.size() - cursor_;
  if (remaining == 0 || (options_.drop_last && remaining < options_.batch_size)) return false;
  const std::size_t global = std::min(remaining, options_.batch_size);
  const auto [first, last] = shard_range(global, options_.shard, options_.shards);
  const std::size_t b = last - first;
  batch.global_size = global;
  batch.global_offset = first;
  const std::size_t per = data_.size() ? data_.inputs.numel() / data_.size() : 0;
  Shape shape = data_.inputs.shape();
  shape[0] = b;
  batch.inputs.resize(shape);
  const bool regression = data_.regression();
  const std::size_t k = data_.target_count();
  if (regression)
    batch.targets.resize(Shape{b, k});
  else
    batch.labels.resize(b);
  for (std::size_t i = 0; i < b; ++i) {
    const std::size_t src = order_[cursor_ + first + i];
    std::memcpy(batch.inputs.data() + i * per, data_.inputs.data() + src * per,
                per * sizeof(float));
    if (regression)
      std::memcpy(batch.targets.data() + i * k, data_.targets.data() + src * k, k * sizeof(float));
    else
      batch.labels[i] = data_.labels[src];
  }
  cursor_ += global;
  return true;
}

}  // namespace tapegrad
