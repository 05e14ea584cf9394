// async_iter: synchronous iteration over an async iterator (an
// async_generator, or anything with next() returning an awaitable of
// std::optional<T>).
#pragma once

#include <weft/greenback/await.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <utility>

namespace greenback {

/// An *async iterator* has `next()` returning an awaitable of
/// std::optional<T> (empty at the end); weft::async_generator is one.
template <class I>
concept async_iterator = requires(I& it) { it.next(); };

/// Synchronous iteration over an async iterator, through await_:
///   for (auto& chunk : greenback::async_iter(conn)) ...
/// For async generators, send / throw_ / close map to their async
/// counterparts, so synchronous code can delegate to an async generator.
template <async_iterator I>
class async_iter {
 public:
  using value_type = typename detail::value_t<decltype(std::declval<I&>().next())>::value_type;

  explicit async_iter(I& it) noexcept : it_(&it) {}

  /// The next value, or empty at the end (await_(it.next())).
  std::optional<value_type> next() { return await_(it_->next()); }
  /// Sends a value into the generator; returns the next value.
  template <class S>
  std::optional<value_type> send(S&& s) {
    return await_(it_->send(std::forward<S>(s)));
  }
  /// Throws e into the generator; returns the next value.
  std::optional<value_type> throw_(std::exception_ptr e) { return await_(it_->throw_(std::move(e))); }
  /// Closes the generator.
  void close() { await_(it_->close()); }

  class iterator {
   public:
    using value_type = typename async_iter::value_type;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(async_iter* owner) : owner_(owner) { ++*this; }
    value_type& operator*() const { return *owner_->current_; }
    value_type* operator->() const { return &*owner_->current_; }
    iterator& operator++() {
      if (!owner_->advance()) owner_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.owner_ == b.owner_; }

   private:
    async_iter* owner_ = nullptr;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  bool advance() {
    auto v = next();
    if (!v) return false;
    // (A unique_ptr rather than an optional member: GCC 12 reports false
    // "maybe-uninitialized" warnings for optional<std::string> members here.)
    if (current_)
      *current_ = std::move(*v);
    else
      current_ = std::make_unique<value_type>(std::move(*v));
    return true;
  }
  I* it_;
  std::unique_ptr<value_type> current_;
};

}  // namespace greenback
