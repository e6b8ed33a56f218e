// SmallFunction<R(Args...)>: a move-only std::function that stores callables of up to
// `Capacity` bytes inline, so recording a backward closure on the tape allocates nothing.
// Larger callables still work; they are placed on the heap.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace tapegrad::detail {

template <class Signature, std::size_t Capacity = 112>
class SmallFunction;

template <class R, class... Args, std::size_t Capacity>
class SmallFunction<R(Args...), Capacity> {
 public:
  SmallFunction() = default;

  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, SmallFunction>>>
  SmallFunction(F&& f) {  // NOLINT: implicit like std::function
    if constexpr (fits<D>()) {
      new (&storage_) D(std::forward<F>(f));
      ops_ = &inline_ops<D>;
    } else {
      new (&storage_) D*(new D(std::forward<F>(f)));
      ops_ = &heap_ops<D>;
    }
  }

  SmallFunction(SmallFunction&& other) noexcept : ops_(other.ops_) {
    if (ops_) ops_->move(&storage_, &other.storage_);
    other.ops_ = nullptr;
  }
  SmallFunction& operator=(SmallFunction&& other) noexcept {
    if (this != &other) {
      reset();
      ops_ = other.ops_;
      if (ops_) ops_->move(&storage_, &other.storage_);
      other.ops_ = nullptr;
    }
    return *this;
  }
  SmallFunction(const SmallFunction&) = delete;
  SmallFunction& operator=(const SmallFunction&) = delete;
  ~SmallFunction() { reset(); }

  explicit operator bool() const { return ops_ != nullptr; }
  R operator()(Args... args) { return ops_->call(&storage_, std::forward<Args>(args)...); }

 private:
  struct Ops {
    R (*call)(void*, Args&&...);
    void (*move)(void* dst, void* src) noexcept;  // move-constructs dst, destroys src
    void (*destroy)(void*) noexcept;
  };

  template <class D>
  static constexpr bool fits() {
    return sizeof(D) <= Capacity && alignof(D) <= alignof(std::max_align_t) &&
           std::is_nothrow_move_constructible_v<D>;
  }

  template <class D>
  static constexpr Ops inline_ops{
      [](void* s, Args&&... a) -> R { return (*static_cast<D*>(s))(std::forward<Args>(a)...); },
      [](void* dst, void* src) noexcept {
        new (dst) D(std::move(*static_cast<D*>(src)));
        static_cast<D*>(src)->~D();
      },
      [](void* s) noexcept { static_cast<D*>(s)->~D(); }};

  template <class D>
  static constexpr Ops heap_ops{
      [](void* s, Args&&... a) -> R { return (**static_cast<D**>(s))(std::forward<Args>(a)...); },
      [](void* dst, void* src) noexcept { new (dst) D*(*static_cast<D**>(src)); },
      [](void* s) noexcept { delete *static_cast<D**>(s); }};

  void reset() noexcept {
    if (ops_) ops_->destroy(&storage_);
    ops_ = nullptr;
  }

  alignas(std::max_align_t) unsigned char storage_[Capacity];
  const Ops* ops_ = nullptr;
};

}  // namespace tapegrad::detail
