// Var<T>: a tensor value that autodiff can track. A Var is a cheap handle (shared ownership)
// to a node holding the value and, once a backward pass reaches it, its gradient.
//
//   leaf      made by the user: Var(x) is a constant, Var::parameter(w) requires a gradient;
//             backward accumulates into leaf.grad() until zero_grad().
//   recorded  the output of an op applied to tracked values while grad mode is on; the op is
//             recorded on the thread's Tape (tape.hpp), which backward walks in reverse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "tapegrad/autodiff/tensor.hpp"

namespace tapegrad {

namespace detail {
template <class T>
struct Node {
  Tensor<T> value;
  Tensor<T> grad;  // accumulated gradient: leaves, and intermediates that retain_grad()
  // Set by zero_grad: grad stands for zeros its buffer does not hold yet. The next backward
  // pass writes the buffer instead of adding to it; any other reader fills it first
  // (written_grad). This saves a pass over every parameter's gradient each training step.
  bool grad_is_zero = false;
  Tensor<T> pending;  // intermediates: gradient being summed during a backward pass
  // Under create_graph, the gradient being summed, as a tracked value (a node of its own).
  std::shared_ptr<Node> pending_graph;
  // Leaves, after a backward pass with create_graph: grad as a value that can be
  // differentiated again (Var::grad_var).
  std::shared_ptr<Node> grad_graph;
  bool requires_grad = false;
  bool retains_grad = false;
  bool captured = false;  // during grad(): one of the values whose gradient is returned
  bool is_leaf = true;
  std::uint64_t epoch = 0;  // recorded nodes: the tape epoch their record belongs to
  std::size_t record = 0;   // recorded nodes: index of their record on that tape
};

// n.grad with the zeros zero_grad stands for written into it.
template <class T>
Tensor<T>& written_grad(Node<T>& n) {
  if (n.grad_is_zero) {
    n.grad.fill(T(0));
    n.grad_is_zero = false;
  }
  return n.grad;
}

inline thread_local bool grad_mode_enabled = true;
}  // namespace detail

// True unless a NoGradGuard is alive on this thread.
inline bool grad_enabled() {
  return detail::grad_mode_enabled;
}

// While alive, grad mode is `on` or off on this thread (torch.set_grad_enabled); the previous
// mode comes back at the end of the scope.
class SetGradEnabled {
 public:
  explicit SetGradEnabled(bool on) : previous_(detail::grad_mode_enabled) {
    detail::grad_mode_enabled = on;
  }
  ~SetGradEnabled() { detail::grad_mode_enabled = previous_; }
  SetGradEnabled(const SetGradEnabled&) = delete;
  SetGradEnabled& operator=(const SetGradEnabled&) = delete;

 private:
  bool previous_;
};

// While alive, ops record nothing and their outputs require no gradient: cheap evaluation.
class NoGradGuard : public SetGradEnabled {
 public:
  NoGradGuard() : SetGradEnabled(false) {}
};

// While alive, ops record again even inside a NoGradGuard (torch.enable_grad).
class EnableGradGuard : public SetGradEnabled {
 public:
  EnableGradGuard() : SetGradEnabled(true) {}
};

template <class T>
class Var {
 public:
  using value_type = T;

  // An undefined handle.
  Var() = default;
  // A leaf holding `value`; it requires a gradient only if asked.
  explicit Var(Tensor<T> value, bool requires_grad = false);
  // A leaf that requires a gradient: a trainable parameter.
  static Var parameter(Tensor<T> value) { return Var(std::move(value), true); }

  bool defined() const { return node_ != nullptr; }
  const Tensor<T>& value() const { return node_->value; }
  // Mutable access, for optimisers updating a parameter in place between steps.
  Tensor<T>& value() { return node_->value; }
  const Shape& shape() const { return node_->value.shape(); }
  std::size_t numel() const { return node_->value.numel(); }
  T item() const { return node_->value.item(); }

  // Whether a backward pass through this value reaches tracked leaves. An intermediate
  // whose tape was released by an earlier backward() no longer does: it is a constant now.
  bool requires_grad() const;
  bool is_leaf() const { return node_->is_leaf; }
  // Leaves only: start or stop tracking this leaf.
  void set_requires_grad(bool on);

  // The accumulated gradient (undefined until a backward pass reaches this value).
  const Tensor<T>& grad() const { return detail::written_grad(*node_); }
  // Mutable access, for optimisers and gradient clipping between backward() and a step.
  Tensor<T>& grad() { return detail::written_grad(*node_); }
  bool has_grad() const { return node_->grad.defined(); }
  // The accumulated gradient as a Var: after backward with create_graph, a tracked value that
  // can be differentiated again; otherwise a constant holding grad() (undefined if none).
  // An in-place change to grad() after such a pass (clipping, say) is not seen here.
  Var grad_var() const;
  // Sets the accumulated gradient to zero, keeping its buffer (torch's set_to_none=False). The
  // zeros are written lazily: the next backward pass overwrites the buffer instead of adding
  // to it, and grad() fills it with zeros if read before then. Unlike torch, a reference to
  // grad() taken before zero_grad() shows the old values until grad() is called again.
  void zero_grad() {
    node_->grad_is_zero = node_->grad.defined();
    node_->grad_graph.reset();
  }
  // Keep this intermediate's gradient in grad() after backward (leaves always keep theirs).
  void retain_grad() { node_->retains_grad = true; }

  // Reverse pass from this scalar (one element), seeded with 1.
  void backward(bool retain_graph = false, bool create_graph = false);
  // Reverse pass seeded with an upstream gradient of this value's shape (a vector-Jacobian
  // product). Unless retain_graph, the tape is released afterwards: every value recorded on
  // it becomes a constant, and recording starts afresh.
  // With create_graph (torch's backward(create_graph=True)), the pass records itself: each
  // leaf's grad_var() is then a tracked value that can be differentiated again, and the tape
  // is kept whatever retain_graph says (the new gradients' graph lives on it). Every op on the
  // way needs a graph form of its rule (detail/backward_rule.hpp); one without throws,
  // naming the op.
  void backward(const Tensor<T>& upstream, bool retain_graph = false, bool create_graph = false);

  // A new leaf holding a copy of the value, tracking nothing.
  Var detach() const { return Var(node_->value); }

  // For the engine and custom ops.
  static Var from_node(std::shared_ptr<detail::Node<T>> node) {
    Var v;
    v.node_ = std::move(node);
    return v;
  }
  detail::Node<T>* node() const { return node_.get(); }
  const std::shared_ptr<detail::Node<T>>& node_ptr() const { return node_; }

 private:
  std::shared_ptr<detail::Node<T>> node_;
};

extern template class Var<float>;
extern template class Var<double>;

}  // namespace tapegrad
