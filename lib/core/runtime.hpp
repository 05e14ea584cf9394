// The runtime core (private): one per thread, a Boost.Fiber scheduling
// algorithm driven by an Asio io_context. See runtime.cpp for the loop.
#pragma once

#include "core/task_core.hpp"
#include "core/asio_thread.hpp"
#include "core/deadline_queue.hpp"
#include "core/inbox.hpp"
#include "core/stack_guard.hpp"
#include "core/stack_pool.hpp"
#include "core/stall_monitor.hpp"

#include <weft/detail/core.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/run.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/fiber/algo/algorithm.hpp>
#include <boost/fiber/context.hpp>
#include <boost/fiber/scheduler.hpp>

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>

#include <time.h>

namespace weft::detail {

class runtime;

/// A runtime's state is touched by its own thread only: anything else is a
/// misuse that would corrupt it silently, so it ends the program with a
/// message naming `what` instead.
[[noreturn]] void used_from_another_thread(const char* what) noexcept;

/// Task objects alive in the process (testing::live_task_objects).
std::size_t task_objects_alive() noexcept;

/// The Boost.Fiber algorithm: a FIFO of ready fibers. The dispatcher fiber
/// (which runs the reactor) is kept aside and picked only when the ready
/// queue is empty or a reactor pass is due, so task-to-task switches go
/// straight from one task to the next.
class reactor_algorithm final : public boost::fibers::algo::algorithm {
 public:
  explicit reactor_algorithm(runtime& rt) noexcept : rt_(rt) {}
  void awakened(boost::fibers::context* ctx) noexcept override;
  boost::fibers::context* pick_next() noexcept override;
  bool has_ready_fibers() const noexcept override { return !ready_.empty() || dispatcher_ != nullptr; }
  void suspend_until(std::chrono::steady_clock::time_point const&) noexcept override;
  void notify() noexcept override;
  bool has_ready_tasks() const noexcept { return !ready_.empty(); }
  /// Takes `ctx` out of the ready queue if it is first there.
  bool take_if_first(boost::fibers::context* ctx) noexcept {
    if (ready_.empty() || &ready_.front() != ctx) return false;
    ready_.pop_front();
    return true;
  }

 private:
  runtime& rt_;
  boost::fibers::scheduler::ready_queue_type ready_;
  boost::fibers::context* dispatcher_ = nullptr;
};

/// What the loop (loop.cpp), the scheduling algorithm (fiber_algorithm.cpp)
/// and the runtime's lifetime tell each other. One per runtime, touched on
/// its thread only.
struct loop_state {
  /// Picks of ready tasks between two reactor passes while tasks stay busy.
  static constexpr unsigned poll_interval = 64;
  /// Queued handlers run in one pass after the first that readied a task, at most.
  static constexpr unsigned max_handler_batch = 64;
  /// Stack a parking task must have left to run ready handlers itself
  /// (runtime::run_handlers_before_suspend); Asio's reactor alone keeps
  /// 1.5 KiB of events on the stack.
  static constexpr std::size_t handler_stack = 32 * 1024;

  unsigned ticks = 0;        ///< picks since the last reactor pass
  bool poll_due = false;     ///< the next pick goes to the dispatcher for a pass
  /// A parking task has just polled Asio and found nothing ready: the pass
  /// that follows need not poll again (one epoll_wait fewer per idle
  /// transition) before it blocks in run_one, which runs what is ready.
  bool found_nothing = false;
  // Why the dispatcher must go back to Boost.Fiber's dispatch loop instead
  // of staying in suspend_until() for the next pass:
  bool shutting_down = false;   ///< ~runtime runs: finished fibers must be released
  bool fiber_finished = false;  ///< a fiber finished (its context is released there)
  bool remote_ready = false;    ///< a fiber was made ready from another thread (taken in there)
  /// A task suspended through Boost.Fiber itself (sleep_for, a Boost.Fiber
  /// condition variable, future, mutex or channel), not through park(): its
  /// wait may have a deadline that only Boost.Fiber's dispatch loop knows.
  bool fiber_wait = false;
  /// The earliest deadline of those waits, as Boost.Fiber last told
  /// suspend_until(); max() when there is none.
  std::chrono::steady_clock::time_point fiber_deadline = std::chrono::steady_clock::time_point::max();
  /// ~runtime gives the thread back to Boost.Fiber's own algorithm, which
  /// picks without switching: the switch path does nothing then.
  bool detaching = false;

