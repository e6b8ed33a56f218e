// Weight initialisation (derivations.md#init) from one seeded generator, bit-identical on every
// machine and standard library: MT19937-64 (the engine std::mt19937_64 specifies; our own copy,
// mersenne_twister.hpp) with our own uniform and normal draws (the std:: distributions differ
// between libraries).
#pragma once

#include <cstdint>
#include <string>

#include "tapegrad/autodiff/tensor.hpp"
#include "tapegrad/layers/mersenne_twister.hpp"

namespace tapegrad::nn {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
  // Uniform in [0, 1) with 53 random bits.
  double uniform();
  // 64 random bits (the engine's next output).
  std::uint64_t bits() { return engine_(); }
  // out[0..n) = the next n outputs, as n calls of bits() would give them, faster.
  void fill_bits(std::uint64_t* out, std::size_t n) { engine_.fill(out, n); }
  // Standard normal, Box–Muller (the second value of each pair is kept for the next call).
  double normal();
  // The whole state as text (engine and cached normal), for checkpoints.
  std::string state() const;
  void set_state(const std::string& state);

 private:
  Mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// Fan-in and fan-out of a weight, from its shape alone: [out, in] → (in, out);
// [out, in, k...] → (in·k…, out·k…) (the receptive field multiplies both, as in PyTorch).
struct Fans {
  double in = 0, out = 0;
};
Fans fans(const Shape& weight_shape);

// He (Kaiming) for layers followed by ReLU: Var(w) = 2/fan_in.
template <class T>
void he_normal(Tensor<T>& w, Generator& g);  // N(0, 2/fan_in)
template <class T>
void he_uniform(Tensor<T>& w, Generator& g);  // U(±√(6/fan_in))
// Glorot (Xavier) for sigmoid/tanh: Var(w) = 2/(fan_in + fan_out).
template <class T>
void glorot_normal(Tensor<T>& w, Generator& g);  // N(0, 2/(fan_in + fan_out))
template <class T>
void glorot_uniform(Tensor<T>& w, Generator& g);  // U(±√(6/(fan_in + fan_out)))
template <class T>
void normal(Tensor<T>& w, Generator& g, double mean, double stddev);
template <class T>
void uniform(Tensor<T>& w, Generator& g, double low, double high);
template <class T>
void constant(Tensor<T>& w, double value);
template <class T>
void zeros(Tensor<T>& w) {
  constant(w, 0.0);
}

// The schemes by name, for layers and builders.
enum class Init { he_normal, he_uniform, glorot_normal, glorot_uniform, zeros };
template <class T>
void initialize(Tensor<T>& w, Init scheme, Generator& g);

}  // namespace tapegrad::nn
