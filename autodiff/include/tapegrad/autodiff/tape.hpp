// The tape: every op applied to tracked values appends a Record (its inputs, its output, its
// backward rule) in execution order. Execution order is a topological order, so the reverse
// pass is a plain reverse loop: no recursion, no sort, any depth.
//
// Lifetime: backward() releases the whole tape (unless retain_graph). A graph that is dropped
// without backward (a loss computed and forgotten, without NoGradGuard) is released too, as in
// PyTorch, where a graph dies with its last reference: a record is unreachable once no user
// handle holds its output and no later record uses it, and the tape drops such records
// whenever it has doubled in size since it last looked (amortised O(1) per op).
//
// Re-entrancy: while a backward pass runs, grad mode is off (ops inside a rule record nothing,
// as in PyTorch without create_graph), and calling backward() from inside a rule throws.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad/autodiff/detail/small_function.hpp"
#include "tapegrad/autodiff/var.hpp"

// Before a loop whose iterations are independent and whose output does not alias its inputs:
// lets the compiler vectorise it without runtime alias checks.
#if defined(__clang__)
#define TAPEGRAD_VECTORIZE _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define TAPEGRAD_VECTORIZE _Pragma("GCC ivdep")
#else
#define TAPEGRAD_VECTORIZE
#endif

namespace tapegrad {

template <class T>
class Gradients;

// A backward rule: given the gradient of the op's output, add each tracked input's share
// into `grads`.
template <class T>
using BackwardFn = detail::SmallFunction<void(const Tensor<T>& grad_output, Gradients<T>& grads)>;

inline constexpr std::size_t max_op_inputs = 6;

template <class T>
struct Record {
  const char* op = "";
  std::array<std::shared_ptr<detail::Node<T>>, max_op_inputs> inputs;
  std::size_t input_count = 0;
  std::shared_ptr<detail::Node<T>> output;
  BackwardFn<T> backward;
};

// Where a backward rule writes the gradient of one input: `data` has the input's element
// count. When `overwrite` is true the buffer is fresh and must be fully written (its contents
// are unspecified); otherwise it holds earlier contributions and the rule must add to them.
template <class T>
struct GradSlot {
  T* data;
  std::size_t size;
  bool overwrite;
};

// What a backward rule sees of its op: the inputs' and output's values, and the gradient
// slots of the inputs that require one.
template <class T>
class Gradients {
 public:
  explicit Gradients(Record<T>& record) : r_(record) {}

  const char* op() const { return r_.op; }
  std::size_t size() const { return r_.input_count; }
  const Tensor<T>& input(std::size_t i) const { return r_.inputs[i]->value; }
  const Tensor<T>& output() const { return r_.output->value; }
  // Whether input i wants a gradient; a rule skips the work for inputs that do not.
  bool needed(std::size_t i) const;

  // The raw gradient slot of input i (see GradSlot), for kernels such as BLAS gemm that can
  // either overwrite (beta = 0) or accumulate (beta = 1).
  GradSlot<T> slot(std::size_t i);

  // grad_i[k] += value_at(k) for every element k of input i. value_at must not read the
  // gradient being written (the loop is vectorised on that promise).
  template <class F>
  void accumulate(std::size_t i, F&& value_at) {
    GradSlot<T> s = slot(i);
    T* out = s.data;
    const std::size_t n = s.size;
    if (s.overwrite) {
      TAPEGRAD_VECTORIZE
      for (std::size_t k = 0; k < n; ++k) out[k] = value_at(k);
    } else {
      TAPEGRAD_VECTORIZE
      for (std::size_t k = 0; k < n; ++k) out[k] += value_at(k);
    }
  }

  // grad_i += g; throws a ShapeError naming the op when g's shape is not input i's shape.
  void add(std::size_t i, const Tensor<T>& g);

 private:
  Record<T>& r_;
};

template <class T>
class Tape {
 public:
  // The tape of the calling thread (one per scalar type).
  static Tape& current();

  // The tape looks for unreachable records once it holds this many, and afterwards whenever
  // it holds twice as many as it kept the last time it looked.
  static constexpr std::size_t min_records_before_release = 256;

  Tape() { memory::prepare_thread(); }  // the buffer cache must outlive the records

  // Number of records held (0 after a backward pass that released the tape). Records of
  // dropped graphs count until the tape next looks for them.
  std::size_t size() const { return records_.size(); }
  // Increases each time the tape is released; values recorded in an older epoch are constants.
  std::uint64_t epoch() const { return epoch_; }

  // Appends a record and marks its output as a tracked, recorded value.
  void push(Record<T>&& record);

  // The reverse pass from `root`, seeded with `upstream` (root's shape). Throws
  // std::logic_error when called from inside a backward rule of this tape.
  void backward(detail::Node<T>& root, const Tensor<T>& upstream, bool retain_graph);

  // Releases every record (and with them every intermediate no user handle holds).
  void clear();

 private:
  // Drops every record whose output only the tape holds, newest first (dropping one releases
  // its inputs, which may leave older records unreachable in turn), then closes the gaps.
  void release_unreachable();

  std::vector<Record<T>> records_;
  std::uint64_t epoch_ = 1;
  std::size_t release_at_ = min_records_before_release;
  const char* running_op_ = nullptr;  // during backward: the op whose rule is running
};

// Whether node n takes part in autodiff now: a leaf that requires grad, or an op output whose
// record is still on the current tape.
template <class T>
bool is_tracked(const detail::Node<T>& n) {
  return n.requires_grad && (n.is_leaf || n.epoch == Tape<T>::current().epoch());
}

extern template class Gradients<float>;
extern template class Gradients<double>;
extern template class Tape<float>;
extern template class Tape<double>;

}  // namespace tapegrad