  bool fiber_deadline_due() const noexcept {
    return fiber_deadline != std::chrono::steady_clock::time_point::max() &&
           std::chrono::steady_clock::now() >= fiber_deadline;
  }
  bool dispatcher_may_stay() const noexcept {
    return !shutting_down && !fiber_finished && !remote_ready && !fiber_wait && !fiber_deadline_due();
  }
};

/// The coarse monotonic clock's resolution in seconds, -1 if it has none.
double coarse_clock_tick() noexcept;

class runtime {
 public:
  explicit runtime(const run_options& options);
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  static runtime* current() noexcept;

  /// Runs the root task, and the system tasks, until all have ended.
  void host(task_base* root);
  /// Starts `t` (one reference transferred) outside any task group, under
  /// the runtime's system scope: cancelled when the root task has ended.
  void spawn_system(task_base* t);

  // Tasks.
  void create_fiber(task_base* t, std::size_t stack_size);
  /// A fiber whose task object is constructed at the top of its stack (see
  /// spawn_in_stack). @throws what the allocation or the constructor throws.
  task_base* create_fiber_in_stack(std::size_t stack_size, std::size_t size, task_constructor construct, void* args);
  void task_main(task_base* t) noexcept;
  /// Starts the fiber of `t` on `sctx`, whose top `header` bytes are weft's.
  void start_fiber(task_base* t, const boost::context::stack_context& sctx, std::size_t header) noexcept;
  void reschedule(task_base& t) noexcept;
  void park(task_base& t, const abort_fn& abort);
  void yield(task_base& t) noexcept;
  std::uint64_t next_task_id() noexcept { return ++last_task_id_; }
  void bind_io(io_binding& b) noexcept { io_bindings_.push_back(b); }
  /// Unique among the runtimes of the process, ever (task ids are per runtime).
  std::uint64_t serial() const noexcept { return serial_; }

  // Cancel tree.
  void enter_scope(scope_node& s, task_base& t);
  std::exception_ptr exit_scope(scope_node& s, task_base& t, std::exception_ptr in_flight);
  /// Leaves `s` (see exit_scope); returns whether it catches a cancellation
  /// of its own (it was cancelled and no outer cancellation covers it).
  bool leave_scope(scope_node& s, task_base& t);
  void link_task_scope(task_base& t, scope_node& parent) noexcept;
  void cancel(scope_node& s, cancel_reason reason) noexcept;
  void set_deadline(scope_node& s, time_point t);
  void arm_deadline(scope_node& s) noexcept;

  // Time.
  /// Reads the clock (and remembers the reading).
  time_point now() {
    last_now_ = clock_->now();
    return last_now_;
  }
  /// now() + d, the deadline of a relative wait (sleep, move_on_after,
  /// timeouts). With the real clock and d of at least
  /// `coarse_deadline_from`, it reads the kernel's coarse monotonic clock
  /// instead (far cheaper) rounded up by one of its ticks: the deadline then
  /// lies between now + d and now + d + one tick (1-4 ms), never before.
  time_point deadline_in(duration d) {
    timespec ts;
    if (d >= coarse_deadline_from && coarse_tick_ >= 0 && ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) {
      // Summed so that the conversions overlap the clock read.
      const double ahead = coarse_tick_ + d.count();
      return time_point(duration((static_cast<double>(ts.tv_sec) + ahead) + static_cast<double>(ts.tv_nsec) * 1e-9));
    }
    return now() + d;
  }
  static constexpr duration coarse_deadline_from{1.0};
  deadline_queue& deadlines() noexcept { return deadlines_; }
  void fire_expired() noexcept;

  boost::asio::io_context& io() noexcept { return io_; }
  /// True if the runtime's clock is a weft::real_clock.
  bool has_real_clock() const noexcept { return dynamic_cast<const weft::real_clock*>(clock_.get()) != nullptr; }
  /// This thread's standing in io_: runs its handlers (see asio_thread.hpp).
  asio_thread& asio() noexcept { return asio_; }
  /// Where other threads hand this runtime work (see inbox.hpp).
  inbox& remote_inbox() noexcept { return *inbox_.in; }
  parking_lot& idle_waiters() noexcept { return idle_waiters_; }
  void call_soon(lowlevel::soon_call& c) noexcept { soon_.push_back(c); }

  /// Writes the task tree (lowlevel::dump_tasks).
  void dump(std::ostream& out);

  /// One turn of the loop; see runtime.cpp.
  void reactor_pass() noexcept;

