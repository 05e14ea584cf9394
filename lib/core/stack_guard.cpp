// Stack overflow detection. See stack_guard.hpp, and "Stack size and
// overflow" in docs/internals.md.
#include "core/task_core.hpp"
#include "core/stack_guard.hpp"

#include <weft/detail/core.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>

// Linux 6.13; Debian 12's headers predate it.
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace weft::detail {

namespace {

constexpr std::size_t guard_bytes_wanted = 4 * 1024;
constexpr std::uint64_t canary_key = 0x7765'6674'2d73'746bULL;

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

bool kernel_has_guard_markers() noexcept {
  static const bool has = [] {
    const std::size_t page = page_size();
    void* p = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return false;
    const bool ok = ::madvise(p, page, MADV_GUARD_INSTALL) == 0;
    ::munmap(p, 2 * page);
    return ok;
  }();
  return has;
}

// mprotect guards split their mapping: each costs two of the process's
// vm.max_map_count mappings. Guards may use half of them; the rest is left
// to the program (and to malloc, which maps large blocks one by one).
std::atomic<std::size_t> g_guard_mappings{0};

std::size_t mapping_budget() noexcept {
  static const std::size_t budget = [] {
    std::size_t limit = 65530;  // the kernel's default
    const int fd = ::open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[32] = {};
      const ssize_t n = ::read(fd, buf, sizeof buf - 1);
      if (n > 0) limit = std::strtoul(buf, nullptr, 10);
      ::close(fd);
    }
    return limit / 2;
  }();
  return budget;
}

bool reserve_mappings(std::size_t n, bool forced) noexcept {
  const std::size_t before = g_guard_mappings.fetch_add(n, std::memory_order_relaxed);
  if (forced || before + n <= mapping_budget()) return true;
  g_guard_mappings.fetch_sub(n, std::memory_order_relaxed);
  return false;
}

bool install_mprotect(char* first, std::size_t stride, std::size_t count) noexcept {
  const std::size_t guard = stack_guard_size();
  for (std::size_t i = 0; i < count; ++i) {
    if (::mprotect(first + i * stride, guard, PROT_NONE) != 0) {
      while (i-- > 0) ::mprotect(first + i * stride, guard, PROT_READ | PROT_WRITE);
      return false;
    }
  }
  return true;
}

// process_madvise() on the process itself (PIDFD_SELF, Linux 6.15) takes a
// whole slab's ranges in one call: a syscall per guard costs about a third
// of installing it.
constexpr int pidfd_self = -10001;  // PIDFD_SELF_THREAD_GROUP
std::atomic<bool> g_vector_madvise{true};

std::size_t madvise_vector(char* first, std::size_t stride, std::size_t len, std::size_t count, int advice) noexcept {
  if (count < 2 || !g_vector_madvise.load(std::memory_order_relaxed)) return 0;
  constexpr std::size_t batch = 64;
  std::size_t done = 0;
  while (done < count) {
    iovec iov[batch];
    const std::size_t n = std::min(batch, count - done);
    for (std::size_t i = 0; i < n; ++i) iov[i] = {first + (done + i) * stride, len};
    const long r = ::syscall(SYS_process_madvise, pidfd_self, iov, n, advice, 0);
    if (r < 0) {
      // Not there (before Linux 6.15, or filtered): one madvise per range.
      if (done == 0) g_vector_madvise = false;
      return done;
    }
    done += static_cast<std::size_t>(r) / len;
    if (static_cast<std::size_t>(r) < n * len) return done;
  }
  return done;
}

}  // namespace

bool madvise_strided(char* first, std::size_t stride, std::size_t len, std::size_t count, int advice) noexcept {
  for (std::size_t i = madvise_vector(first, stride, len, count, advice); i < count; ++i)
    if (::madvise(first + i * stride, len, advice) != 0) return false;
  return true;
}

namespace {

bool install_madvise(char* first, std::size_t stride, std::size_t count) noexcept {
  // Locked memory (mlockall) refuses guard markers. Those installed so far
  // stay: harmless, and the caller's fallback covers the rest.
  return madvise_strided(first, stride, stack_guard_size(), count, MADV_GUARD_INSTALL);
}

// --- reporting, async-signal-safe -------------------------------------------------

struct line {
  char buf[640];
  std::size_t len = 0;
  void add(const char* s, std::size_t n) noexcept {
    n = std::min(n, sizeof buf - 1 - len);
    std::memcpy(buf + len, s, n);
    len += n;
  }
  void add(const char* s) noexcept { add(s, std::strlen(s)); }
  void add(std::uint64_t v, unsigned base = 10) noexcept {
    char digits[24];
    std::size_t n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v % base];
      v /= base;
    } while (v != 0);
    while (n > 0 && len < sizeof buf - 1) buf[len++] = digits[--n];
  }
};

// task_base::name() allocates (and demangles): not here. An explicit name is
// used as is; otherwise the function's mangled type name, or its address
// for a plain function. Cut at 512 bytes, so that the line stays whole.
void add_task_name(line& out, const task_base& t) noexcept {
  if (!core_of(t).explicit_name_.empty()) {
    out.add(core_of(t).explicit_name_.data(), std::min<std::size_t>(core_of(t).explicit_name_.size(), 512));
  } else if (t.fn_ptr_ != nullptr) {
    out.add("<function at 0x");
    out.add(reinterpret_cast<std::uintptr_t>(t.fn_ptr_), 16);
    out.add(">");
  } else if (t.fn_type_ != nullptr) {
    const char* name = t.fn_type_->name();
    if (name[0] == '*') ++name;
    out.add(name, ::strnlen(name, 512));
  } else {
    out.add("task-");
    out.add(t.id_);
  }
}

