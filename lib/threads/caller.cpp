// weft::caller: a thread running a weft runtime with a portal open that
// accepts calls from every thread (its own too), a registry of the running
// callers by name, and stopping.
//
// The caller's thread: weft::run → the portal opens → ready → its main
// task waits for a stop request → the portal's task group is cancelled
// (running calls end cancelled; calls that start later end cancelled
// before running fn: caller_call checks first) → the portal closes
// (refusing new calls, running the accepted ones) → the runtime ends.
//
// Lifetime: the registry holds a reference to every caller from start_new
// until its thread ends; handles hold theirs. The thread is joined by the
// first stop() made from another thread, or by the destructor of the core
// (the last reference), or detached when that is released on the caller's
// own thread.

#include "core/runtime.hpp"

#include <weft/cancel_scope.hpp>
#include <weft/checkpoint.hpp>
#include <weft/report_error.hpp>
#include <weft/sync/event.hpp>
#include <weft/threads/caller.hpp>
#include <weft/time.hpp>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace weft::detail {

class caller_core {
 public:
  enum class phase : unsigned char { starting, running, stopping, stopped };

  caller_core(std::string name, bool protect, bool real_clock)
      : name_(std::move(name)), protect_(protect), real_clock_(real_clock) {}
  caller_core(const caller_core&) = delete;
  caller_core& operator=(const caller_core&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  const std::string& name() const noexcept { return name_; }
  bool protect() const noexcept { return protect_; }
  bool real_clock() const noexcept { return real_clock_; }
  portal_core& portal() noexcept { return *portal_; }

  phase current() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return phase_;
  }

  /// The calling thread (not the caller's): starts the thread and waits
  /// until the caller accepts calls. @throws what made the start fail.
  void start(const run_options& options);
  /// Waits while the caller is starting; returns the phase it reached.
  phase wait_started() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return phase_ != phase::starting; });
    return phase_;
  }
  /// Asks the caller to stop (once; any thread).
  void request_stop();
  /// On the caller's thread: cancels its calls (and an open_caller body)
  /// and wakes a thread caller's main task.
  void stop_here() noexcept;
  /// open_caller: the calling task's runtime serves the caller while body runs.
  void serve_here(function_ref<void()> body);
  /// Another thread than the caller's: waits for the thread to end, and joins it.
  void join();

  static caller_core* current_on_thread() noexcept { return t_caller; }
  /// A new handle (a reference of its own) to c.
  static caller handle_of(caller_core* c) noexcept {
    c->add_ref();
    return caller(c);
  }

 private:
  ~caller_core() {
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id())
        thread_.detach();  // the caller's thread is ending: it released the last reference
      else
        thread_.join();
    }
    if (portal_ != nullptr) portal_release(*portal_);
  }

  void main(const run_options& options) noexcept;
  void publish_portal(portal_core* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    portal_ = p;
  }
  void set_phase(phase p) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      phase_ = p;
    }
    changed_.notify_all();
  }

  static thread_local caller_core* t_caller;

  const std::string name_;
  const bool protect_;
  const bool real_clock_;
  std::atomic<unsigned> refs_{1};
  portal_core* portal_ = nullptr;  // set before the caller runs, kept until the core goes
  std::thread thread_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  phase phase_ = phase::starting;
  std::exception_ptr start_error_;
  bool stop_requested_ = false;
  weft::event* stop_event_ = nullptr;  // the main task's, while it waits (the caller's thread)
  bool joining_ = false;
};

thread_local caller_core* caller_core::t_caller = nullptr;

namespace {

// The running callers (and those starting or stopping), in start order.
// Immortal: callers' threads may still end during static destruction.
struct registry {
  std::mutex mutex;
  std::vector<caller_core*> callers;  // each holds a reference
  std::uint64_t next_number = 1;
};
registry& callers() {
  static auto* r = new registry;
  return *r;
}

void unregister(caller_core* c) noexcept {
  registry& r = callers();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = std::find(r.callers.begin(), r.callers.end(), c);
    if (it == r.callers.end()) return;
    r.callers.erase(it);
  }
  c->release();
}

// The stop request: runs on the caller's thread, outside any task.
class stop_job final : public portal_call {
 public:
  explicit stop_job(caller_core* c) noexcept : caller_(c) {
    caller_->add_ref();
    run = &run_call;
  }

