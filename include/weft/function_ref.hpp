// weft::function_ref: a non-owning reference to a callable, for callbacks
// that must not allocate (the blocking-call and backend interfaces take one).
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace weft {

template <class Sig>
class function_ref;

/// Refers to a callable that outlives the function_ref (typically a lambda on
/// the caller's stack). Two words, no allocation.
template <class R, class... Args>
class function_ref<R(Args...)> {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, function_ref> && std::is_invocable_r_v<R, F&, Args...>)
  function_ref(F&& f) noexcept  // NOLINT(google-explicit-constructor)
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(obj))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(obj_, std::forward<Args>(args)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

namespace detail {
using weft::function_ref;
}  // namespace detail

}  // namespace weft
