// lowlevel::dump_tasks: the runtime's cancel-status tree, printed.

#include "core/task_core.hpp"
#include "core/runtime.hpp"

#include <weft/lowlevel/dump.hpp>

#include <boost/asio/post.hpp>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <ostream>
#include <sstream>
#include <stdexcept>

namespace weft::detail {

namespace {

const char* state_name(task_base::state s) noexcept {
  switch (s) {
    case task_base::state::created: return "starting";
    case task_base::state::running: return "running";
    case task_base::state::parked: return "parked";
    case task_base::state::scheduled: return "ready";
    case task_base::state::done: return "done";
  }
  return "?";
}

struct dumper {
  std::ostream& out;
  time_point now;
  std::size_t tasks = 0;

  void time(time_point t) {
    out << "t=" << t.time_since_epoch().count() << " (in " << (t - now).count() << " s)";
  }

  void flags(const scope_node& n) {
    if (n.shield) out << " [shield]";
    if (n.cancel_called) out << " [cancel called]";
    if (n.effectively_cancelled) out << " [cancelled]";
  }

  void node(const scope_node& n, int depth) {
    out << std::string(static_cast<std::size_t>(depth) * 2, ' ');
    switch (n.role) {
      case scope_node::kind::task: {
        const task_base& t = *n.owner;
        ++tasks;
        out << "task " << t.id_ << " \"" << t.name() << "\" " << state_name(t.state_);
        if (t.state_ == task_base::state::parked && t.wait_what_ != nullptr) {
          out << ": " << t.wait_what_;
          if (t.wait_arg_ != -1) out << ' ' << t.wait_arg_;
          if (t.wait_until_ != inf_time) {
            out << ' ';
            time(t.wait_until_);
          }
        }
        if (n.deadline.when != inf_time) {
          out << ", deadline ";
          time(n.deadline.when);
        }
        break;
      }
      case scope_node::kind::task_group: out << "task group"; break;
      case scope_node::kind::system: out << "system tasks"; break;
      case scope_node::kind::cancel_scope:
        out << "cancel scope";
        if (n.deadline.when != inf_time) {
          out << ", deadline ";
          time(n.deadline.when);
        }
        break;
    }
    flags(n);
    out << '\n';
    const_cast<scope_node&>(n).children.for_each([&](scope_node& c) { node(c, depth + 1); });
  }
};

}  // namespace

void runtime::dump(std::ostream& out) {
  // Render into a buffer first, so a throwing stream cannot leave half a tree
  // traversal behind, and the header can carry the task count.
  std::ostringstream body;
  dumper d{body, now()};
  root_scope_.children.for_each([&](scope_node& c) {
    if (&c != &system_scope_) d.node(c, 0);
  });
  if (!system_scope_.children.empty()) d.node(system_scope_, 0);
  out << "weft tasks at t=" << d.now.time_since_epoch().count() << " (" << d.tasks << (d.tasks == 1 ? " task)\n" : " tasks)\n")
      << body.str();
}

}  // namespace weft::detail

namespace weft::lowlevel {

void dump_tasks(std::ostream& out) {
  detail::runtime* rt = detail::runtime::current();
  if (rt == nullptr) throw std::logic_error("weft::lowlevel::dump_tasks: no weft runtime runs on this thread");
  rt->dump(out);
}

bool dump_tasks(boost::asio::io_context& runtime_io, std::ostream& out, std::chrono::milliseconds timeout) {
  detail::runtime* rt = detail::runtime::current();
  if (rt != nullptr && &rt->io() == &runtime_io) {
    rt->dump(out);
    return true;
  }
  struct shared {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    std::string text;
  };
  auto s = std::make_shared<shared>();
  boost::asio::post(runtime_io, [s] {
    std::ostringstream text;
    try {
      dump_tasks(text);
    } catch (const std::exception& e) {  // out of memory: say so rather than end the loop
      text << "weft: the task dump failed: " << e.what() << '\n';
    }
    std::lock_guard lock(s->mutex);
    s->text = std::move(text).str();
    s->done = true;
    s->cv.notify_one();
  });
  std::unique_lock lock(s->mutex);
  if (!s->cv.wait_for(lock, timeout, [&] { return s->done; })) return false;
  out << s->text;
  return true;
}

}  // namespace weft::lowlevel
