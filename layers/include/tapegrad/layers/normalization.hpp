// Normalisation layers with torch.nn's names, layouts and semantics.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "tapegrad/layers/module.hpp"

namespace tapegrad::nn {

// torch.nn.BatchNorm1d over x [N, C] or [N, C, L], per channel c:
//   training: normalise with the batch's mean and biased variance (autodiff batch_norm), and,
//     with track_running_stats, update the running statistics with the unbiased variance:
//     running ← (1 − m)·running + m·batch, m = momentum (or 1/num_batches_tracked, a cumulative
//     average, when momentum is unset), and count the batch in num_batches_tracked;
//   evaluation: normalise with running_mean and running_var (without track_running_stats, with
//     the batch's statistics, as in training).
// Parameters weight [C] (ones) and bias [C] (zeros) when affine; buffers running_mean [C]
// (zeros), running_var [C] (ones) and num_batches_tracked (0, a count) when tracking. An empty
// batch leaves the running statistics as they are (PyTorch too), but is counted.
template <class T>
class BatchNorm1d : public Module<T> {
 public:
  explicit BatchNorm1d(std::size_t features, double eps = 1e-5,
                       std::optional<double> momentum = 0.1, bool affine = true,
                       bool track_running_stats = true);
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Var<T> weight, bias;  // undefined without affine
  Tensor<T> running_mean, running_var, num_batches_tracked;

 private:
  std::size_t features_;
  double eps_;
  std::optional<double> momentum_;
  bool track_;
};

// torch.nn.LayerNorm over the trailing dimensions `normalized_shape`; with elementwise_affine,
// parameters weight and bias of that shape (ones and zeros).
template <class T>
class LayerNorm : public Module<T> {
 public:
  explicit LayerNorm(const Shape& normalized_shape, double eps = 1e-5,
                     bool elementwise_affine = true);
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override;
  Shape output_shape(const Shape& input) const override;
  Var<T> weight, bias;  // undefined without elementwise_affine

 private:
  Shape shape_;
  double eps_;
};

extern template class BatchNorm1d<float>;
extern template class BatchNorm1d<double>;
extern template class LayerNorm<float>;
extern template class LayerNorm<double>;

}  // namespace tapegrad::nn
