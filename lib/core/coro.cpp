// Coroutine frames and fiber drives: running weft coroutines on task fibers;
// the errors of coroutine misuse.

#include "core/task_core.hpp"
#include "core/runtime.hpp"

#include <weft/async_generator.hpp>
#include <weft/coro.hpp>
#include <weft/errors.hpp>
#include <weft/lowlevel/frame_pool.hpp>

#include <array>
#include <new>
#include <stdexcept>
#include <string>

namespace weft::detail {

// --- drives ------------------------------------------------------------------

namespace {

// A coroutine whose only job is to be resumed by foreign code: each resume
// notifies the drive, then suspends again. Its handle is what foreign
// awaitables see instead of the weft coroutine that awaits them.
struct trampoline {
  struct promise_type {
    static void* operator new(std::size_t size) { return lowlevel::frame_allocate(size); }
    static void operator delete(void* frame, std::size_t size) noexcept { lowlevel::frame_deallocate(frame, size); }
    trampoline get_return_object() noexcept {
      return trampoline{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
};

}  // namespace

// Resumes a weft coroutine chain on its task's fiber when the foreign
// awaitable it waits for completes, wherever that happens. The fiber's side
// (parked_, notified_) lives on the task's runtime thread only: a
// completion on another thread reaches it through the runtime's inbox.
class coro_drive {
 public:
  coro_drive(task_base& t) noexcept : task_(t), rt_(*t.rt_) {
    notify_call_.fn = &on_remote_notify;
    notify_call_.drive = this;
  }
  ~coro_drive() {
    if (trampoline_) trampoline_.destroy();
  }

  // The trampoline's frame is made at the first suspension of the drive
  // (a chain that never suspends costs no allocation); if that fails,
  // nothing has changed and bad_alloc comes out at the co_await.
  std::coroutine_handle<> intercept(std::coroutine_handle<> h) {
    WEFT_INVARIANT(!pending_);
    if (!trampoline_) trampoline_ = make_trampoline(this).h;
    pending_ = h;
    return trampoline_;
  }
  void cancel_intercept() noexcept { pending_ = {}; }

  // Called (through the trampoline, as the last thing it does before it
  // is suspended again) by whoever completes the foreign awaitable: an
  // Asio handler, another coroutine, another thread. Touches nothing after
  // handing the notification over: the fiber may resume and end the drive.
  void notify() noexcept {
    if (t_runtime == &rt_)
      mark_notified();
    else
      submit_remote(rt_, notify_call_);
  }

  void drive(std::coroutine_handle<> top) {
    std::coroutine_handle<> next = top;
    for (;;) {
      next.resume();
      if (top.done()) return;
      WEFT_INVARIANT(pending_);  // every suspension inside a weft chain is intercepted
      while (!notified_) {
        // A generic awaitable cannot be withdrawn: keep waiting, and let the
        // next checkpoint deliver a cancellation.
        auto abort = []() noexcept { return abort_result::failed; };
        parked_ = true;
        describe_wait(task_, "await_ (a coroutine awaits a foreign awaitable)");
        rt_.park(task_, abort);
      }
      notified_ = false;
      next = std::exchange(pending_, {});
    }
  }

 private:
  struct notify_call : remote_call {
    coro_drive* drive = nullptr;
  };
  static void on_remote_notify(remote_call* c, bool open) noexcept {
    WEFT_INVARIANT(open);  // the fiber waits for it, so the runtime is running
    static_cast<notify_call*>(c)->drive->mark_notified();
  }
  void mark_notified() noexcept {
    notified_ = true;
    if (parked_) {
      parked_ = false;
      rt_.reschedule(task_);
    }
  }

  // Notifies from await_suspend, where the trampoline is already suspended:
  // after notify() nothing touches its frame, which the fiber may destroy.
  struct notify_on_suspend {
    coro_drive* drive;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) const noexcept { drive->notify(); }
    void await_resume() const noexcept {}
  };
  static trampoline make_trampoline(coro_drive* drive) {
    for (;;) co_await notify_on_suspend{drive};
  }

  task_base& task_;
  runtime& rt_;
  std::coroutine_handle<> pending_;
  std::coroutine_handle<> trampoline_;
  notify_call notify_call_;
  bool notified_ = false;
  bool parked_ = false;
};

coro_drive* current_drive() noexcept {
  task_base* t = current_task();
  return t ? core_of(*t).drive_ : nullptr;
}

std::coroutine_handle<> drive_intercept(coro_drive& drive, std::coroutine_handle<> h) {
  return drive.intercept(h);
}

void drive_cancel_intercept(coro_drive& drive) noexcept { drive.cancel_intercept(); }

void throw_asio_await_outside_task() {
  throw std::logic_error(
      "weft coroutine: co_await of an asio::awaitable or an Asio operation needs a weft task: the coroutine waits "
      "for it by parking the fiber of the task that runs it (greenback::await_ or lowlevel::drive_coroutine from task "
      "code), and this coroutine was resumed where no task runs (an Asio handler, a foreign coroutine, a thread "
      "without a weft runtime)");
}

// --- async generator misuse ----------------------------------------------------

void throw_generator_busy(const char* what) {
  throw busy_resource_error(std::string("weft::async_generator::") + what +
                            ": a step of this generator is running (it has one consumer at a time: another task "
                            "is waiting in its next(), send(), throw_() or close())");
}

void throw_send_before_start() {
  throw std::logic_error(
      "weft::async_generator::send: the generator has not started, so it stands at no co_yield to receive the "
      "value; start it with next() (throw_() and close() work before the first next())");
}

void drive_on_fiber(task_base& me, std::coroutine_handle<> top) {
  coro_drive drive(me);
  coro_drive* outer = std::exchange(core_of(me).drive_, &drive);
  struct restore {
    task_base& t;
    coro_drive* outer;
    ~restore() { core_of(t).drive_ = outer; }
  } guard{me, outer};
  drive.drive(top);
}

}  // namespace weft::detail

void weft::lowlevel::drive_coroutine(std::coroutine_handle<> top) {
  detail::drive_on_fiber(detail::require_task("weft::lowlevel::drive_coroutine"), top);
}
