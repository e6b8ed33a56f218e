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
// Re-entrancy: while a first-order backward pass runs, grad mode is off (ops inside a rule
// record nothing, as in PyTorch without create_graph), and calling backward() from inside a
// rule throws.
//
// Higher order: a pass with create_graph runs each op's graph rule (its backward written with
// tapegrad's ops, detail/backward_rule.hpp) with grad mode on, so the gradients are tracked
// values recorded on this tape like any other. The records such a pass makes are held aside
// while it runs (so the records it walks never move) and appended when it ends.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad/autodiff/detail/backward_rule.hpp"
#include "tapegrad/autodiff/threads.hpp"
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
template <class T>
class GraphGradients;
namespace detail {
struct ProfileCollector;  // profiler.hpp
}  // namespace detail

// A backward rule: given the gradient of the op's output, add each tracked input's share
// into `grads` (detail/backward_rule.hpp: its raw and graph forms).
template <class T>
using BackwardFn = detail::BackwardRule<T>;

struct BackwardOptions {
  // Keep the tape after the pass, so that its values can be differentiated again.
  bool retain_graph = false;
  // Record the pass itself (implies retain_graph): the gradients are tracked values.
  bool create_graph = false;
};

inline constexpr std::size_t max_op_inputs = 6;

template <class T>
struct Record {
  const char* op = "";
  std::array<std::shared_ptr<detail::Node<T>>, max_op_inputs> inputs;
  std::size_t input_count = 0;
  std::shared_ptr<detail::Node<T>> output;
  BackwardFn<T> backward;
};

// Where a backward rule writes the gradient of one input: `size()` values, the input's element
// count. The slot alone decides between the two cases of a reverse pass: a fresh buffer
// (contents unspecified, to be written) or one that holds earlier contributions (to be added
// to). Rules only ever say "put this value", through one of:
//   put(k, v)                 grad[k] = v, or grad[k] += v
//   put_range(b, e, value_at) put(k, value_at(k)) for b <= k < e, vectorised
//   beta()                    for kernels computing C = A·B + β·C: 0 (fresh) or 1 (add)
//   zeroed()                  the buffer, zero-filled if fresh: for kernels that only add
// and each element must be put exactly once (or, after zeroed(), added to any number of times).
template <class T>
class GradSlot {
 public:
  GradSlot(T* data, std::size_t size, bool holds_earlier)
      : data_(data), size_(size), add_(holds_earlier) {}

  T* data() const { return data_; }
  std::size_t size() const { return size_; }

  void put(std::size_t k, T v) const { data_[k] = add_ ? data_[k] + v : v; }

  // value_at must not read the gradient being written (the loop is vectorised on that promise).
  template <class F>
  void put_range(std::size_t begin, std::size_t end, F&& value_at) const {
    T* out = data_;
    if (add_) {
      TAPEGRAD_VECTORIZE
      for (std::size_t k = begin; k < end; ++k) out[k] += value_at(k);
    } else {
      TAPEGRAD_VECTORIZE
      for (std::size_t k = begin; k < end; ++k) out[k] = value_at(k);
    }
  }

  T beta() const { return add_ ? T(1) : T(0); }

  T* zeroed() const {
    if (!add_) std::fill(data_, data_ + size_, T(0));
    return data_;
  }

  // The slot of elements [begin, begin + n), for a kernel that writes the gradient in parts.
  GradSlot part(std::size_t begin, std::size_t n) const { return {data_ + begin, n, add_}; }

 private:
  T* data_;
  std::size_t size_;
  bool add_;
};

namespace detail {
// Below this many values a memory-bound pass is never split among threads (two parts need
// some 31 000: parallel.hpp), so Gradients::accumulate runs it inline.
inline constexpr std::size_t serial_values = 16384;
}  // namespace detail

// What a backward rule sees of its op: the inputs' and output's values, and the gradient
// slots of the inputs that require one.
template <class T>
class Gradients {
 public:
  // `scratch` is set during grad() (the pass returns the gradients of some values only): a
  // leaf that is not one of them writes there, and its gradient is thrown away.
  explicit Gradients(Record<T>& record, Tensor<T>* scratch = nullptr)
      : r_(record), scratch_(scratch) {}

  const char* op() const { return r_.op; }
  std::size_t size() const { return r_.input_count; }
  const Tensor<T>& input(std::size_t i) const { return r_.inputs[i]->value; }
  const Tensor<T>& output() const { return r_.output->value; }
  // Whether input i wants a gradient; a rule skips the work for inputs that do not.
  bool needed(std::size_t i) const;

  // The gradient slot of input i (see GradSlot), for rules that write element by element or
  // through kernels such as gemm.
  GradSlot<T> slot(std::size_t i);

  // grad_i[k] += value_at(k) for every element k of input i; large tensors are split among
  // threads. value_at(k) must depend on k alone (it may run on any thread, in any order) and
  // must not read the gradient being written (the loop is vectorised on that promise).
  template <class F>
  void accumulate(std::size_t i, F&& value_at) {
    if (r_.inputs[i]->value.numel() < detail::serial_values) {
      slot(i).put_range(0, r_.inputs[i]->value.numel(), value_at);
      return;
    }
    const GradSlot<T> into = slot(i);
    parallel_ranges(into.size(), 4, [&](std::size_t begin, std::size_t end) {
      into.put_range(begin, end, value_at);
    });
  }

