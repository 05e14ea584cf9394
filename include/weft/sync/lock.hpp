// Locks for tasks: weft::lock and weft::fair_lock (strict FIFO hand-off).
//
// Not thread-safe: a lock belongs to one runtime. Used from another thread
// while tasks of its runtime hold or wait for it, it throws std::logic_error
// naming the misuse (a release there is never the owner's); a wake from the
// wrong thread that got past that would end the program, instead of
// corrupting the runtime. Owned by a task.
// weft::lock_guard holds a lock for a block. basic_lock (the base of both)
// also has the std::Lockable names, for std::unique_lock<weft::basic_lock>.
#pragma once

#include <weft/detail/core.hpp>

#include <cstddef>
#include <cstdint>

namespace weft {

class condition_variable;

/// The common implementation of weft::lock and weft::fair_lock.
class basic_lock {
 public:
  basic_lock(const basic_lock&) = delete;
  basic_lock& operator=(const basic_lock&) = delete;
  ~basic_lock();

  /// Takes the lock, blocking while another task holds it. Checkpoint: in a
  /// cancelled scope it throws even when the lock is free; taking a free
  /// lock (with nobody waiting) does not yield. A cancelled waiter leaves
  /// the queue clean.
  /// @throws weft::cancelled; std::logic_error if the calling task already
  /// holds it (weft locks are not reentrant), if it is held or awaited by
  /// tasks of another runtime (a lock belongs to one runtime's thread), or
  /// outside a task.
  void acquire();
  /// Takes the lock if that needs no waiting (it is free and nobody waits
  /// for it); false otherwise, also when the calling task holds it. Not a
  /// checkpoint. @throws std::logic_error if it is held or awaited by
  /// tasks of another runtime, or outside a task.
  bool try_acquire();
  /// Releases the lock. @throws std::logic_error if the lock is not held
  /// by the calling task (also when its owner has ended: ownership is by
  /// task identity, never by a pointer another task could come to reuse).
  void release();
  /// True while some task holds the lock (also one that has ended since:
  /// a lock is never released on its owner's behalf).
  bool locked() const noexcept { return owner_.task != 0; }

  // std::Lockable (reachable through basic_lock&: the derived classes'
  // names hide lock()).
  void lock() { acquire(); }
  bool try_lock() { return try_acquire(); }
  void unlock() { release(); }

  async_backend& backend() const noexcept;

 protected:
  explicit basic_lock(bool fair) noexcept : fair_(fair) {}

 private:
  friend class condition_variable;
  bool owned_by_current() const noexcept;
  // For condition_variable::notify: moves up to n waiters of `from` (tasks
  // of `rt`'s runtime) to this lock's queue, marked with `this` in their
  // entries' data, and wakes the first of the queue as release() would if
  // nobody holds the lock. False, moving nothing, if the lock is held or
  // awaited by tasks of another runtime (a misuse that the waiters, woken
  // instead, report from acquire).
  bool take_waiters(detail::parking_lot& from, std::size_t n, const detail::runtime& rt) noexcept;
  // For condition_variable::wait, in a waiter that take_waiters moved and
  // this lock's queue has woken: returns once the task holds the lock (it
  // may already, handed over by a fair lock). A checkpoint only when it
  // must wait again (a plain lock taken in between by another task):
  // @throws weft::cancelled, with the task out of the queue and without the lock.
  void acquire_as_woken(detail::task_base& me);
  // What release() does once the owner is cleared: hands a fair lock to its
  // first waiter, wakes a plain lock's first waiter.
  void wake_next() noexcept;
  // The owner: its runtime's serial number and its id, unique in the process.
  struct owner_id {
    std::uint64_t runtime = 0;
    std::uint64_t task = 0;
    friend bool operator==(const owner_id&, const owner_id&) = default;
  };
  static owner_id id_of(const detail::task_base& t) noexcept;
  void check_runtime(const detail::task_base& me, const char* what) const;
  owner_id owner_;
  detail::parking_lot waiters_;
  bool fair_;
};

/// A lock. release() wakes the first waiter, which then competes for the
/// lock (a task arriving in between, when nobody else waits, may take it
/// first; the woken waiter then waits again, at the back of the queue).
class lock final : public basic_lock {
 public:
  lock() noexcept : basic_lock(false) {}
};

/// A fair lock: strict first-come-first-served. release() hands the lock
/// directly to the first waiter.
class fair_lock final : public basic_lock {
 public:
  fair_lock() noexcept : basic_lock(true) {}
};

/// Holds a weft lock for the lifetime of the guard. The constructor is a
/// checkpoint (see basic_lock::acquire).
class lock_guard {
 public:
  explicit lock_guard(basic_lock& l) : lock_(l) { lock_.acquire(); }
  ~lock_guard() { lock_.release(); }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;

 private:
  basic_lock& lock_;
};

}  // namespace weft
