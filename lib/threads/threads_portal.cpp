// threads_portal: admission of calls from other threads, opening and closing.
//
// A call is accepted under the portal's mutex while the portal is open,
// and counted; it then goes through the runtime's inbox (submit_remote) and
// runs on the runtime's thread, where the count goes down. Closing refuses
// new calls under the same mutex and parks the opening task until the
// count is 0, so every accepted call runs exactly once, while the runtime
// (and the portal's task group, which coroutine calls start their tasks
// in) is still there.

#include <weft/cancel_scope.hpp>
#include <weft/lowlevel/completion.hpp>
#include <weft/task_group.hpp>
#include <weft/threads/threads_portal.hpp>

#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>

namespace weft::detail {

class portal_core {
 public:
  portal_core(runtime& rt, bool own_thread_calls) noexcept : rt_(&rt), own_thread_calls_(own_thread_calls) {}
  portal_core(const portal_core&) = delete;
  portal_core& operator=(const portal_core&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void submit(portal_call& call, const char* what) {
    if (t_runtime == rt_ && !own_thread_calls_)
      throw std::logic_error(std::string(what) +
                             ": called on the portal's own runtime thread (a portal is for other threads: waiting "
                             "there would deadlock the runtime); call the function directly or start a task");
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (state_ != phase::open) {
        if (own_thread_calls_)
          throw runtime_closed_error(std::string(what) + ": the caller is not running (" +
                                     (state_ == phase::created ? "not started yet" : "stopped") + ")");
        throw runtime_closed_error(std::string(what) + ": the threads portal is not running (" +
                                   (state_ == phase::created ? "not opened yet" : "closed") + ")");
      }
      ++accepted_;
    }
    call.portal = this;
    call.fn = &dispatch;
    submit_remote(*rt_, call);
  }

  void open(function_ref<void()> body) {
    require_task("weft::threads_portal::open");
    if (t_runtime != rt_)
      throw std::logic_error("weft::threads_portal::open: the portal belongs to another runtime than this task's");
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (state_ != phase::created)
        throw std::logic_error(state_ == phase::open
                                   ? "weft::threads_portal::open: the portal is open already (opened twice)"
                                   : "weft::threads_portal::open: the portal was closed; a portal opens once");
    }
    open_task_group([&](task_group& group) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        group_ = &group;
        state_ = phase::open;
      }
      try {
        body();
      } catch (...) {  // close, then let it go on (the group adds the tasks' failures)
        close();
        throw;
      }
      close();
    });
  }

  bool is_open() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_ == phase::open;
  }

  task_group& group() noexcept { return *group_; }

 private:
  enum class phase : unsigned char { created, open, closed };

  ~portal_core() = default;

  // Refuses new calls, then waits for the accepted ones to have run: not
  // interrupted by a cancellation (which stays pending for the next checkpoint).
  void close() {
    std::unique_lock<std::mutex> lock(mutex_);
    state_ = phase::closed;
    if (accepted_ == 0) return;
    drained_.emplace();
    lock.unlock();
    drained_->wait([]() noexcept { return lowlevel::abort_result::failed; }, "threads portal close (accepted calls)");
    drained_.reset();
  }

  // The runtime's thread: one accepted call has run.
  void finished() noexcept {
    bool last = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      last = --accepted_ == 0 && drained_.has_value();
    }
    if (last) drained_->complete();  // the closing task runs on this thread: it cannot be gone
  }

  static void dispatch(remote_call* c, bool open) noexcept {
    auto* call = static_cast<portal_call*>(c);
    portal_core* self = call->portal;  // the call may end its life in run
    call->run(call, open);
    self->finished();
  }

  runtime* rt_;
  bool own_thread_calls_;  // a caller's: its own thread may call it too
  std::atomic<std::size_t> refs_{1};
  mutable std::mutex mutex_;
  phase state_ = phase::created;
  std::size_t accepted_ = 0;                  // accepted calls that have not run yet
  std::optional<lowlevel::completion> drained_;  // the closing task's wait, while accepted_ > 0
  task_group* group_ = nullptr;               // while open or closing
};

namespace {

// The future's cancel hook: the thread that cancels (under the future's
// lock) hands the cancellation to the task's runtime.
void on_hook(future_cancel_hook* h) noexcept {
  portal_task_call* call = static_cast<portal_task_call::hook_t*>(h)->owner;
  call->refs.fetch_add(1, std::memory_order_relaxed);
  submit_remote(*call->rt, call->cancel_call);
}

void on_cancel_call(remote_call* c, bool open) noexcept {
  portal_task_call* call = static_cast<portal_task_call::cancel_call_t*>(c)->owner;
  if (open && call->scope != nullptr) call->scope->cancel();
  call->release();
}

}  // namespace

portal_task_call::portal_task_call() noexcept {
  hook.fn = &on_hook;
  hook.owner = this;
  cancel_call.fn = &on_cancel_call;
  cancel_call.owner = this;
}

portal_core* portal_create(const char* what, bool own_thread_calls) {
  runtime* rt = t_runtime;
  if (rt == nullptr) throw std::logic_error(std::string(what) + ": no weft runtime runs on this thread");
  return new portal_core(*rt, own_thread_calls);
}
void portal_add_ref(portal_core& p) noexcept { p.add_ref(); }
void portal_release(portal_core& p) noexcept { p.release(); }
void portal_submit(portal_core& p, portal_call& call, const char* what) { p.submit(call, what); }
void portal_open(portal_core& p, function_ref<void()> body) { p.open(body); }
bool portal_is_open(const portal_core& p) noexcept { return p.is_open(); }
task_group& portal_group(portal_core& p) noexcept { return p.group(); }

bool portal_run_task(portal_task_call& call, function_ref<void()> body) {
  cancel_scope scope;
  struct unlink {
    portal_task_call& call;
    ~unlink() { call.scope = nullptr; }
  } guard{call};
  call.scope = &scope;
  scope.run(body);
  return !scope.cancelled_caught();
}

}  // namespace weft::detail
