// MT19937-64, the 64-bit Mersenne Twister: the engine std::mt19937_64 specifies, with the same
// outputs for the same seed, and its state written and read as libstdc++ writes it (the 312
// state words, then the index of the next one). Ours so that a run of draws can be taken in one
// call (fill): the twist and the tempering then run as vector loops, some 5× faster per draw
// than one call per draw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <ostream>

namespace tapegrad::nn {

class Mt19937_64 {
 public:
  static constexpr std::size_t state_size = 312;

  explicit Mt19937_64(std::uint64_t seed = 5489u) { this->seed(seed); }
  // The standard's initialisation: x_0 = value, x_i = f·(x_{i−1} ⊕ (x_{i−1} ≫ 62)) + i with
  // f = 6364136223846793005, the first output tempered from the first twist.
  void seed(std::uint64_t value);

  // The next output.
  std::uint64_t operator()() {
    if (next_ >= state_size) twist();
    return temper(x_[next_++]);
  }
  // out[0..n) = the next n outputs (those n calls of operator() would return).
  void fill(std::uint64_t* out, std::size_t n);

  friend bool operator==(const Mt19937_64& a, const Mt19937_64& b);
  friend std::ostream& operator<<(std::ostream& os, const Mt19937_64& e);
  friend std::istream& operator>>(std::istream& is, Mt19937_64& e);

 private:
  static std::uint64_t temper(std::uint64_t z) {
    z ^= (z >> 29) & 0x5555555555555555ull;
    z ^= (z << 17) & 0x71d67fffeda60000ull;
    z ^= (z << 37) & 0xfff7eee000000000ull;
    return z ^ (z >> 43);
  }
  // The next 312 state words from the last 312 (the recurrence of the standard).
  void twist();

  std::uint64_t x_[state_size];
  std::size_t next_ = state_size;  // the index of the next word to temper
};

}  // namespace tapegrad::nn
