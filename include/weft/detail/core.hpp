// Internal: the runtime core's data structures that public templates need.
// Nothing here is API; see lowlevel/park.hpp for the extension interface.
#pragma once

#include <weft/function_ref.hpp>
#include <weft/detail/intrusive_list.hpp>
#include <weft/errors.hpp>
#include <weft/time.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <typeinfo>

namespace boost::fibers {
class context;
}

namespace weft {
class task_group;
class async_backend;

/// Per-task options for task_group::start_soon / start.
struct task_options {
  std::string name;            ///< Shown by task_info; default: derived from the function.
  std::size_t stack_size = 0;  ///< Bytes; 0 means the runtime's default stack size.
};
}  // namespace weft

namespace weft::detail {

class runtime;
class task_base;
struct group_access;
class coro_drive;

/// Two kinds of internal checks; a failure of either is a bug in weft:
///  - WEFT_INVARIANT: always on, in release builds too. A scheduler in an
///    unknown state must not run on: it prints the broken invariant with its
///    location and aborts. For cheap checks (a comparison, a flag).
///  - WEFT_DEBUG_ASSERT: the same, only in builds without NDEBUG. For checks
///    too costly for release builds (walking a list, searching a queue).
[[noreturn]] void invariant_failed(const char* expr, const char* file, int line) noexcept;
#define WEFT_INVARIANT(expr) \
  ((expr) ? void(0) : ::weft::detail::invariant_failed(#expr, __FILE__, __LINE__))
#if defined(NDEBUG)
#define WEFT_DEBUG_ASSERT(expr) void(0)
#else
#define WEFT_DEBUG_ASSERT(expr) WEFT_INVARIANT(expr)
#endif

/// Marks a function on the path of every socket operation, park or wake.
/// GCC and Clang place such functions together (.text.hot): one operation
/// then runs from a few code pages instead of a dozen spread over the
/// library, which counts where every system call costs TLB refills.
#if defined(__GNUC__)
#define WEFT_HOT [[gnu::hot]]
#else
#define WEFT_HOT
#endif

/// An entry in the runtime's deadline queue (lib/core/deadline_queue.hpp).
/// Lives inside the object that waits for it (a sleeping frame, a cancel
/// scope).
struct deadline_entry {
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  static constexpr std::size_t pending = npos - 1;  // in the queue's arrival list, not yet in its heap
  time_point when = inf_time;
  std::size_t heap_index = npos;  // npos, pending, or the position in the heap
  deadline_entry* prev = nullptr;  // the arrival list's links
  deadline_entry* next = nullptr;
  void (*fire)(deadline_entry*) noexcept = nullptr;
  void* owner = nullptr;
  bool queued() const noexcept { return heap_index != npos; }
};

struct scope_child_tag;
struct group_child_tag;
struct lot_tag;
struct io_binding_tag;

/// Ties an object that holds an Asio I/O object of the running runtime's
/// io_context (a socket, an acceptor) to that runtime. When the runtime
/// ends, before its io_context goes, it calls detach(self), which closes the
/// I/O object and moves it to an io_context that never ends, so that the
/// holder can still be destroyed later (or used, and refuse). Bound on
/// construction to the calling thread's runtime, if any; unbound by the
/// destructor. The runtime's thread only.
class io_binding : public list_hook<io_binding_tag> {
 public:
  using detach_fn = void (*)(void* self) noexcept;
  io_binding(void* self, detach_fn detach) noexcept;
  io_binding(const io_binding&) = delete;
  io_binding& operator=(const io_binding&) = delete;
  ~io_binding();

  void* self;
  detach_fn detach;
};

/// A node of the cancel-status tree. Each entered cancel scope is one node;
/// its parent is the scope that was innermost in the entering task (or, for
/// a task's own root scope, its task group's scope). `effectively_cancelled`
/// is kept up to date on every change, so a checkpoint reads one flag.
struct scope_node : list_hook<scope_child_tag> {
  enum class phase : unsigned char { idle, active, done };
  /// What the node stands for (for lowlevel::dump_tasks).
  enum class kind : unsigned char { cancel_scope, task_group, task, system };

  runtime* rt = nullptr;
  scope_node* parent = nullptr;
  task_base* owner = nullptr;  // the task that entered it
  intrusive_list<scope_node, scope_child_tag> children;
  deadline_entry deadline;
  cancel_reason reason = cancel_reason::explicit_request;
  phase state = phase::idle;
  kind role = kind::cancel_scope;
  bool shield = false;
  bool cancel_called = false;
  bool cancelled_caught = false;
  bool effectively_cancelled = false;
  bool is_timeout = false;

  bool parent_cancellation_visible() const noexcept {
    return !shield && parent != nullptr && parent->effectively_cancelled;
  }
};

/// The outcome of an abort callback (see lowlevel/park.hpp).
enum class abort_result : unsigned char {
  succeeded,  ///< The wait was unregistered; the runtime reschedules the task with `cancelled`.
  failed,     ///< The wait cannot be withdrawn; whoever completes it reschedules the task.
};

using abort_fn = function_ref<abort_result()>;

/// What the C++ runtime keeps per thread about exceptions being handled
/// (the Itanium C++ ABI's __cxa_eh_globals: the stack of caught exceptions
/// and the std::uncaught_exceptions() count). weft saves and restores it at
/// every switch, so that each task (and the loop) has its own.
struct eh_state {
  void* caught = nullptr;
  unsigned int uncaught = 0;
#if defined(__ARM_EABI_UNWINDER__)
  void* propagating = nullptr;
#endif
};

/// What C and C++ keep per thread that code running in tasks expects to be
/// its own: the exception state and `errno`. The runtime saves the running
/// context's copy and installs the next one's at every switch.
struct thread_state {
  eh_state eh;
  int errno_value = 0;
};

/// Work handed to a runtime from any thread (lowlevel::completion, and the
/// runtime's inbox behind it). `fn` runs once: on the runtime's thread,
/// outside any task, with `open` true; or, if the runtime has ended first,
/// with `open` false on whichever thread finds that out. The call must stay
/// alive until `fn` has started; `fn` may end its lifetime.
struct remote_call {
  remote_call* next = nullptr;
  void (*fn)(remote_call* self, bool open) noexcept = nullptr;
};

/// A parked task waiting in a parking_lot. Lives on the waiter's stack.
struct lot_entry : list_hook<lot_tag> {
  task_base* task = nullptr;
  void* data = nullptr;  // for the primitive's own use (hand-off values)
  /// If set, unparking calls it instead of rescheduling `task` (a waiter
  /// that is not a task of this runtime: a join from another runtime).
  void (*wake)(lot_entry& self) noexcept = nullptr;
};

/// A FIFO of parked tasks: the building block of every wait queue
/// (trio's ParkingLot).
class parking_lot {
 public:
  /// Parks the current task in this lot until unparked. A checkpoint: if the
  /// task is cancelled while parked it leaves the lot and `cancelled` is thrown.
  /// `what` (and `arg`, if not -1) describe the wait in task dumps.
  /// The entry may be moved to another lot meanwhile (repark): a
  /// cancellation takes it out of whichever lot holds it then.
  void park(lot_entry& entry, const char* what = "a wait queue", long long arg = -1);
  /// Wakes the first waiter; returns it or nullptr. The waker may hand it a
  /// value through entry->data before calling.
  lot_entry* unpark_one() noexcept;
  std::size_t unpark_all() noexcept;
  /// Moves up to `n` waiters, first first, to the back of `to` without
  /// waking them (trio's ParkingLot.repark). Each stays parked once: it is
  /// woken by whoever unparks it from `to` (still exactly one reschedule per
  /// park), and a cancellation takes it out of `to`. If `data` is not null
  /// it is stored in each moved entry (so that the waiter, once woken, can
  /// tell that it was moved); if `what` is not null it becomes the wait's
  /// description in task dumps. Returns how many moved. The waiters of both
  /// lots must be tasks of one runtime, the calling thread's: the caller
  /// checks (check_waker on this lot, and the same runtime for `to`).
  std::size_t repark(parking_lot& to, std::size_t n, void* data = nullptr, const char* what = nullptr) noexcept;
  std::size_t repark_all(parking_lot& to, void* data = nullptr, const char* what = nullptr) noexcept {
    return repark(to, static_cast<std::size_t>(-1), data, what);
  }
  /// Throws std::logic_error naming `what` if this lot has waiters and they
  /// are tasks of another runtime than the calling thread's: a waker must
  /// run on the waiters' thread. One compare when there are waiters.
  void check_waker(const char* what) const {
    if (!waiters_.empty()) check_same_runtime(what);
  }
  bool empty() const noexcept { return waiters_.empty(); }
  std::size_t size() const noexcept { return waiters_.size(); }
  lot_entry& front() noexcept { return waiters_.front(); }
  const lot_entry& front() const noexcept { return waiters_.front(); }
  /// Queues an entry with a `wake` function, without parking anyone.
  void add(lot_entry& entry) noexcept { waiters_.push_back(entry); }

 private:
  void check_same_runtime(const char* what) const;
  intrusive_list<lot_entry, lot_tag> waiters_;
};


/// The runtime's own state of a task (lib/core/task_core.hpp): its fiber,
/// place in the cancel tree, group, joiners, stack and switch state. Kept
/// inside the task object, without being spelled out here.
struct task_core;
/// Bytes of a task_core (checked where it is defined).
inline constexpr std::size_t task_core_size = 264;

/// One task: its result, identity, and the state that inline code of the
/// public headers reads; the rest is the runtime's (task_core).
/// Reference-counted (single-threaded): the runtime holds one reference until
/// the task finishes, each task<T> handle holds one.
class task_base : public list_hook<group_child_tag> {
 public:
  enum class state : unsigned char { created, running, parked, scheduled, done };

  task_base() noexcept;
  task_base(const task_base&) = delete;
  task_base& operator=(const task_base&) = delete;

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ != 0) return;
    if (in_stack_)
      this->~task_base();  // its memory is its stack's, returned with the stack
    else
      delete this;
  }

  /// Runs the user's function and stores its value. Called once on the task's fiber.
  virtual void invoke() = 0;

  std::string name() const;
  bool done() const noexcept { return state_ == state::done; }

  // All below: owned by the runtime core.
  std::uint64_t id_ = 0;
  const std::type_info* fn_type_ = nullptr;  // for the default name
  void* fn_ptr_ = nullptr;                    // for the default name of plain functions
  runtime* rt_ = nullptr;
  scope_node* status_ = nullptr;  // innermost entered scope
  std::exception_ptr exception_;
  // What the task is parked on, for task dumps (see describe_wait).
  const char* wait_what_ = nullptr;
  long long wait_arg_ = -1;
  time_point wait_until_ = inf_time;
  state state_ = state::created;
  bool ended_cancelled_ = false;
  bool in_stack_ = false;  // constructed at the top of its own stack (see spawn_in_stack)

 protected:
  virtual ~task_base();

 private:
  friend task_core& core_of(task_base& t) noexcept;
  friend const task_core& core_of(const task_base& t) noexcept;
  std::size_t refs_ = 1;
  alignas(void*) unsigned char core_[task_core_size];
};

/// Throws the `cancelled` for the current task's outermost cancelled scope.
[[noreturn]] void throw_cancelled(task_base& t);

/// The runtime of the calling thread, or nullptr.
extern constinit thread_local runtime* t_runtime;
inline runtime* current_runtime() noexcept { return t_runtime; }
/// Queues `call` for `rt`'s thread (see remote_call). Thread-safe; `rt`
/// must not have ended before this returns (a task of it waits for `call`).
void submit_remote(runtime& rt, remote_call& call) noexcept;
/// Makes the parked task `t` runnable. On t's runtime thread only: from any
/// other thread this is a misuse that ends the program with a message
/// (never a silent corruption of the runtime).
void reschedule(task_base& t) noexcept;
/// The running task of this thread (set by the scheduler at every switch).
extern constinit thread_local task_base* t_current_task;
/// The running task, or nullptr (not in a task, or no runtime).
inline task_base* current_task() noexcept { return t_current_task; }
/// Throws the std::logic_error of require_task outside a task.
[[noreturn]] void throw_not_in_task(const char* what);
/// The running task; throws std::logic_error naming `what` outside a task.
inline task_base& require_task(const char* what) {
  task_base* t = t_current_task;
  if (t == nullptr) [[unlikely]]
    throw_not_in_task(what);
  return *t;
}

/// Describes the wait `t` is about to park in, for task dumps: `what` (a
/// static string), an optional number (a file descriptor, a task id; -1:
/// none) and an optional time. Cleared when the task wakes.
inline void describe_wait(task_base& t, const char* what, long long arg = -1, time_point until = inf_time) noexcept {
  t.wait_what_ = what;
  t.wait_arg_ = arg;
  t.wait_until_ = until;
}

/// The entry of every blocking call (trio's checkpoint_if_cancelled): in a
/// cancelled scope it throws `cancelled`, whether or not the call would have
/// blocked. Outside a task it does nothing (the call itself reports that).
inline void raise_if_cancelled_at_entry() {
  if (task_base* t = t_current_task; t != nullptr && t->status_->effectively_cancelled) throw_cancelled(*t);
}

/// Hands `t` (one reference transferred) to the runtime: creates its fiber and
/// schedules it as a child of `group`. Throws if the group does not accept tasks.
void spawn(task_group& group, task_base* t, task_options&& opts);
/// Constructs a task object in `mem` (from arguments behind `args`) and
/// returns it; may throw, and then has constructed nothing.
using task_constructor = task_base* (*)(void* mem, void* args);
/// Task objects of at most this size and alignment can live at the top of
/// their own stack (see spawn_in_stack).
inline constexpr std::size_t in_stack_task_max_size = 512;
inline constexpr std::size_t in_stack_task_max_align = 16;
/// Like spawn, for a task that nothing else will hold (no handle): its object
/// (`size` bytes) is constructed by `construct` at the top of the stack its
/// fiber runs on, so that starting it touches no more memory than the stack
/// itself, and the object is destroyed (not freed) by its last release, when
/// the task ends. The group is checked first: if it refuses the task,
/// nothing is constructed.
void spawn_in_stack(task_group& group, task_options&& opts, std::size_t size, task_constructor construct, void* args);
/// Starts `t` (one reference transferred) on this thread's runtime outside
/// any task group; it is cancelled once the root task has ended, and the
/// runtime waits for it. For fibers started on behalf of coroutines that run
/// outside any task (greenback::with_portal_run_sync).
void spawn_system_task(task_base* t);
/// Like spawn, then parks until the child runs (task_group::start semantics).
void start(task_group& group, task_base* t, task_options&& opts);
/// Parks until `t` is done. Checkpoint (also when `t` is already done: in a
/// cancelled scope it throws; it does not yield then).
void wait_done(task_base& t);
/// Same, immune to cancellation.
void wait_done_shielded(task_base& t);
/// Cancels `t` via its own scope; true if it took effect.
bool cancel_task(task_base& t) noexcept;


/// Demangled name of a type, for default task names. Computed once per
/// type. Thread-safe.
std::string demangle(const std::type_info& type);
/// Symbol name of a function address (the dynamic symbol table, else the
/// ELF file's static one), or empty. Computed once per address. Thread-safe.
std::string function_name(void* fn);
/// How many times an ELF symbol table was read (for tests of the cache).
std::size_t symbol_table_reads() noexcept;

}  // namespace weft::detail
