// Shape: the dimensions of a tensor, row-major, at most max_rank of them, stored inline
// (no heap allocation), so that shapes can be built freely in hot paths.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace tapegrad {

inline constexpr std::size_t max_rank = 8;

// Thrown for every shape mismatch; the message names the op and the shapes involved.
class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<std::size_t> dims) {
    for (std::size_t d : dims) push_back(d);
  }
  template <class It>
  Shape(It first, It last) {
    for (; first != last; ++first) push_back(static_cast<std::size_t>(*first));
  }

  std::size_t rank() const { return rank_; }
  std::size_t size() const { return rank_; }
  bool empty() const { return rank_ == 0; }
  std::size_t operator[](std::size_t i) const { return dims_[i]; }
  std::size_t& operator[](std::size_t i) { return dims_[i]; }
  const std::size_t* begin() const { return dims_.data(); }
  const std::size_t* end() const { return dims_.data() + rank_; }
  std::size_t back() const { return dims_[rank_ - 1]; }

  void push_back(std::size_t d) {
    if (rank_ == max_rank)
      throw ShapeError("Shape: rank above the maximum of " + std::to_string(max_rank));
    dims_[rank_++] = d;
  }

  // Product of the dimensions (1 for a rank-0 scalar).
  std::size_t numel() const {
    std::size_t n = 1;
    for (std::size_t i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (std::size_t i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

  // "[2, 3]"; a scalar prints as "[]".
  std::string to_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[i]);
    }
    return s + "]";
  }

 private:
  std::array<std::size_t, max_rank> dims_{};
  std::size_t rank_ = 0;
};

// Row-major strides (in elements) of a contiguous tensor of this shape.
inline std::array<std::size_t, max_rank> contiguous_strides(const Shape& s) {
  std::array<std::size_t, max_rank> st{};
  std::size_t acc = 1;
  for (std::size_t i = s.rank(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

// Throws a ShapeError "<op>: <what> must be a matrix <layout>, got shape [...]" unless s has
// rank 2; layout names the axes in the caller's terms.
inline void require_matrix(const char* op, const char* what, const Shape& s,
                           const char* layout = "[rows, columns]") {
  if (s.rank() != 2)
    throw ShapeError(std::string(op) + ": " + what + " must be a matrix " + layout +
                     ", got shape " + s.to_string());
}

// Normalises a possibly negative axis against a rank; throws naming the op when out of range.
inline std::size_t normalize_axis(const char* op, long axis, const Shape& s) {
  const long r = static_cast<long>(s.rank());
  const long a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r)
    throw ShapeError(std::string(op) + ": axis " + std::to_string(axis) +
                     " is out of range for shape " + s.to_string());
  return static_cast<std::size_t>(a);
}

}  // namespace tapegrad