  // grad_i += g; throws a ShapeError naming the op when g's shape is not input i's shape.
  void add(std::size_t i, const Tensor<T>& g);

 private:
  Record<T>& r_;
  Tensor<T>* scratch_;
};

namespace detail {
template <class T>
struct GraphPass {
  bool capture = false;                     // grad(): only marked values' gradients are kept
  std::vector<Node<T>*>* leaves = nullptr;  // leaves given a gradient by this pass
  Gradients<T>* values = nullptr;           // set when a graph rule serves a first-order pass
};
}  // namespace detail

// What a graph rule sees of its op: inputs and output as Vars, and where to add each input's
// gradient, itself a Var. Under create_graph the rule's ops are recorded, so what it adds can
// be differentiated again; in a first-order pass (an op with a graph rule only) it runs with
// grad mode off and only the values count.
template <class T>
class GraphGradients {
 public:
  GraphGradients(Record<T>& record, detail::GraphPass<T>& pass) : r_(record), pass_(pass) {}

  const char* op() const { return r_.op; }
  std::size_t size() const { return r_.input_count; }
  Var<T> input(std::size_t i) const { return Var<T>::from_node(r_.inputs[i]); }
  Var<T> output() const { return Var<T>::from_node(r_.output); }
  // Whether input i wants a gradient; a rule skips the work for inputs that do not.
  bool needed(std::size_t i) const;
  // grad_i += g (g must have input i's shape: a ShapeError naming the op otherwise). A
  // gradient for an input that wants none is dropped.
  void add(std::size_t i, const Var<T>& g);

 private:
  Record<T>& r_;
  detail::GraphPass<T>& pass_;
};

namespace detail {
// Observes a reverse pass, for code that acts on a leaf's gradient as soon as it is final
// (data-parallel training starts its all-reduce then). backward() calls begin(context, records,
// count) once with the records it will walk (indices [0, count)), then done(context, i) after
// it has passed record i (its rule ran, or it was not on a path from the root): every leaf
// whose lowest-index using record is >= i then holds its final gradient for this pass. It calls
// neither when the root is a leaf, nor in the passes of grad() and create_graph (which leave
// the leaves' gradients alone or record them as values). Set on one thread, for that thread's tape;
// null (the default) costs one test per pass and one per record.
template <class T>
struct LeafReadyHook {
  void (*begin)(void* context, const Record<T>* records, std::size_t count);
  void (*done)(void* context, std::size_t record);
  void* context;
};
template <class T>
inline thread_local LeafReadyHook<T>* leaf_ready_hook = nullptr;
}  // namespace detail

template <class T>
class Tape {
 public:
  // The tape of the calling thread (one per scalar type). Inline: every op asks for it.
  static Tape& current() {
    thread_local Tape tape;
    return tape;
  }

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
  // The same, taking the seed's buffer instead of copying it.
  void backward(detail::Node<T>& root, Tensor<T>&& upstream, bool retain_graph);

  // The reverse pass from several roots, each seeded with its seed (of the root's shape; a
  // tracked seed is differentiated through under create_graph). With `capture` (grad()), only
  // the values marked `captured` keep their gradient, in their pending / pending_graph,
  // for the caller to collect; leaves' grad() is left alone. Otherwise leaves accumulate
  // into grad() (and, under create_graph, grad_graph).
  void backward(const std::vector<Var<T>>& roots, const std::vector<Var<T>>& seeds,
                const BackwardOptions& options, bool capture);

  // Releases every record (and with them every intermediate no user handle holds).
  void clear();

 private:
  // Drops every record whose output only the tape holds, newest first (dropping one releases
  // its inputs, which may leave older records unreachable in turn), then closes the gaps.
  void release_unreachable();
  // Throws unless `root` can start a pass seeded with a tensor of `seed_shape`.
  void check_root(const detail::Node<T>& root, const Shape& seed_shape) const;
  [[noreturn, gnu::cold, gnu::noinline]] void fail_root(const detail::Node<T>& root,
                                                        const Shape& seed_shape) const;
  // The first-order loop over records [0, top]; pending tensors carry the gradients.
  void run_raw(std::size_t top, bool retain_graph, bool capture);
  template <bool plain>
  void walk_raw(std::size_t top, Tensor<T>* scratch, detail::ProfileCollector* prof,
                detail::LeafReadyHook<T>* hook);
  // The create_graph loop over records [0, top]; pending_graph nodes carry the gradients.
  void run_graph(std::size_t top, detail::GraphPass<T>& pass);

  std::vector<Record<T>> records_;
  std::vector<Record<T>> aside_;  // records made by a create_graph pass while it runs
  bool recording_aside_ = false;
  Tensor<T> scratch_;  // gradients grad() throws away
  std::uint64_t epoch_ = 1;
  std::size_t release_at_ = min_records_before_release;
  const char* running_op_ = nullptr;  // during backward: the op whose rule is running
};

// Whether node n takes part in autodiff now: a leaf that requires grad, or an op output whose
// record is still on the current tape.
template <class T>
[[gnu::always_inline]] inline bool is_tracked(const detail::Node<T>& n) {
  return n.requires_grad && (n.is_leaf || n.epoch == Tape<T>::current().epoch());
}

extern template class Gradients<float>;
extern template class Gradients<double>;
extern template class GraphGradients<float>;
extern template class GraphGradients<double>;
extern template class Tape<float>;
extern template class Tape<double>;

}  // namespace tapegrad