  /// Every switch from one context to another (task, dispatcher, main
  /// context) goes through here, just before it happens: it sets the
  /// current task and carries the per-thread state that must be per task.
  void prepare_switch(boost::fibers::context* to, task_base* t) noexcept;
  /// A finished task's state slot goes away with it (see finish_task).
  void forget_current_state() noexcept { state_current_ = &state_scratch_; }

  // AddressSanitizer must be told about every stack switch, or exceptions
  // thrown on task stacks leave stale poison behind. No-ops otherwise.
  void before_switch(boost::fibers::context* to) noexcept;
  void after_switch() noexcept;

 private:
  friend class reactor_algorithm;
  void recalculate(scope_node& s) noexcept;
  void deliver_cancel(task_base& t) noexcept;
  void finish_task(task_base& t, std::exception_ptr e) noexcept;
  static void report_system_task_failure(const task_base& t, const std::exception_ptr& e) noexcept;
  void arm_wake_timer() noexcept;
  /// @returns whether it ran a handler.
  bool run_ready_handlers() noexcept;
  bool run_handlers_before_suspend(task_base& t) noexcept;
  bool run_soon_calls() noexcept;
  void wait_on_main();

  loop_state loop_;

  // Per-thread state kept per context (see thread_state): the thread's live
  // exception state and errno, and the slot of the context now running,
  // where they are saved when that context switches out.
  eh_state* eh_globals_ = nullptr;
  int* errno_ = nullptr;
  thread_state* state_current_ = nullptr;
  thread_state main_state_;
  thread_state dispatcher_state_;
  thread_state foreign_state_;  // fibers that are not weft tasks (plain Boost.Fiber fibers)
  thread_state state_scratch_;  // a finished task's last words, never read

  // Owns the runtime's reference to its inbox.
  struct inbox_owner {
    inbox* in;
    explicit inbox_owner(inbox* i) noexcept : in(i) {}
    inbox_owner(const inbox_owner&) = delete;
    inbox_owner& operator=(const inbox_owner&) = delete;
    ~inbox_owner() { in->release(); }
    inbox* operator->() const noexcept { return in; }
  };
  std::shared_ptr<weft::clock> clock_;
  // The coarse monotonic clock's tick in seconds if clock_ is a
  // weft::real_clock and that clock is available, else -1 (deadline_in).
  double coarse_tick_ = -1;
  // Whether clock_ may jump to the next deadline when the runtime is idle
  // (any clock but weft::real_clock): then the loop polls Asio before it
  // lets it (clock::try_autojump's contract).
  bool clock_may_autojump_ = true;
  // One thread runs the runtime and its I/O objects: no per-descriptor
  // locking in the reactor. Posting (from any thread) stays locked.
  // Where other threads hand this runtime work. Declared before io_, so
  // that it goes after io_ and any drain still queued there (which gives
  // its memory back to it); it only keeps io_'s address until then.
  // Closed by ~runtime.
  inbox_owner inbox_{new inbox(io_)};
  boost::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio_thread asio_{io_};
  // Holders of io_'s I/O objects, detached by ~runtime (see io_binding).
  intrusive_list<io_binding, io_binding_tag> io_bindings_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::steady_timer wake_timer_;
  std::chrono::steady_clock::time_point wake_armed_for_{};
  std::uint64_t wake_generation_ = 0;
  bool wake_pending_ = false;
  deadline_queue deadlines_;
  time_point last_now_{};
  stack_guard_thread stack_guard_thread_;  // overflow reports on this thread
  stack_pool* stacks_;
  reactor_algorithm* algo_ = nullptr;
  boost::fibers::context* main_ctx_ = nullptr;
  bool main_waiting_ = false;
  task_base* root_ = nullptr;
  scope_node root_scope_;    // parent of the root task's scope
  scope_node system_scope_;  // parent of system tasks' scopes
  parking_lot idle_waiters_;
  intrusive_list<lowlevel::soon_call, lowlevel::soon_call_tag> soon_;
  std::uint64_t last_task_id_ = 0;
  const std::uint64_t serial_ = next_serial();
  static std::uint64_t next_serial() noexcept;
  std::size_t live_tasks_ = 0;
  runtime* previous_ = nullptr;
  boost::fibers::context* switching_to_ = nullptr;
  void* main_fake_stack_ = nullptr;
  void* dispatcher_fake_stack_ = nullptr;
  const void* main_stack_bottom_ = nullptr;
  std::size_t main_stack_size_ = 0;
  stall_probe probe_;
  std::unique_ptr<stall_monitor> monitor_;  // declared after probe_: stops first
};

}  // namespace weft::detail
