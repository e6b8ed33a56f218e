#include "tapegrad/autodiff/tape.hpp"

#include <algorithm>
#include <stdexcept>

#include "tapegrad/autodiff/binary.hpp"
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
void Var<T>::backward(bool retain_graph, bool create_graph) {
  if (numel() != 1)
    throw ShapeError("backward: the output has shape " + shape().to_string() +
                     ", not a single element; pass an upstream gradient of that shape");
  Tensor<T> one = Tensor<T>::ones(shape());
  if (!create_graph) {
    Tape<T>::current().backward(*node_, std::move(one), retain_graph);
    return;
  }
  backward(one, retain_graph, create_graph);
}

template <class T>
void Var<T>::backward(const Tensor<T>& upstream, bool retain_graph, bool create_graph) {
  if (!create_graph) {
    Tape<T>::current().backward(*node_, upstream, retain_graph);
    return;
  }
  Tape<T>::current().backward({*this}, {Var<T>(upstream)}, {true, true}, false);
}

template <class T>
Var<T> Var<T>::grad_var() const {
  if (node_->grad_graph) return from_node(node_->grad_graph);
  if (!node_->grad.defined()) return Var();
  return Var(detail::written_grad(*node_));
}

// ---- Gradients ----

template <class T>
bool Gradients<T>::needed(std::size_t i) const {
  const detail::Node<T>& in = *r_.inputs[i];
  return is_tracked(in) && (scratch_ == nullptr || !in.is_leaf || in.captured);
}