 private:
  static void run_call(portal_call* c, bool open) noexcept {
    std::unique_ptr<stop_job> self(static_cast<stop_job*>(c));
    if (open) self->caller_->stop_here();
    self->caller_->release();
  }
  caller_core* caller_;
};

}  // namespace

void caller_core::start(const run_options& options) {
  add_ref();  // the thread's, until main() ends
  try {
    thread_ = std::thread([this, options] { main(options); });
  } catch (...) {
    release();
    throw;
  }
  if (wait_started() == phase::running) return;
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    error = start_error_;
  }
  thread_.join();
  if (error) std::rethrow_exception(error);
  throw runtime_closed_error("weft::caller::start_new: the caller " + name_ + " ended before it started");
}

void caller_core::main(const run_options& options) noexcept {
  t_caller = this;
  // The thread's name, as debuggers, top -H and /proc show it (at most 15
  // bytes: a longer name is cut).
  (void)::pthread_setname_np(::pthread_self(), name_.substr(0, 15).c_str());
  try {
    weft::run(options, [this] {
      portal_core* p = portal_create("weft::caller", /*own_thread_calls=*/true);
      publish_portal(p);
      portal_open(*p, [&] {
        weft::event stop;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          stop_event_ = &stop;
          phase_ = phase::running;
          if (stop_requested_) stop.set();  // asked before it ran
        }
        changed_.notify_all();
        // Published: stop_here() may set it from here on.
        // A stop from one of the caller's own calls cancels this task's
        // group (this task too) before it wakes it: the wait must end all
        // the same.
        weft::shielded([&] { stop.wait(); });
        {
          std::lock_guard<std::mutex> lock(mutex_);
          stop_event_ = nullptr;
          phase_ = phase::stopping;
        }
        changed_.notify_all();
        // The running calls end cancelled, and so do the calls that start
        // from now on (before fn runs). The portal then closes.
        portal_group(*p).cancel();
      });
    });
  } catch (...) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (phase_ == phase::starting) {
      start_error_ = std::current_exception();
    } else {
      lock.unlock();
      report_error(std::current_exception(), "weft::caller " + name_ + ": its runtime failed");
    }
  }
  unregister(this);
  set_phase(phase::stopped);
  t_caller = nullptr;
  release();  // the thread's reference
}

void caller_core::request_stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_requested_) return;
    stop_requested_ = true;
    if (phase_ != phase::running) return;  // starting: it stops once running; stopping or stopped: done
  }
  if (t_caller == this) {
    // One of its own calls: the calls (the calling one included) are
    // cancelled now, not after the calling one has gone on.
    stop_here();
    return;
  }
  auto job = std::make_unique<stop_job>(this);
  try {
    portal_submit(*portal_, *job, "weft::caller::stop");
    job.release();
  } catch (const runtime_closed_error&) {
    // Closing already (its runtime is ending): nothing to ask.
  }
}

void caller_core::stop_here() noexcept {
  portal_group(*portal_).cancel();
  std::lock_guard<std::mutex> lock(mutex_);
  if (stop_event_ != nullptr) stop_event_->set();
}

void caller_core::serve_here(function_ref<void()> body) {
  caller_core* const previous = t_caller;
  t_caller = this;
  struct restore {
    caller_core* self;
    caller_core* previous;
    ~restore() {
      unregister(self);
      self->set_phase(phase::stopped);
      t_caller = previous;
    }
  } guard{this, previous};
  portal_core* p = portal_create("weft::open_caller", /*own_thread_calls=*/true);
  publish_portal(p);
  portal_open(*p, [&] {
    bool stop_now = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      phase_ = phase::running;
      stop_now = stop_requested_;
    }
    changed_.notify_all();
    if (stop_now) stop_here();
    struct wind_up {
      caller_core* self;
      portal_core* p;
      ~wind_up() {
        self->set_phase(phase::stopping);
        portal_group(*p).cancel();  // the calls still running end cancelled
      }
    } end{this, p};
    body();
  });
}

void caller_core::join() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return phase_ == phase::stopped; });
  if (joining_) return;  // another stop() joins it
  joining_ = true;
  lock.unlock();
  if (thread_.joinable()) thread_.join();
}

