// weft::single_flight: concurrent calls for one key share one run of the function.
//
// Synchronous code that blocks (weft's own calls, greenback::await_) can be
// entered again by another task while it waits, so a "check, then compute"
// sequence is not atomic: a memoizer shared by tasks makes one underlying
// call per concurrent miss, and one that reserves its cache slot before
// filling it hands the empty slot to the callers that arrive meanwhile.
// single_flight closes that window: for each key, the first caller (the
// leader) runs its function and the callers that arrive while it runs wait
// for the leader's result. It only removes duplicate *concurrent* calls:
// nothing is cached once a call has ended (a memoizer keeps its own cache
// and fills it from inside the function it passes, before the waiters wake).
//
// Single-runtime by design, like weft::event: no locks on the hot path, so
// use it from the tasks of one runtime only (its map of flights is plain
// data). Other threads hand work to the runtime with weft::use_fiber /
// greenback::await_ (operations on any executor), weft::lowlevel::completion,
// or asio::post to its io_context.
#pragma once

#include <weft/detail/core.hpp>
#include <weft/lowlevel/park.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace weft {

async_backend& builtin_backend() noexcept;

/// Deduplicates concurrent calls by key (Go's singleflight), with weft's
/// cancellation. Keys are looked up in a std::unordered_map<Key, ...,
/// Hash, KeyEqual>: Key must be copyable, hashable by Hash and comparable
/// by KeyEqual, and neither may throw (a throw there ends the program:
/// the flight's waiters could not be woken). Value must be copyable (every
/// waiting caller gets its own copy), or void.
///
/// Not thread-safe: belongs to one runtime, like weft::event. It must not
/// be destroyed while a call is in flight, and it cannot be moved.
template <class Key, class Value, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class single_flight {
  static_assert(!std::is_reference_v<Value>, "weft::single_flight: Value must not be a reference");
  static_assert(std::is_void_v<Value> || std::is_copy_constructible_v<Value>,
                "weft::single_flight: Value must be copyable (every waiting caller gets a copy) or void");

 public:
  single_flight() = default;
  single_flight(const single_flight&) = delete;
  single_flight& operator=(const single_flight&) = delete;
  ~single_flight() { WEFT_INVARIANT(flights_.empty()); }

  /// Returns fn()'s result, running fn only if no call for `key` is in
  /// flight; otherwise blocks until the running call ends and returns a
  /// copy of its value or rethrows its exception (the same object).
  ///
  /// - Cancellation of a waiting caller: it leaves with weft::cancelled;
  ///   the flight and the other waiters go on.
  /// - A weft::cancelled thrown by fn (the leader's own scope was
  ///   cancelled) comes out of the leader's call only: the call is not
  ///   failed for the others. The longest-waiting caller becomes the leader
  ///   and runs *its own* fn; the rest keep waiting for it. With nobody
  ///   waiting, the flight ends.
  /// - Any other exception from fn ends the flight and is rethrown to the
  ///   leader and to every caller waiting for this flight. A waiter whose
  ///   copy of the value throws gets that exception instead of the value.
  /// - Nothing is remembered, neither values nor exceptions: a call that
  ///   arrives after a flight has ended starts a new one and runs fn again.
  ///
  /// fn runs in the leader's task, in its cancel scopes, and is called with
  /// no arguments; its result must convert to Value.
  ///
  /// Checkpoint: in a cancelled scope it throws before running or joining
  /// anything; a caller that finds a flight in progress blocks.
  /// @throws weft::cancelled; whatever fn (the leader's fn, for a waiting
  /// caller) throws; std::logic_error if fn calls call() again for its own
  /// key from the leader's task (it would wait for itself), or outside a
  /// task.
  template <class Fn>
  Value call(const Key& key, Fn&& fn) {
    static_assert(std::is_invocable_v<Fn&>, "weft::single_flight::call: fn must be callable with no arguments");
    if constexpr (!std::is_void_v<Value>)
      static_assert(std::is_convertible_v<std::invoke_result_t<Fn&>, Value>,
                    "weft::single_flight::call: fn's result must convert to Value");
    lowlevel::raise_if_cancelled();
    const lowlevel::task_ref me = lowlevel::current_task();
    auto [it, fresh] = flights_.try_emplace(key);
    // A node's address survives rehashing, and a flight stays in the map
    // as long as it has a leader (running fn, or woken to run it): `f` is
    // valid wherever it is used below. A waiter woken with an outcome does
    // not touch it again (the flight may be gone by then).
    flight& f = it->second;
    if (fresh) {
      f.key = &it->first;
    } else {
      if (f.leader == me)
        throw std::logic_error(
            "weft::single_flight::call: fn called call() for its own key (the leader would wait for itself)");
      outcome out;
      detail::lot_entry entry;
      entry.data = &out;
      f.waiters.park(entry, "single_flight call");  // a cancelled waiter leaves the queue
      if (!out.lead) return take(out);
      // Promoted: the previous leader was cancelled and handed us the flight.
    }
    f.leader = me;
    return lead(f, fn);
  }

  /// True while a call for `key` is in flight. Not a checkpoint.
  bool in_flight(const Key& key) const { return flights_.find(key) != flights_.end(); }
  /// How many callers wait for the flight of `key` (not counting its leader).
  std::size_t waiting(const Key& key) const {
    auto it = flights_.find(key);
    return it == flights_.end() ? 0 : it->second.waiters.size();
  }
  /// How many keys have a call in flight.
  std::size_t flights() const noexcept { return flights_.size(); }

  async_backend& backend() const noexcept { return builtin_backend(); }

 private:
  struct no_value {};
  using stored = std::conditional_t<std::is_void_v<Value>, no_value, Value>;

  // What a leader leaves in a waiter's slot (on the waiter's stack) before
  // waking it: a value, an exception, or the flight itself.
  struct outcome {
    std::optional<stored> value;
    std::exception_ptr error;
    bool lead = false;
  };

  struct flight {
    detail::parking_lot waiters;  // FIFO; each entry's data is an outcome*
    lowlevel::task_ref leader;
    const Key* key = nullptr;  // the map's own copy (the callers' keys may change meanwhile)
  };

  void end(flight& f) noexcept { flights_.erase(flights_.find(*f.key)); }

  static Value take(outcome& out) {
    if (out.error) std::rethrow_exception(out.error);
    if constexpr (!std::is_void_v<Value>) return std::move(*out.value);
  }

  template <class Fn>
  Value lead(flight& f, Fn& fn) {
    std::optional<stored> result;
    try {
      lowlevel::raise_if_cancelled();  // a promoted waiter may have been cancelled since it was woken
      if constexpr (std::is_void_v<Value>) {
        std::invoke(fn);
        result.emplace();
      } else {
        result.emplace(std::invoke(fn));
      }
    } catch (const cancelled&) {
      // The leader's own cancellation: not an outcome to share.
      hand_on(f);
      throw;
    } catch (...) {
      finish(f, nullptr, std::current_exception());
      throw;
    }
    finish(f, &*result, nullptr);
    if constexpr (!std::is_void_v<Value>) return std::move(*result);
  }

  // Wakes the longest waiter as the new leader, or ends the flight.
  void hand_on(flight& f) noexcept {
    if (f.waiters.empty()) {
      end(f);
      return;
    }
    static_cast<outcome*>(f.waiters.front().data)->lead = true;
    f.leader = lowlevel::task_ref(f.waiters.unpark_one()->task);
  }

  // Hands the outcome to every waiter and ends the flight. Nothing runs
  // until the caller next blocks, so the map entry is gone before any
  // waiter wakes, and a call arriving after this starts a new flight.
  void finish(flight& f, const stored* value, const std::exception_ptr& error) noexcept {
    while (!f.waiters.empty()) {
      auto* out = static_cast<outcome*>(f.waiters.front().data);
      if (error) {
        out->error = error;
      } else {
        try {
          out->value.emplace(*value);
        } catch (...) {  // this waiter's copy failed: it gets that exception
          out->error = std::current_exception();
        }
      }
      f.waiters.unpark_one();
    }
    end(f);
  }

  std::unordered_map<Key, flight, Hash, KeyEqual> flights_;
};

}  // namespace weft