template <class T>
GradSlot<T> Gradients<T>::slot(std::size_t i) {
  detail::Node<T>& in = *r_.inputs[i];
  if (!is_tracked(in))
    throw std::logic_error(std::string(r_.op) + ": gradient written for input " +
                           std::to_string(i) + ", which does not require one");
  const Shape& shape = in.value.shape();
  if (in.is_leaf && scratch_ != nullptr && !in.captured) {
    scratch_->resize(shape);  // a leaf grad() was not asked about: written, then dropped
    return {scratch_->data(), scratch_->numel(), false};
  }
  const bool leaf_grad = in.is_leaf && scratch_ == nullptr;
  Tensor<T>& buf = leaf_grad ? in.grad : in.pending;
  if (buf.defined()) {
    if (buf.shape() != shape)
      throw ShapeError(std::string(r_.op) + ": accumulated gradient of shape " +
                       buf.shape().to_string() + " for input " + std::to_string(i) + " of shape " +
                       shape.to_string() + " (was the value resized?)");
    // The zeros zero_grad stands for are written over, not added to.
    if (!(leaf_grad && in.grad_is_zero)) return {buf.data(), buf.numel(), true};
    in.grad_is_zero = false;
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

// ---- GraphGradients ----

template <class T>
bool GraphGradients<T>::needed(std::size_t i) const {
  if (pass_.values) return pass_.values->needed(i);
  const detail::Node<T>& in = *r_.inputs[i];
  return is_tracked(in) && (!pass_.capture || !in.is_leaf || in.captured);
}

template <class T>
void GraphGradients<T>::add(std::size_t i, const Var<T>& g) {
  const Shape& shape = r_.inputs[i]->value.shape();
  if (!g.defined() || g.shape() != shape)
    throw ShapeError(std::string(r_.op) + ": graph backward gave a gradient of shape " +
                     (g.defined() ? g.shape().to_string() : std::string("(undefined)")) +
                     " for input " + std::to_string(i) + " of shape " + shape.to_string());
  if (!needed(i)) return;
  if (pass_.values) {
    pass_.values->add(i, g.value());
    return;
  }
  detail::Node<T>& in = *r_.inputs[i];
  if (!in.pending_graph) {
    in.pending_graph = g.node_ptr();
    if (in.is_leaf) pass_.leaves->push_back(&in);
  } else {
    in.pending_graph = tapegrad::add(Var<T>::from_node(in.pending_graph), g).node_ptr();
  }
}

// ---- Tape ----

template <class T>
void Tape<T>::push(Record<T>&& record) {
  detail::Node<T>& out = *record.output;
  out.requires_grad = true;
  out.is_leaf = false;
  out.epoch = epoch_;
  if (__builtin_expect(recording_aside_, 0)) {
    out.record = records_.size() + aside_.size();
    aside_.push_back(std::move(record));
    return;
  }
  if (records_.size() >= release_at_ && running_op_ == nullptr) release_unreachable();
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
  aside_.clear();
  release_at_ = min_records_before_release;
  ++epoch_;
}

namespace {
template <class T>
void add_into(Tensor<T>& dst, const Tensor<T>& src) {
  if (!dst.defined()) {
    dst = src;
    return;
  }
  for (std::size_t k = 0; k < dst.numel(); ++k) dst[k] += src[k];
}
}  // namespace

template <class T>
void Tape<T>::check_root(const detail::Node<T>& root, const Shape& seed_shape) const {
  if (__builtin_expect(
          running_op_ == nullptr && is_tracked(root) && seed_shape == root.value.shape(), 1))
    return;
  fail_root(root, seed_shape);
}

template <class T>
void Tape<T>::fail_root(const detail::Node<T>& root, const Shape& seed_shape) const {
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
  throw ShapeError("backward: upstream gradient of shape " + seed_shape.to_string() +
                   " for an output of shape " + root.value.shape().to_string());
}

template <class T>
void Tape<T>::backward(detail::Node<T>& root, const Tensor<T>& upstream, bool retain_graph) {
  check_root(root, upstream.shape());
  if (root.is_leaf) {
    add_into(detail::written_grad(root), upstream);
    return;
  }
  add_into(root.pending, upstream);
  run_raw(root.record, retain_graph, false);
}

template <class T>
void Tape<T>::backward(detail::Node<T>& root, Tensor<T>&& upstream, bool retain_graph) {
  check_root(root, upstream.shape());
  Tensor<T>& seed = root.is_leaf ? detail::written_grad(root) : root.pending;
  if (seed.defined())
    add_into(seed, upstream);
  else
    seed = std::move(upstream);
  if (!root.is_leaf) run_raw(root.record, retain_graph, false);
}

template <class T>
template <bool plain>
void Tape<T>::walk_raw(std::size_t top, Tensor<T>* scratch, detail::ProfileCollector* prof,
                       detail::LeafReadyHook<T>* hook) {
  // `plain`: no grad() capture, no profiler, no hook: the training step's pass, with their
  // tests compiled out of the loop.
  std::size_t i = top + 1;
  if constexpr (!plain)
    if (hook) hook->begin(hook->context, records_.data(), i);
  while (i-- > 0) {
    Record<T>& r = records_[i];
    detail::Node<T>& out = *r.output;
    if (!out.pending.defined()) {  // not on a path from the root
      if constexpr (!plain)
        if (hook) hook->done(hook->context, i);
      continue;
    }
    Gradients<T> grads(r, scratch);
    running_op_ = r.op;
    std::int64_t start = 0;
    if constexpr (!plain)
      if (prof) start = detail::profile_now();
    if (r.backward.has_raw()) {
      r.backward(out.pending, grads);
    } else {  // a custom op with a graph rule only: run it on constants
      detail::GraphPass<T> values;
      values.values = &grads;
      GraphGradients<T> graph_grads(r, values);
      r.backward(Var<T>(out.pending), graph_grads);
    }
    if constexpr (!plain)
      if (prof) detail::profile_backward(*prof, r.op, start);
    running_op_ = nullptr;
    if (out.retains_grad) add_into(detail::written_grad(out), out.pending);
    if (plain || !out.captured) out.pending = Tensor<T>();
    if constexpr (!plain)
      if (hook) hook->done(hook->context, i);
  }
}

template <class T>
void Tape<T>::run_raw(std::size_t top, bool retain_graph, bool capture) {
  // Rules see plain tensors; an op a rule applies to a tracked value records nothing, so the
  // records stay where they are while a rule runs.
  NoGradGuard no_grad;
  Tensor<T>* const scratch = capture ? &scratch_ : nullptr;
  // The Profiler recording on this thread, if any (profiler.hpp): it times each rule, and
  // ignores the ops that rules apply.
  detail::ProfileCollector* const prof = detail::profile_collector;
  if (prof) detail::profile_backward_begin(*prof);
  // Told when leaves' gradients are final (data-parallel training); not for grad(), which
  // leaves the leaves' gradients alone.
  detail::LeafReadyHook<T>* const hook = capture ? nullptr : detail::leaf_ready_hook<T>;
  try {
    if (scratch == nullptr && prof == nullptr && hook == nullptr)
      walk_raw<true>(top, nullptr, nullptr, nullptr);
    else
      walk_raw<false>(top, scratch, prof, hook);
  } catch (...) {
    running_op_ = nullptr;
    if (prof) detail::profile_backward_end(*prof);
    // Leave no half-summed intermediate gradient behind for a later pass.
    for (std::size_t j = 0; j <= top; ++j) records_[j].output->pending = Tensor<T>();
    if (!retain_graph) clear();
    throw;
  }
  if (prof) detail::profile_backward_end(*prof);
  if (!retain_graph) clear();
}

template <class T>
void Tape<T>::run_graph(std::size_t top, detail::GraphPass<T>& pass) {
  for (std::size_t i = top + 1; i-- > 0;) {
    Record<T>& r = records_[i];
    detail::Node<T>& out = *r.output;
    if (!out.pending_graph) continue;  // not on a path from a root
    if (!r.backward.has_graph())
      throw std::logic_error(
          std::string("backward with create_graph: op '") + r.op +
          "' has no graph form of its backward rule (one written with tapegrad's ops), so its "
          "gradient cannot be differentiated again; give make_op a graph rule for it");
    const Var<T> gy = Var<T>::from_node(out.pending_graph);
    if (!out.captured) out.pending_graph.reset();
    GraphGradients<T> grads(r, pass);
    running_op_ = r.op;
    r.backward(gy, grads);
    running_op_ = nullptr;
    if (out.retains_grad) add_into(detail::written_grad(out), gy.value());
  }
}

template <class T>
void Tape<T>::backward(const std::vector<Var<T>>& roots, const std::vector<Var<T>>& seeds,
                       const BackwardOptions& options, bool capture) {
  if (roots.size() != seeds.size())
    throw std::invalid_argument("backward: " + std::to_string(roots.size()) + " outputs but " +
                                std::to_string(seeds.size()) + " upstream gradients");
  for (std::size_t k = 0; k < roots.size(); ++k) check_root(*roots[k].node(), seeds[k].shape());
  std::size_t top = 0;
  bool any_recorded = false;
  for (const Var<T>& root : roots) {
    if (root.is_leaf()) continue;
    top = any_recorded ? std::max(top, root.node()->record) : root.node()->record;
    any_recorded = true;
  }
  // A root that is a leaf receives its seed; nothing else does.
  auto keeps = [&](const detail::Node<T>& n) { return !n.is_leaf || !capture || n.captured; };

  if (!options.create_graph) {
    for (std::size_t k = 0; k < roots.size(); ++k) {
      detail::Node<T>& n = *roots[k].node();
      if (!keeps(n)) continue;
      add_into(n.is_leaf && !capture ? detail::written_grad(n) : n.pending, seeds[k].value());
    }
    if (any_recorded)
      run_raw(top, options.retain_graph, capture);
    else if (!options.retain_graph)
      clear();
    return;
  }

  std::vector<detail::Node<T>*> leaves;
  detail::GraphPass<T> pass;
  pass.capture = capture;
  pass.leaves = &leaves;
  recording_aside_ = true;  // records made from here on wait in aside_ until the pass ends
  try {
    for (std::size_t k = 0; k < roots.size(); ++k) {
      detail::Node<T>& n = *roots[k].node();
      if (!keeps(n)) continue;
      if (!n.pending_graph) {
        n.pending_graph = seeds[k].node_ptr();
        if (n.is_leaf) leaves.push_back(&n);
      } else {
        n.pending_graph = add(Var<T>::from_node(n.pending_graph), seeds[k]).node_ptr();
      }
    }
    if (any_recorded) run_graph(top, pass);
  } catch (...) {
    running_op_ = nullptr;
    recording_aside_ = false;
    if (any_recorded)
      for (std::size_t j = 0; j <= top; ++j) records_[j].output->pending_graph.reset();
    for (detail::Node<T>* leaf : leaves) leaf->pending_graph.reset();
    for (Record<T>& r : aside_) records_.push_back(std::move(r));
    aside_.clear();
    throw;
  }
  recording_aside_ = false;
  for (Record<T>& r : aside_) records_.push_back(std::move(r));
  aside_.clear();
  if (capture) return;  // the caller collects the marked values' pending_graph
  // Leaves: grad_graph = earlier gradient + this pass's, and grad() its value.
  for (detail::Node<T>* leaf : leaves) {
    Var<T> g = Var<T>::from_node(std::move(leaf->pending_graph));
    if (leaf->grad_graph)
      g = add(Var<T>::from_node(leaf->grad_graph), g);
    else if (leaf->grad.defined())
      g = add(Var<T>(detail::written_grad(*leaf)), g);
    leaf->grad = g.value();
    leaf->grad_graph = g.node_ptr();
  }
}

template class Var<float>;
template class Var<double>;
template class Gradients<float>;
template class Gradients<double>;
template class GraphGradients<float>;
template class GraphGradients<double>;
template class Tape<float>;
template class Tape<double>;

}  // namespace tapegrad
