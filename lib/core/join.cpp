// Waiting for a task to finish (task::wait, join), from its own runtime or
// from another one.

#include "core/task_core.hpp"
#include "core/runtime.hpp"

#include <weft/cancel_scope.hpp>
#include <weft/lowlevel/completion.hpp>

#include <stdexcept>

namespace weft::detail {

namespace {
// A task of one runtime waiting for a task of another. The target's state
// and its joiners belong to its own thread: the wait is registered there
// (through its runtime's inbox), woken from there through a completion, and
// withdrawn from there if the waiter is cancelled. The target's runtime
// cannot end before the target has, and an ended runtime runs late calls
// with `open == false`: then the target is done.
struct remote_join {
  struct call : remote_call {
    remote_join* join = nullptr;
  };
  explicit remote_join(task_base& t) : target(t) {
    enlist.join = this;
    enlist.fn = &on_enlist;
    withdraw.join = this;
    withdraw.fn = &on_withdraw;
    entry.wake = &on_wake;
    entry.data = this;
  }
  static void on_enlist(remote_call* c, bool open) noexcept {
    remote_join& j = *static_cast<call*>(c)->join;
    if (!open || j.target.done()) {
      j.done.complete();
      return;
    }
    core_of(j.target).joiners_.add(j.entry);
  }
  static void on_wake(lot_entry& e) noexcept {
    static_cast<remote_join*>(e.data)->done.complete();
  }
  static void on_withdraw(remote_call* c, bool open) noexcept {
    remote_join& j = *static_cast<call*>(c)->join;
    if (open && j.entry.linked()) {
      intrusive_list<lot_entry, lot_tag>::erase(j.entry);
      j.done.complete();
    }
    j.done.release();
  }

  task_base& target;
  lowlevel::completion done;
  lot_entry entry;
  call enlist;
  call withdraw;
};

void wait_done_remote(task_base& me, task_base& t) {
  raise_if_cancelled_at_entry();
  remote_join j(t);
  submit_remote(*t.rt_, j.enlist);
  bool aborted = false;
  auto abort = [&]() noexcept {
    if (!aborted) {
      aborted = true;
      j.done.hold();  // until the withdrawal has run on the target's thread
      submit_remote(*t.rt_, j.withdraw);
    }
    return abort_result::failed;
  };
  describe_wait(me, "join of a task of another runtime, id", static_cast<long long>(t.id_));
  j.done.wait(abort);
  if (aborted) throw_cancelled(me);
}
}  // namespace

void wait_done(task_base& t) {
  if (t_runtime != nullptr && t.rt_ != t_runtime) {
    task_base& me = require_task("weft::task::wait");
    wait_done_remote(me, t);
    return;
  }
  if (t.done()) {
    raise_if_cancelled_at_entry();
    return;
  }
  task_base& me = require_task("weft::task::wait");
  if (&me == &t) throw std::logic_error("weft::task::wait: a task cannot wait for itself (it would deadlock)");
  lot_entry entry;
  core_of(t).joiners_.park(entry, "join of task", static_cast<long long>(t.id_));
}

void wait_done_shielded(task_base& t) {
  ignore_cancellation([&] { wait_done(t); });
}

bool cancel_task(task_base& t) noexcept {
  if (t.done()) return false;
  t.rt_->cancel(core_of(t).task_scope_, cancel_reason::task_cancelled);
  return true;
}

}  // namespace weft::detail
