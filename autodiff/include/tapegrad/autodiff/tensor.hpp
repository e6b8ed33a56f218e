// Tensor<T>: a dense, contiguous, row-major array of T with a Shape. Plain value semantics
// (copies are deep, moves are cheap); storage comes from the buffer pool (memory.hpp).
// Tensors carry no gradient information: Var<T> (var.hpp) wraps one for autodiff.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include "tapegrad/autodiff/memory.hpp"
#include "tapegrad/autodiff/shape.hpp"

namespace tapegrad {

template <class T>
class Tensor {
 public:
  using value_type = T;
  using Storage = std::vector<T, memory::PoolAllocator<T>>;

  // An undefined tensor (defined() is false): "no value", e.g. a gradient not yet computed.
  Tensor() = default;

  // A tensor of the given shape with unspecified contents (fill it before reading).
  // Throws ShapeError if the shape has more elements than an address space holds.
  explicit Tensor(const Shape& shape)
      : shape_(shape), data_(addressable_numel(shape)), defined_(true) {}

  // A tensor of the given shape holding `values` in row-major order.
  Tensor(const Shape& shape, std::initializer_list<T> values) : Tensor(shape) {
    check_count(values.size());
    std::copy(values.begin(), values.end(), data_.begin());
  }
  template <class Range>
  static Tensor from(const Shape& shape, const Range& values) {
    Tensor t(shape);
    t.check_count(static_cast<std::size_t>(std::distance(std::begin(values), std::end(values))));
    std::copy(std::begin(values), std::end(values), t.data_.begin());
    return t;
  }

  static Tensor full(const Shape& shape, T value) {
    Tensor t(shape);
    std::fill(t.data_.begin(), t.data_.end(), value);
    return t;
  }
  static Tensor zeros(const Shape& shape) { return full(shape, T(0)); }
  static Tensor ones(const Shape& shape) { return full(shape, T(1)); }
  // A rank-0 tensor holding one value.
  static Tensor scalar(T value) { return full(Shape{}, value); }

  bool defined() const { return defined_; }
  const Shape& shape() const { return shape_; }
  std::size_t rank() const { return shape_.rank(); }
  std::size_t dim(std::size_t axis) const { return shape_[axis]; }
  std::size_t numel() const { return data_.size(); }

  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  T* begin() { return data_.data(); }
  T* end() { return data_.data() + data_.size(); }
  const T* begin() const { return data_.data(); }
  const T* end() const { return data_.data() + data_.size(); }

  // Flat (row-major) element access.
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

  // Element at a multi-index, bounds-checked: t.at({1, 2}).
  T& at(std::initializer_list<std::size_t> index) { return data_[offset(index)]; }
  const T& at(std::initializer_list<std::size_t> index) const { return data_[offset(index)]; }

  // The single value of a tensor with one element.
  T item() const {
    if (numel() != 1)
      throw ShapeError("item: tensor of shape " + shape_.to_string() + " has " +
                       std::to_string(numel()) + " elements, not 1");
    return data_[0];
  }

  void fill(T value) { std::fill(data_.begin(), data_.end(), value); }

  // Gives the same elements a new shape with the same element count.
  void reshape_in_place(const Shape& shape) {
    if (shape.numel() != numel())
      throw ShapeError("reshape: cannot view shape " + shape_.to_string() + " as " +
                       shape.to_string());
    shape_ = shape;
  }

  // Makes this tensor an uninitialised buffer of the given shape, reusing its storage.
  void resize(const Shape& shape) {
    data_.resize(addressable_numel(shape));
    shape_ = shape;
    defined_ = true;
  }

 private:
  // The element count of `shape`, checked: Shape::numel wraps around past SIZE_MAX. The check
  // costs a flag per dimension; the error path is out of line.
  static std::size_t addressable_numel(const Shape& shape) {
    std::size_t n = 1;
    bool overflow = false;
    for (std::size_t d : shape) overflow |= __builtin_mul_overflow(n, d, &n);
    if (overflow || n > PTRDIFF_MAX / sizeof(T)) {
      for (std::size_t d : shape)
        if (d == 0) return 0;  // no elements, whatever the other dimensions
      unaddressable(shape);
    }
    return n;
  }
  [[noreturn, gnu::cold, gnu::noinline]] static void unaddressable(const Shape& shape) {
    throw ShapeError("Tensor: shape " + shape.to_string() +
                     " has more elements than an address space holds");
  }
  void check_count(std::size_t n) const {
    if (n != shape_.numel())
      throw ShapeError("Tensor: " + std::to_string(n) + " values given for shape " +
                       shape_.to_string() + " (" + std::to_string(shape_.numel()) + " elements)");
  }
  std::size_t offset(std::initializer_list<std::size_t> index) const {
    if (index.size() != shape_.rank())
      throw ShapeError("Tensor::at: index of rank " + std::to_string(index.size()) + " for shape " +
                       shape_.to_string());
    std::size_t off = 0, axis = 0;
    for (std::size_t i : index) {
      if (i >= shape_[axis])
        throw std::out_of_range("Tensor::at: index " + std::to_string(i) +
                                " out of range on axis " + std::to_string(axis) + " of shape " +
                                shape_.to_string());
      off = off * shape_[axis] + i;
      ++axis;
    }
    return off;
  }

  Shape shape_;
  Storage data_;
  bool defined_ = false;
};

}  // namespace tapegrad
