#include "tapegrad/autodiff/tape.hpp"

#include <algorithm>
#include <stdexcept>

#include "parallel.hpp"
#include "tapegrad/autodiff/profiler.hpp"

namespace tapegrad {

// ---- Var ----

template <class T>
Var<T>::Var(Tensor<T> value, bool requires_grad)
    : node_(std::allocate_shared<detail::Node<T>>(memory::PoolAllocator<detail::Node<T>>())) {
  if (!value.defined()) throw std::invalid_argument("Var: undefined tensor");
  node_->value = std::move(value);
  node_->requires_grad = requires_grad;
}

template <class T>
bool Var<T>::requires_grad() const {
  return is_tracked(*node_);
}

template <class T>
void Var<T>::set_requires_grad(bool on) {
  if (!node_->is_leaf)
    throw std::logic_error("set_requires_grad: only a leaf's tracking can be changed");
  node_->requires_grad = on;
}

template <class T>
void Var<T>::backward(bool retain_graph) {
  if (numel() != 1)
    throw ShapeError("backward: the output has shape " + shape().to_string() +
                     ", not a single element; pass an upstream gradient of that shape");
  backward(Tensor<T>::ones(shape()), retain_graph);
}

template <class T>
void Var<T>::backward(const Tensor<T>& upstream, bool retain_graph) {
  Tape<T>::current().backward(*node_, upstream, retain_graph);
}

// ---- Gradients ----

void detail::parallel_ranges(std::size_t count, std::size_t values_per_item,
                             void (*body)(void*, std::size_t, std::size_t), void* context) {
  parallel_for_values(count, values_per_item,
                      [&](std::size_t begin, std::size_t end) { body(context, begin, end); });
}

template <class T>
bool Gradients<T>::needed(std::size_t i) const {
  return is_tracked(*r_.inputs[i]);
}

template <class T>
GradSlot<T> Gradients<T>::slot(std::size_t i) {
  detail::Node<T>& in = *r_.inputs[i];
  if (!is_tracked(in))
    throw std::logic_error(std::string(r_.op) + ": gradient written for input " +
                           std::to_string(i) + ", which does not require one");
  Tensor<T>& buf = in.is_leaf ? in.grad : in.pending;
  const Shape& shape = in.value.shape();
  if (buf.defined()) {
    if (buf.shape() != shape)
      throw ShapeError(std::string(r_.op) + ": accumulated gradient of shape " +
                       buf.shape().to_string() + " for input " + std::to_string(i) + " of shape " +
                       shape.to_string() + " (was the value resized?)");
    return {buf.data(), buf.numel(), true};
  }
  buf.resize(shape);
  // A node that is also another input of this op (x * x) may be written twice: start from zero
  // so that both writes add.
  for (std::size_t j = 0; j < r_.input_count; ++j) {
    if (j != i && r_.inputs[j].get() == &in) {
      buf.fill(T(0));
      return {buf.data(), buf.numel(), true};
    }
  }
  return {buf.data(), buf.numel(), false};
}

template <class T>
void Gradients<T>::add(std::size_t i, const Tensor<T>& g) {
  const Shape& shape = r_.inputs[i]->value.shape();
  if (g.shape() != shape)
    throw ShapeError(std::string(r_.op) + ": backward returned a gradient of shape " +
                     g.shape().to_string() + " for input " + std::to_string(i) + " of shape " +
                     shape.to_string());
  const T* src = g.data();
  accumulate(i, [src](std::size_t k) { return src[k]; });
}

// ---- Tape ----

template <class T>
Tape<T>& Tape<T>::current() {
  thread_local Tape<T> tape;
  return tape;
}

template <class T>
void Tape<T>::push(Record<T>&& record) {
  if (records_.size() >= release_at_ && running_op_ == nullptr) release_unreachable();
  detail::Node<T>& out = *record.output;
  out.requires_grad = true;
  out.is_leaf = false;
  out.epoch = epoch_;
  out.record = records_.size();
  records_.push_back(std::move(record));
}

template <class T>
void Tape<T>::release_unreachable() {
  for (std::size_t i = records_.size(); i-- > 0;)
    if (records_[i].output.use_count() == 1) records_[i] = Record<T>();
  std::size_t kept = 0;
  for (std::size_t i = 0; i < records_.size(); ++i) {
    if (!records_[i].output) continue;
    if (kept != i) records_[kept] = std::move(records_[i]);
    records_[kept].output->record = kept;
    ++kept;
  }
  records_.erase(records_.begin() + static_cast<std::ptrdiff_t>(kept), records_.end());
  release_at_ = std::max(min_records_before_release, 2 * kept);
}

template <class T>
void Tape<T>::clear() {
  records_.clear();
  release_at_ = min_records_before_release;
  ++epoch_;
}

template <class T>
void Tape<T>::backward(detail::Node<T>& root, const Tensor<T>& upstream, bool retain_graph) {
  if (running_op_ != nullptr)
    throw std::logic_error(std::string("backward: called from inside a backward rule (of op '") +
                           running_op_ +
                           "'); a rule computes its inputs' gradients and must not start another "
                           "reverse pass on the same thread");
  if (!is_tracked(root)) {
    if (root.requires_grad && !root.is_leaf)
      throw std::logic_error(
          "backward: the tape that recorded this value was already released by an earlier "
          "backward(); run the forward pass again (or pass retain_graph = true)");
    throw std::logic_error(
        "backward: this value does not require a gradient (no tracked leaf "
        "was used to compute it, or it was computed under NoGradGuard)");
  }
  if (upstream.shape() != root.value.shape())
    throw ShapeError("backward: upstream gradient of shape " + upstream.shape().to_string() +
                     " for an output of shape " + root.value.shape().to_string());
  auto add_into = [](Tensor<T>& dst, const Tensor<T>& src) {
    if (!dst.defined()) {
      dst = src;
      return;
    }
    for (std::size_t k = 0; k < dst.numel(); ++k) dst[k] += src[k];
  };
  if (root.is_leaf) {
    add_into(root.grad, upstream);
    return;
  }
  add_into(root.pending, upstream);
  // Rules see plain tensors; an op a rule applies to a tracked value records nothing, so the
  // records (and `r` below) stay where they are while the rule runs.
  NoGradGuard no_grad;
  // The Profiler recording on this thread, if any (profiler.hpp): it times each rule, and
  // ignores the ops that rules apply.
  detail::ProfileCollector* const prof = detail::profile_collector;
  if (prof) detail::profile_backward_begin(*prof);
  std::size_t i = root.record + 1;
  detail::LeafReadyHook<T>* const hook = detail::leaf_ready_hook<T>;
  if (hook) hook->begin(hook->context, records_.data(), i);
  try {
    while (i-- > 0) {
      Record<T>& r = records_[i];
      detail::Node<T>& out = *r.output;
      if (!out.pending.defined()) {  // not on a path from the root
        if (hook) hook->done(hook->context, i);
        continue;
      }
      Gradients<T> grads(r);
      running_op_ = r.op;
      if (prof) {
        const std::int64_t start = detail::profile_now();
        r.backward(out.pending, grads);
        detail::profile_backward(*prof, r.op, start);
      } else {
        r.backward(out.pending, grads);
      }
      running_op_ = nullptr;
      if (out.retains_grad) add_into(out.grad, out.pending);
      out.pending = Tensor<T>();
      if (hook) hook->done(hook->context, i);
    }
  } catch (...) {
    running_op_ = nullptr;
    if (prof) detail::profile_backward_end(*prof);
    // Leave no half-summed intermediate gradient behind for a later pass.
    for (std::size_t j = 0; j <= root.record; ++j) records_[j].output->pending = Tensor<T>();
    if (!retain_graph) clear();
    throw;
  }
  if (prof) detail::profile_backward_end(*prof);
  if (!retain_graph) clear();
}

template class Var<float>;
template class Var<double>;
template class Gradients<float>;
template class Gradients<double>;
template class Tape<float>;
template class Tape<double>;

}  // namespace tapegrad