[[noreturn]] void report_overflow(const task_base& t, const char* how) noexcept {
  line l;
  l.add("weft: stack overflow in task ");
  add_task_name(l, t);
  l.add(" (stack ");
  l.add(core_of(t).stack_size_ / 1024);
  l.add(" KiB");
  l.add(how);
  l.add(")\n");
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, l.buf, l.len);
  std::abort();
}

// --- the SIGSEGV handler -------------------------------------------------------------

struct sigaction g_previous {};

void pass_on(int sig, siginfo_t* info, void* uctx) noexcept {
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(sig, info, uctx);
    return;
  }
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // The default action: once this handler returns, the faulting instruction
  // runs again and the kernel kills the process. A SIGSEGV sent with kill()
  // is not repeated: send it again (it stays pending until we return).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  if (info == nullptr || info->si_code <= 0) ::raise(sig);
}

void on_segv(int sig, siginfo_t* info, void* uctx) {
  // A fault in the guard area below the running task's stack is its
  // overflow; anything else belongs to whoever handled SIGSEGV before us.
  const task_base* t = t_current_task;
  if (t != nullptr && info != nullptr && info->si_code > 0 && core_of(*t).stack_bottom_ != nullptr) {
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    const auto bottom = reinterpret_cast<std::uintptr_t>(core_of(*t).stack_bottom_);
    if (addr < bottom && bottom - addr <= stack_guard_size()) report_overflow(*t, "");
  }
  pass_on(sig, info, uctx);
}

void install_handler() noexcept {
  (void)stack_guard_size();  // initialized here, not in the handler
  // Read the previous action first, so that it is in place before our
  // handler can run.
  if (::sigaction(SIGSEGV, nullptr, &g_previous) != 0) return;
  struct sigaction sa {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGSEGV, &sa, nullptr);
}

std::once_flag g_handler_once;

std::size_t alt_stack_size() noexcept {
  // Room for a chained handler too (AddressSanitizer's needs tens of KiB).
  return std::max<std::size_t>(64 * 1024, static_cast<std::size_t>(::sysconf(_SC_SIGSTKSZ)));
}

}  // namespace

std::size_t stack_guard_size() noexcept {
  static const std::size_t size = (guard_bytes_wanted + page_size() - 1) / page_size() * page_size();
  return size;
}

stack_guard resolve_stack_guard(stack_guard requested) {
  switch (requested) {
    case stack_guard::automatic:
      return kernel_has_guard_markers() ? stack_guard::madvise : stack_guard::mprotect;
    case stack_guard::madvise:
      if (!kernel_has_guard_markers())
        throw std::system_error(std::make_error_code(std::errc::function_not_supported),
                                "weft::run: stack_guard::madvise needs madvise(MADV_GUARD_INSTALL), which this kernel "
                                "lacks (Linux 6.13 or later); use stack_guard::automatic");
      return requested;
    default:
      return requested;
  }
}

stack_guard install_stack_guards(char* first, std::size_t stride, std::size_t count, stack_guard mode,
                                 bool forced) noexcept {
  if (mode == stack_guard::madvise && install_madvise(first, stride, count)) return stack_guard::madvise;
  if (mode == stack_guard::madvise || mode == stack_guard::mprotect) {
    if (reserve_mappings(2 * count, forced)) {
      if (install_mprotect(first, stride, count)) return stack_guard::mprotect;
      release_mprotect_guards(count);
    }
  }
  return forced ? stack_guard::none : stack_guard::canary;
}

void release_mprotect_guards(std::size_t count) noexcept {
  g_guard_mappings.fetch_sub(2 * count, std::memory_order_relaxed);
}

void write_stack_canary(void* bottom) noexcept {
  *static_cast<std::uint64_t*>(bottom) = canary_key ^ reinterpret_cast<std::uintptr_t>(bottom);
}

void check_stack_canary(const task_base& t) noexcept {
  if (*static_cast<const std::uint64_t*>(core_of(t).stack_bottom_) != (canary_key ^ reinterpret_cast<std::uintptr_t>(core_of(t).stack_bottom_)))
    report_overflow(t, ", canary overwritten");
}

stack_guard_thread::stack_guard_thread() noexcept {
  std::call_once(g_handler_once, install_handler);
  stack_t current{};
  if (::sigaltstack(nullptr, &current) != 0 || (current.ss_flags & SS_DISABLE) == 0) return;
  const std::size_t size = alt_stack_size();
  void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) return;  // overflows then die without a report
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = size;
  if (::sigaltstack(&ss, nullptr) != 0) {
    ::munmap(mem, size);
    return;
  }
  alt_stack_ = mem;
}

stack_guard_thread::~stack_guard_thread() {
  if (alt_stack_ == nullptr) return;
  stack_t current{};
  // Someone may have replaced ours meanwhile: then theirs stays.
  if (::sigaltstack(nullptr, &current) == 0 && current.ss_sp == alt_stack_) {
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    ::sigaltstack(&off, nullptr);
  }
  ::munmap(alt_stack_, alt_stack_size());
}

}  // namespace weft::detail
