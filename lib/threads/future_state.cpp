// The future's shared state: its phases, outcome, waiter list and
// done-callbacks, who waits how, and how plain threads wait. Nothing here
// runs on fibers (future_wait.cpp has the waits of tasks), so this file is
// also built into the ThreadSanitizer tests.

#include "core/inbox.hpp"
#include "threads/futex.hpp"
#include "threads/race_point.hpp"

#include <weft/detail/future_state.hpp>
#include <weft/errors.hpp>
#include <weft/report_error.hpp>

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

namespace weft::detail {

namespace {
std::atomic<std::size_t> g_live_states{0};
constexpr std::uint32_t word_done = 1;
constexpr std::uint32_t word_sleepers = 2;
}  // namespace

std::size_t future_states_alive() noexcept { return g_live_states.load(std::memory_order_relaxed); }

future_state_base::future_state_base(inbox* home) noexcept : home_(home) {
  if (home_ != nullptr) home_->add_ref();
  g_live_states.fetch_add(1, std::memory_order_relaxed);
}

future_state_base::~future_state_base() {
  // Callbacks of a future that never completed go with it, unrun (nobody
  // can complete it any more, so they could never run).
  while (future_callback* cb = callbacks_) {
    callbacks_ = cb->next;
    delete cb;
  }
  if (home_ != nullptr) home_->release();
  g_live_states.fetch_sub(1, std::memory_order_relaxed);
}

void future_state_base::release_promise() noexcept {
  if (promises_.fetch_sub(1, std::memory_order_acq_rel) != 1 || done()) return;
  std::unique_lock<std::mutex> lock(mutex_);
  if (phase_.load(std::memory_order_relaxed) >= phase::cancelled) return;
  try {
    error_ = std::make_exception_ptr(
        abandoned_error("weft::promise: the last promise of this future was destroyed before it set an outcome"));
    publish(lock, phase::exception);
  } catch (const std::bad_alloc&) {  // no memory for the error: end it cancelled, without a reason
    publish(lock, phase::cancelled);
  }
}

void future_state_base::append_reason(std::string_view reason) {
  if (reason.empty()) return;
  if (!reasons_.empty()) reasons_ += '\n';
  reasons_ += reason;
}

bool future_state_base::cancel(std::string_view reason) {
  std::unique_lock<std::mutex> lock(mutex_);
  switch (phase_.load(std::memory_order_relaxed)) {
    case phase::value:
    case phase::exception:
      return false;
    case phase::cancelled:
      append_reason(reason);
      return true;
    case phase::running:
      if (hook_ == nullptr) return false;  // a job that cannot be cancelled runs: refused
      append_reason(reason);
      hook_->fn(hook_);
      break;
    case phase::pending:
      append_reason(reason);
      break;
  }
  publish(lock, phase::cancelled);
  return true;
}

bool future_state_base::set_running(future_cancel_hook* hook) {
  std::lock_guard<std::mutex> lock(mutex_);
  switch (phase_.load(std::memory_order_relaxed)) {
    case phase::pending:
      hook_ = hook;
      phase_.store(phase::running, std::memory_order_release);
      return true;
    case phase::cancelled:
      return false;
    case phase::running:
      throw invalid_state_error("weft::promise::set_running: the job is running already");
    default:
      throw invalid_state_error("weft::promise::set_running: the future is done already");
  }
}

bool future_state_base::may_set(const char* what) const {
  switch (phase_.load(std::memory_order_relaxed)) {
    case phase::pending:
    case phase::running:
      return true;
    case phase::cancelled:
      return false;
    default:
      throw invalid_state_error(std::string(what) + ": the future's outcome is set already");
  }
}

bool future_state_base::set_exception(std::exception_ptr e) {
  if (!e) throw std::invalid_argument("weft::promise::set_exception: the exception_ptr is null");
  std::unique_lock<std::mutex> lock(mutex_);
  if (is_cancelled(e)) {
    // weft::cancelled never crosses a thread: the job ended by a
    // cancellation, so its future ends cancelled.
    if (!may_set("weft::promise::set_exception")) return false;
    append_reason("the job ended by a weft cancellation");
    publish(lock, phase::cancelled);
    return true;
  }
  if (!may_set("weft::promise::set_exception")) {
    lock.unlock();
    report_error(std::move(e), "the exception of a job whose weft::future was cancelled");
    return false;
  }
  error_ = std::move(e);
  publish(lock, phase::exception);
  return true;
}

void future_state_base::publish(std::unique_lock<std::mutex>& lock, phase p) noexcept {
  phase_.store(p, std::memory_order_release);
  hook_ = nullptr;
  // Take the waiters out of the list while the lock is held: from now on
  // their withdraw fails, so they stay parked until their wake below.
  future_waiter* first = nullptr;
  future_waiter** tail = &first;
  while (!waiters_.empty()) {
    future_waiter& w = waiters_.pop_front();
    w.wake_next = nullptr;
    *tail = &w;
    tail = &w.wake_next;
  }
  const bool callbacks = callbacks_ != nullptr;
  if (callbacks && home_ != nullptr) add_ref();  // for the posted run of the callbacks
  lock.unlock();
  race_point("future: the waiters are taken, not yet woken");
  // The caller holds a reference: the state outlives this function.
  if (thread_word_.exchange(word_done, std::memory_order_acq_rel) & word_sleepers) futex_wake(thread_word_);
  while (first != nullptr) {
    future_waiter* next = first->wake_next;  // the waiter may be gone once woken
    first->wake(first);
    first = next;
  }
  if (!callbacks) return;
  if (home_ != nullptr) {
    callbacks_call_.owner = this;
    callbacks_call_.fn = &on_callbacks;
    home_->submit(callbacks_call_);
  } else {
    run_callbacks(true);
  }
}

bool future_state_base::enlist(future_waiter& w) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (phase_.load(std::memory_order_relaxed) >= phase::cancelled) return false;
  waiters_.push_back(w);
  return true;
}