void caller_add_ref(caller_core& c) noexcept { c.add_ref(); }
void caller_release(caller_core& c) noexcept { c.release(); }
portal_core& caller_portal(caller_core& c) noexcept { return c.portal(); }
const std::string& caller_name(const caller_core& c) noexcept { return c.name(); }
bool caller_uses_real_clock(const caller_core& c) noexcept { return c.real_clock(); }

}  // namespace weft::detail

namespace weft {

using detail::caller_core;

namespace {
// Callers still running when the program exits are stopped (their calls
// cancelled, their threads joined) rather than left running under the
// static destructors.
void stop_callers_at_exit() noexcept {
  if (caller_core::current_on_thread() != nullptr) return;  // exit() from a caller's call: it cannot wait for itself
  try {
    caller::stop_all(/*force=*/true);
  } catch (...) {
    report_error(std::current_exception(), "weft::caller: stopping the callers at exit");
  }
}

// A new caller, registered under its name (the registry's reference): the
// name is taken from now on.
caller_core* register_new(caller_options& options, bool real_clock, const char* what) {
  detail::registry& r = detail::callers();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (options.name.empty()) {
    options.name = "caller-" + std::to_string(r.next_number++);
  } else {
    for (caller_core* other : r.callers)
      if (other->name() == options.name)
        throw std::invalid_argument(std::string(what) + ": a caller named \"" + options.name + "\" is running");
  }
  auto* c = new caller_core(options.name, options.protect, real_clock);
  r.callers.push_back(c);
  return c;
}
}  // namespace

namespace detail {
void caller_open(caller_options& options, function_ref<void(caller&)> body) {
  require_task("weft::open_caller");
  caller_core* c = register_new(options, t_runtime->has_real_clock(), "weft::open_caller");
  caller handle = caller_core::handle_of(c);  // a reference of its own
  try {
    c->serve_here([&] { body(handle); });
  } catch (...) {
    unregister(c);  // if serve_here could not start
    throw;
  }
}
}  // namespace detail

caller caller::start_new(caller_options options) {
  static const bool stop_at_exit = std::atexit(stop_callers_at_exit) == 0;
  (void)stop_at_exit;
  caller_core* c = register_new(options, options.run.clock == nullptr, "weft::caller::start_new");
  caller handle(c);
  c->add_ref();
  try {
    c->start(options.run);
  } catch (...) {
    detail::unregister(c);
    throw;
  }
  return handle;
}

caller caller::current() {
  caller_core* c = caller_core::current_on_thread();
  if (c == nullptr) throw std::logic_error("weft::caller::current: this thread is no caller's");
  c->add_ref();
  return caller(c);
}

caller caller::get_instance(std::string_view name, bool create) {
  detail::registry& r = detail::callers();
  caller_core* found = nullptr;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    for (caller_core* c : r.callers)
      if (c->name() == name) {
        found = c;
        found->add_ref();
        break;
      }
  }
  if (found != nullptr) {
    caller handle(found);
    if (found->wait_started() == caller_core::phase::running) return handle;
  }
  if (!create)
    throw std::invalid_argument("weft::caller::get_instance: no caller named \"" + std::string(name) + "\" is running");
  caller_options options;
  options.name = std::string(name);
  return start_new(std::move(options));
}

std::vector<caller> caller::all_callers(bool running_only) {
  std::vector<caller_core*> cores;
  {
    detail::registry& r = detail::callers();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (caller_core* c : r.callers) {
      c->add_ref();
      cores.push_back(c);
    }
  }
  std::vector<caller> out;
  for (caller_core* c : cores) {
    caller handle(c);
    const caller_core::phase p = c->current();
    if (p == caller_core::phase::running || (!running_only && p == caller_core::phase::stopping))
      out.push_back(std::move(handle));
  }
  return out;
}

void caller::stop_all(bool force) {
  if (caller_core::current_on_thread() != nullptr)
    throw std::logic_error("weft::caller::stop_all: called on a caller's thread (it would wait for itself)");
  for (const caller& c : all_callers(false)) c.stop(force);
}

bool caller::stopped() const noexcept { return c_ != nullptr && c_->current() == caller_core::phase::stopped; }

void caller::stop(bool force) const {
  caller_core& c = core("weft::caller::stop");
  if (c.protect() && !force) return;
  c.request_stop();
  if (caller_core::current_on_thread() != &c) c.join();
}

}  // namespace weft
