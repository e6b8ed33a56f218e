#include "tapegrad/layers/mersenne_twister.hpp"

#include <algorithm>

namespace tapegrad::nn {
namespace {
constexpr std::size_t n = Mt19937_64::state_size, m = 156;
constexpr std::uint64_t upper = ~std::uint64_t(0) << 31, lower = ~upper;
constexpr std::uint64_t matrix = 0xb5026f5aa96619e9ull;

// x_k' = x_{k+m} ⊕ (y ≫ 1) ⊕ (y odd ? a : 0), y = upper bits of x_k | lower bits of x_{k+1};
// the mask −(y & 1) (all ones when y is odd) keeps the loop free of branches.
inline std::uint64_t next_word(std::uint64_t xk, std::uint64_t xk1, std::uint64_t xkm) {
  const std::uint64_t y = (xk & upper) | (xk1 & lower);
  return xkm ^ (y >> 1) ^ ((std::uint64_t(0) - (y & 1)) & matrix);
}
}  // namespace

void Mt19937_64::seed(std::uint64_t value) {
  x_[0] = value;
  for (std::size_t i = 1; i < n; ++i)
    x_[i] = 6364136223846793005ull * (x_[i - 1] ^ (x_[i - 1] >> 62)) + i;
  next_ = n;
}

void Mt19937_64::twist() {
  // Word k reads words k + 1 and k + m (k + m − n past the first n − m): the first loop reads
  // only words it has not yet rewritten, the second only words the first has.
  std::uint64_t* x = x_;
  for (std::size_t k = 0; k < n - m; ++k) x[k] = next_word(x[k], x[k + 1], x[k + m]);
  for (std::size_t k = n - m; k < n - 1; ++k) x[k] = next_word(x[k], x[k + 1], x[k + m - n]);
  x[n - 1] = next_word(x[n - 1], x[0], x[m - 1]);
  next_ = 0;
}

void Mt19937_64::fill(std::uint64_t* out, std::size_t count) {
  while (count > 0) {
    if (next_ >= n) twist();
    const std::size_t take = std::min(count, n - next_);
    const std::uint64_t* __restrict from = x_ + next_;
    std::uint64_t* __restrict to = out;
    for (std::size_t i = 0; i < take; ++i) to[i] = temper(from[i]);
    next_ += take;
    out += take;
    count -= take;
  }
}

bool operator==(const Mt19937_64& a, const Mt19937_64& b) {
  return a.next_ == b.next_ && std::equal(a.x_, a.x_ + n, b.x_);
}

std::ostream& operator<<(std::ostream& os, const Mt19937_64& e) {
  const std::ios_base::fmtflags flags = os.flags();
  os.flags(std::ios_base::dec | std::ios_base::left);
  for (std::size_t i = 0; i < n; ++i) os << e.x_[i] << ' ';
  os << e.next_;
  os.flags(flags);
  return os;
}

std::istream& operator>>(std::istream& is, Mt19937_64& e) {
  Mt19937_64 read;
  for (std::size_t i = 0; i < n; ++i) is >> read.x_[i];
  is >> read.next_;
  if (is && read.next_ <= n)
    e = read;
  else
    is.setstate(std::ios_base::failbit);
  return is;
}

}  // namespace tapegrad::nn