bool future_state_base::withdraw(future_waiter& w) noexcept {
  race_point("future: a waiter withdraws");
  std::lock_guard<std::mutex> lock(mutex_);
  if (!w.linked()) return false;  // the completer has it: its wake is coming
  intrusive_list<future_waiter, future_waiter_tag>::erase(w);
  return true;
}

std::exception_ptr future_state_base::exception() const {
  switch (current()) {
    case phase::value:
      return nullptr;
    case phase::exception:
      return error_;
    default:
      throw_failure("weft::future::exception", false);
  }
}

void future_state_base::throw_failure(const char* what, bool after_wait) const {
  switch (current()) {
    case phase::exception:
      std::rethrow_exception(error_);
    case phase::cancelled:
      // After a wait, the task's own cancellation wins over the future's.
      if (after_wait) raise_if_cancelled_at_entry();
      throw future_cancelled_error(reasons());
    default:
      throw invalid_state_error(std::string(what) + ": the future is not done yet");
  }
}

std::string future_state_base::reasons() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reasons_.empty() ? std::string("the future was cancelled") : reasons_;
}

// --- done-callbacks -----------------------------------------------------------------

callback_id future_state_base::add_callback(future_callback* cb) {
  std::unique_lock<std::mutex> lock(mutex_);
  cb->state = this;
  cb->id = ++last_callback_id_;
  const callback_id id = cb->id;
  if (phase_.load(std::memory_order_relaxed) < phase::cancelled) {
    cb->next = callbacks_;
    callbacks_ = cb;
    return id;
  }
  lock.unlock();
  // Done already: scheduled on the home runtime, never run inline there.
  if (home_ != nullptr) {
    add_ref();
    cb->single.owner = cb;
    cb->single.fn = &on_single_callback;
    home_->submit(cb->single);
    return id;
  }
  // No home runtime: it runs here, in the caller. A weft::cancelled (a
  // checkpoint in the caller's cancelled scope) is the caller's and goes
  // on; any other exception is reported, as for every done-callback.
  try {
    cb->invoke(*this);
  } catch (const cancelled&) {
    delete cb;
    throw;
  } catch (...) {
    report_error(std::current_exception(), "an exception escaped a done-callback of a weft::future");
  }
  delete cb;
  return id;
}

