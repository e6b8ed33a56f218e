// Dropout (inverted, as torch.nn.Dropout): in training each element is kept with probability
// 1 − p and scaled by 1/(1 − p), or zeroed, so the expected output is the input; in evaluation
// it is the identity. y = x ⊙ m with m_k ∈ {0, 1/(1 − p)}, so gx = gy ⊙ m. The keep/drop draws
// (32 random bits per element: p is met within 2⁻³²) come from the layer's own stream, seeded
// from the model's generator when the layer is made: a seed reproduces a run, and a checkpoint
// carries the stream's state (named_generators()). The draws are not PyTorch's (its generator
// differs); the distribution is.
#pragma once

#include <string>

#include "tapegrad/layers/module.hpp"

namespace tapegrad::nn {

template <class T>
class Dropout : public Module<T> {
 public:
  // p in [0, 1]; throws otherwise (as PyTorch). p = 1 zeroes everything in training.
  Dropout(double p, Generator& g);
  Var<T> forward(const Var<T>& x) override;
  std::string name() const override;
  Shape output_shape(const Shape& input) const override { return input; }
  double p() const { return p_; }

 private:
  double p_;
  Generator stream_;
};

extern template class Dropout<float>;
extern template class Dropout<double>;

}  // namespace tapegrad::nn
