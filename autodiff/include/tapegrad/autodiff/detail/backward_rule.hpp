// BackwardRule<T>: the backward rule a record holds, a move-only callable stored inline (up to
// `Capacity` bytes, so recording an op allocates nothing; larger callables go to the heap).
// A rule has one or both of two forms:
//   raw    void(const Tensor<T>& grad_output, Gradients<T>& grads)
//          plain loops over values: the fast form every first-order pass uses;
//   graph  void(const Var<T>& grad_output, GraphGradients<T>& grads)
//          written with tapegrad's ops: under create_graph it records itself, so the gradients
//          it produces can be differentiated again.
// A callable provides a form by being invocable with its arguments (an overloaded function
// object, or DualRule, provides both). Spell the parameter types out; `auto` matches both.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace tapegrad {

template <class T>
class Tensor;
template <class T>
class Var;
template <class T>
class Gradients;
template <class T>
class GraphGradients;

namespace detail {

template <class F, class T>
inline constexpr bool is_raw_rule = std::is_invocable_v<F&, const Tensor<T>&, Gradients<T>&>;
template <class F, class T>
inline constexpr bool is_graph_rule = std::is_invocable_v<F&, const Var<T>&, GraphGradients<T>&>;

// A raw rule and a graph rule of the same op, as one callable providing both forms.
template <class T, class Raw, class Graph>
struct DualRule {
  Raw raw;
  Graph graph;
  void operator()(const Tensor<T>& gy, Gradients<T>& g) { raw(gy, g); }
  void operator()(const Var<T>& gy, GraphGradients<T>& g) { graph(gy, g); }
};

template <class T, std::size_t Capacity = 112>
class BackwardRule {
 public:
  BackwardRule() = default;

  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, BackwardRule>>>
  BackwardRule(F&& f) {  // NOLINT: implicit like std::function
    static_assert(is_raw_rule<D, T> || is_graph_rule<D, T>,
                  "a backward rule is callable as (const Tensor<T>&, Gradients<T>&) or as "
                  "(const Var<T>&, GraphGradients<T>&)");
    if constexpr (fits<D>()) {
      new (&storage_) D(std::forward<F>(f));
      ops_ = &inline_ops<D>;
    } else {
      new (&storage_) D*(new D(std::forward<F>(f)));
      ops_ = &heap_ops<D>;
    }
  }

  BackwardRule(BackwardRule&& other) noexcept : ops_(other.ops_) {
    if (ops_) ops_->move(&storage_, &other.storage_);
    other.ops_ = nullptr;
  }
  BackwardRule& operator=(BackwardRule&& other) noexcept {
    if (this != &other) {
      reset();
      ops_ = other.ops_;
      if (ops_) ops_->move(&storage_, &other.storage_);
      other.ops_ = nullptr;
    }
    return *this;
  }
  BackwardRule(const BackwardRule&) = delete;
  BackwardRule& operator=(const BackwardRule&) = delete;
  ~BackwardRule() { reset(); }

  explicit operator bool() const { return ops_ != nullptr; }
  bool has_raw() const { return ops_ && ops_->raw; }
  bool has_graph() const { return ops_ && ops_->graph; }

  // Precondition: has_raw() / has_graph() respectively.
  void operator()(const Tensor<T>& gy, Gradients<T>& g) { ops_->raw(&storage_, gy, g); }
  void operator()(const Var<T>& gy, GraphGradients<T>& g) { ops_->graph(&storage_, gy, g); }

 private:
  using RawCall = void (*)(void*, const Tensor<T>&, Gradients<T>&);
  using GraphCall = void (*)(void*, const Var<T>&, GraphGradients<T>&);
  struct Ops {
    RawCall raw;                                  // null without a raw form
    GraphCall graph;                              // null without a graph form
    void (*move)(void* dst, void* src) noexcept;  // move-constructs dst, destroys src
    void (*destroy)(void*) noexcept;
  };

  template <class D>
  static constexpr bool fits() {
    return sizeof(D) <= Capacity && alignof(D) <= alignof(std::max_align_t) &&
           std::is_nothrow_move_constructible_v<D>;
  }

  // The callable stored in `s`: in place, or (on_heap) behind the pointer stored there.
  template <class D, bool on_heap>
  static D& stored(void* s) {
    if constexpr (on_heap)
      return **static_cast<D**>(s);
    else
      return *static_cast<D*>(s);
  }

  template <class D, bool on_heap>
  static constexpr RawCall raw_call() {
    if constexpr (is_raw_rule<D, T>)
      return [](void* s, const Tensor<T>& gy, Gradients<T>& g) { stored<D, on_heap>(s)(gy, g); };
    else
      return nullptr;
  }
  template <class D, bool on_heap>
  static constexpr GraphCall graph_call() {
    if constexpr (is_graph_rule<D, T>)
      return [](void* s, const Var<T>& gy, GraphGradients<T>& g) { stored<D, on_heap>(s)(gy, g); };
    else
      return nullptr;
  }

  template <class D>
  static constexpr Ops inline_ops{raw_call<D, false>(), graph_call<D, false>(),
                                  [](void* dst, void* src) noexcept {
                                    new (dst) D(std::move(*static_cast<D*>(src)));
                                    static_cast<D*>(src)->~D();
                                  },
                                  [](void* s) noexcept { static_cast<D*>(s)->~D(); }};

  template <class D>
  static constexpr Ops heap_ops{
      raw_call<D, true>(), graph_call<D, true>(),
      [](void* dst, void* src) noexcept { new (dst) D*(*static_cast<D**>(src)); },
      [](void* s) noexcept { delete *static_cast<D**>(s); }};

  void reset() noexcept {
    if (ops_) ops_->destroy(&storage_);
    ops_ = nullptr;
  }

  alignas(std::max_align_t) unsigned char storage_[Capacity];
  const Ops* ops_ = nullptr;
};

}  // namespace detail
}  // namespace tapegrad