std::size_t future_state_base::remove_callback(callback_id id) noexcept {
  future_callback* found = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (future_callback** at = &callbacks_; *at != nullptr; at = &(*at)->next) {
      if ((*at)->id == id) {
        found = *at;
        *at = found->next;
        break;
      }
    }
  }
  delete found;
  return found != nullptr ? 1 : 0;
}

namespace {
void report_unrun(std::size_t n) noexcept {
  if (n == 0) return;
  try {
    report_error(std::make_exception_ptr(runtime_closed_error(
                     std::to_string(n) + " done-callback(s) of a weft::future were not run: the future's home "
                                         "runtime had ended when it completed")),
                 "done-callbacks dropped");
  } catch (const std::bad_alloc&) {
    report_error(std::make_exception_ptr(std::bad_alloc()), "done-callbacks of a weft::future dropped");
  }
}
// On the home runtime's thread outside any task (no checkpoint can throw
// weft::cancelled there): an escaping exception has nobody to go to.
void invoke_reporting(future_callback* cb, future_state_base& s) noexcept {
  try {
    cb->invoke(s);
  } catch (...) {
    report_error(std::current_exception(), "an exception escaped a done-callback of a weft::future");
  }
}
}  // namespace

void future_state_base::run_callbacks(bool open) noexcept {
  future_callback* list = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    list = std::exchange(callbacks_, nullptr);
  }
  std::size_t unrun = 0;
  while (list != nullptr) {
    future_callback* next = list->next;
    if (open)
      invoke_reporting(list, *this);
    else
      ++unrun;
    delete list;
    list = next;
  }
  report_unrun(unrun);
}

void future_state_base::on_callbacks(remote_call* c, bool open) noexcept {
  future_state_base* self = static_cast<state_call*>(c)->owner;
  self->run_callbacks(open);
  self->release();
}

void future_state_base::on_single_callback(remote_call* c, bool open) noexcept {
  future_callback* cb = static_cast<future_callback::call*>(c)->owner;
  future_state_base* self = cb->state;
  if (open)
    invoke_reporting(cb, *self);
  else
    report_unrun(1);
  delete cb;
  self->release();
}

// --- waits -----------------------------------------------------------------------------

void future_state_base::wait(const wait_options& options) {
  if (std::isnan(options.timeout.count()) || options.timeout.count() < 0)
    throw std::invalid_argument("weft::future::wait: the timeout is negative or NaN");
  if (task_base* me = current_task()) {
    wait_in_task(*me, options);
    return;
  }
  if (done()) return;
  if (t_runtime != nullptr)
    throw std::logic_error(
        "weft::future::wait: called on a runtime's thread outside any task (in an Asio handler, a soon call, a "
        "done-callback or a plain Boost.Fiber fiber), where blocking the thread would stop the runtime; wait from a "
        "weft task, or use add_done_callback");
  wait_on_thread(options);
}


void future_state_base::wait_on_thread(const wait_options& options) {
  using clock = std::chrono::steady_clock;
  const bool timed = std::isfinite(options.timeout.count());
  const clock::time_point deadline =
      timed ? clock::now() + std::chrono::duration_cast<clock::duration>(options.timeout) : clock::time_point::max();
  for (;;) {
    std::uint32_t w = thread_word_.load(std::memory_order_acquire);
    if (w & word_done) return;
    if (!(w & word_sleepers) &&
        !thread_word_.compare_exchange_weak(w, w | word_sleepers, std::memory_order_acq_rel,
                                            std::memory_order_acquire))
      continue;
    std::chrono::nanoseconds left(-1);
    if (timed) {
      left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now());
      if (left.count() <= 0) {
        if (done()) return;
        if (!options.shield) cancel("the waiting thread's timeout expired");
        throw timeout_error("weft::future::wait: the future was not done within the timeout");
      }
    }
    futex_wait(thread_word_, word_sleepers, left);
  }
}

}  // namespace weft::detail
