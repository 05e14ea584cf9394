// One wait of a task for something that may complete on any thread.
//
// The building block of every wait whose completer is not the task's own
// runtime: weft::use_fiber (an Asio operation run by any executor: another
// runtime's io_context, an asio::thread_pool, a strand), greenback::await_,
// and waits on other threads' work.
//
//   lowlevel::completion done;                // in the task, before starting the work
//   start_work([&] { result = ...; done.complete(); });   // exactly once, any thread
//   done.wait(abort);                         // parks until complete() has run
//
// Contract:
//  - complete() is called exactly once, from any thread (or from the task
//    itself, before it waits). On the task's runtime thread it marks the
//    completion and reschedules the task directly (no extra cost); from
//    any other thread it hands the completion to the runtime's inbox (one
//    asio::post per batch of completions, no allocation), and the runtime's
//    thread marks it. The task's state is only ever touched on its own
//    thread: the wake happens exactly once, never before the task has
//    parked, and is never lost.
//  - What the completer wrote before complete() is visible to the task
//    once wait() returns. After complete() the completer must not touch the
//    completion (the task may already have resumed and destroyed it).
//  - hold()/release(): work the task handed elsewhere that must end before
//    the task may resume, e.g. a cancellation posted to an operation's own
//    executor (it touches the operation, which the task owns). hold() is
//    called on the task's thread; release() once per hold(), from any thread
//    (at most one hold() may be outstanding while its release() is remote).
//  - wait(abort) parks until complete() has run and no hold is left. It is
//    a checkpoint in the sense of lowlevel::park: `abort` is called (on the
//    task's thread) if the task is cancelled while waiting; it returns
//    abort_result::failed (the work cannot be withdrawn: wait() keeps
//    waiting for the completion, the cancellation comes at the next
//    checkpoint) or abort_result::succeeded (withdrawn: wait() throws
//    weft::cancelled, and complete() must then never be called).
#pragma once

#include <weft/detail/core.hpp>
#include <weft/lowlevel/park.hpp>

namespace weft::lowlevel {

class completion {
 public:
  /// A completion for the current task. @throws std::logic_error outside a task.
  completion() : task_(&detail::require_task("weft::lowlevel::completion")), rt_(task_->rt_) {
    complete_call_.fn = &on_complete;
    complete_call_.owner = this;
    release_call_.fn = &on_release;
    release_call_.owner = this;
  }
  completion(const completion&) = delete;
  completion& operator=(const completion&) = delete;

  /// Marks the completion, from any thread; see the header comment.
  void complete() noexcept {
    if (detail::t_runtime == rt_)
      mark_complete();
    else
      detail::submit_remote(*rt_, complete_call_);
  }

  /// The task's thread: one more piece of work must release() before wait() returns.
  void hold() noexcept { ++holds_; }
  /// Any thread, once per hold().
  void release() noexcept {
    if (detail::t_runtime == rt_)
      mark_released();
    else
      detail::submit_remote(*rt_, release_call_);
  }

  /// The task's thread: complete() has run (its effects are visible).
  bool done() const noexcept { return done_; }
  /// The task whose wait this is.
  task_ref task() const noexcept { return task_ref(task_); }

  /// Parks until complete() has run and no hold is left (see the header
  /// comment). `what` describes the wait in task dumps (a literal), unless
  /// the caller described it already (lowlevel::describe_wait).
  /// @throws weft::cancelled if `abort` withdrew the work.
  void wait(function_ref<abort_result()> abort, const char* what = "a completion") {
    while (!done_ || holds_ != 0) {
      parked_ = true;
      if (task_->wait_what_ == nullptr) detail::describe_wait(*task_, what);
      lowlevel::park(abort);
    }
  }

 private:
  struct call : detail::remote_call {
    completion* owner = nullptr;
  };
  static void on_complete(detail::remote_call* c, bool open) noexcept {
    WEFT_INVARIANT(open);  // the task waits for it, so its runtime is running
    static_cast<call*>(c)->owner->mark_complete();
  }
  static void on_release(detail::remote_call* c, bool open) noexcept {
    WEFT_INVARIANT(open);
    static_cast<call*>(c)->owner->mark_released();
  }
  void mark_complete() noexcept {
    done_ = true;
    wake_if_ready();
  }
  void mark_released() noexcept {
    --holds_;
    wake_if_ready();
  }
  void wake_if_ready() noexcept {
    if (done_ && holds_ == 0 && parked_) {
      parked_ = false;
      detail::reschedule(*task_);
    }
  }

  detail::task_base* task_;
  detail::runtime* rt_;
  call complete_call_;
  call release_call_;
  unsigned holds_ = 0;
  bool done_ = false;
  bool parked_ = false;
};

}  // namespace weft::lowlevel
